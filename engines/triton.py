"""NVIDIA Triton Inference Server as a backend: ``--backend triton://HOST:PORT`` (gRPC).

The pipeline stays near the camera (capture, pre/post-processing, outputs); the models run on a Triton
server, usually on a GPU host. ``tritonclient[grpc]`` is imported only when such an engine opens
(``pip install -e '.[triton]'``).

- Which model: the ONNX file's name, made a valid Triton model name (:func:`triton_model_name`):
  ``models/yolox_nano.onnx`` is served as ``yolox_nano``. ``python -m engines triton-repo`` writes the
  repository under the same names. The ONNX stays on the pipeline's host too: the detector reads its
  sidecar from there, and when the server's ``config.pbtxt`` records the ONNX's sha256 (the repositories
  we write do) a server that serves other bytes under that name is an error, not quietly other boxes.
- ``open()`` asks the server: is it live, is the model ready (else the repository's list of models with
  their states), the model's metadata (inputs / outputs -> :class:`TensorSpec`, so ``infer`` checks feeds
  with the same messages as every backend) and its config (``max_batch_size``). Each of these is one
  :class:`EngineError` line when it fails.
- Every call has a deadline (``timeout_s``, default 10 s). A call that fails because the server cannot be
  reached (gRPC UNAVAILABLE) or did not answer in time is retried on a new connection with backoff
  (0.25 s doubling to 2 s) for at most ``reconnect_s`` (default 30 s) from the first failure, then it is
  one EngineError line. Both are set in the URL: ``triton://gpu-host:8001?timeout_s=5&reconnect_s=60``.
- A server that requires a header: set ``DEPTHSTREAM_TRITON_HEADER=NAME=VALUE``; it is sent with every call
  and never printed (messages name only NAME). For ``tritonserver --grpc-restricted-protocol=...:KEY=VALUE``
  the header Triton expects is ``triton-grpc-protocol-KEY``. Credentials inside the URL are refused, without
  echoing them.
- Batches: a model with a dynamic batch dimension (``max_batch_size`` > 0 on the server) takes feeds of
  any batch up to that size in one call, e.g. frames from several cameras stacked on axis 0; Triton's
  dynamic batcher also merges requests from several pipeline processes. A model exported with a fixed
  batch of 1 (today's YOLOX-Nano and FastDepth ONNX) takes one frame per call.

One engine serves one thread at a time (the stage that owns it). Output arrays are new on every call.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping
from urllib.parse import parse_qsl, urlsplit

import numpy as np

from depthstream.errors import ConfigError, EngineError
from depthstream.hashing import sha256_of

from .base import Engine, TensorSpec

log = logging.getLogger(__name__)

SCHEME = "triton://"
DEFAULT_PORT = 8001
HEADER_ENV = "DEPTHSTREAM_TRITON_HEADER"
SHA_PARAMETER = "onnx_sha256"  # config.pbtxt parameter that python -m engines triton-repo writes
INSTALL = "pip install -e '.[triton]'"
_OPTIONS = {"timeout_s": 10.0, "reconnect_s": 30.0}
_BACKOFF_S = (0.25, 2.0)  # first wait, longest wait between two attempts

# Triton's datatype names <-> numpy (the types our models use).
TRITON_DTYPES = {
    "FP32": np.dtype(np.float32), "FP16": np.dtype(np.float16), "FP64": np.dtype(np.float64),
    "UINT8": np.dtype(np.uint8), "INT8": np.dtype(np.int8), "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64), "BOOL": np.dtype(np.bool_),
}
NUMPY_TO_TRITON = {v: k for k, v in TRITON_DTYPES.items()}


def is_triton(backend: str) -> bool:
    return isinstance(backend, str) and backend.startswith(SCHEME)


@dataclass(frozen=True)
class TritonTarget:
    """Where the server is and how long to wait for it (parsed from ``triton://HOST:PORT?...``)."""

    host: str
    port: int = DEFAULT_PORT
    timeout_s: float = _OPTIONS["timeout_s"]
    reconnect_s: float = _OPTIONS["reconnect_s"]

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return SCHEME + self.address


def _redacted(text: str) -> str:
    return re.sub(r"//[^/@]*@", "//***@", text)


def parse_triton_url(text: str) -> TritonTarget:
    """``triton://HOST[:PORT][?timeout_s=S&reconnect_s=S]`` -> TritonTarget; ConfigError (one line) if not."""
    shown = _redacted(text)
    expected = "expected triton://HOST:PORT, e.g. triton://127.0.0.1:8001 (gRPC port; default 8001)"
    parts = urlsplit(text)
    if parts.scheme != "triton":
        raise ConfigError(f"backend {shown!r} is not a Triton URL: {expected}")
    if "@" in parts.netloc:
        raise ConfigError(f"backend {shown!r}: credentials in the URL are not supported (they would show in "
                          f"logs): give a header the server requires as {HEADER_ENV}=NAME=VALUE instead")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"backend {shown!r}: the port is not a number in 1..65535: {expected}") from None
    if not parts.hostname or parts.path not in ("", "/") or parts.fragment:
        raise ConfigError(f"backend {shown!r}: {expected}")
    if port == 0:
        raise ConfigError(f"backend {shown!r}: the port is not a number in 1..65535: {expected}")
    options = dict(_OPTIONS)
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in options:
            raise ConfigError(f"backend {shown!r}: unknown option {key!r}: allowed are {', '.join(_OPTIONS)}")
        try:
            options[key] = float(value)
        except ValueError:
            options[key] = -1.0
        low = 0.0 if key == "reconnect_s" else 0.001
        if not low <= options[key] <= 3600:
            raise ConfigError(f"backend {shown!r}: {key}={value!r}, expected seconds in "
                              f"{'[0' if low == 0 else '(0'}, 3600]")
    return TritonTarget(parts.hostname, port or DEFAULT_PORT, options["timeout_s"], options["reconnect_s"])


def triton_model_name(path: str | Path) -> str:
    """The name a model is served under: its file name without extension, letters, digits, ``_`` and ``-``
    kept, anything else made ``_`` (``models/yolox_nano.onnx`` -> ``yolox_nano``)."""
    stem = Path(path).stem
    return re.sub(r"[^A-Za-z0-9_-]", "_", stem) or "model"


def _header_from_env() -> tuple[dict[str, str] | None, str]:
    """(headers for every call, the header's name for messages) from DEPTHSTREAM_TRITON_HEADER."""
    raw = os.environ.get(HEADER_ENV, "")
    if not raw:
        return None, ""
    name, sep, value = raw.partition("=")
    if not sep or not name.strip() or not value:
        raise ConfigError(f"{HEADER_ENV} must be NAME=VALUE (a header the Triton server requires); "
                          f"the value given has {'no' if not sep else 'an empty'} {'=' if not sep else 'name or value'}")
    return {name.strip().lower(): value}, name.strip().lower()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _import_client():
    try:
        import tritonclient.grpc as grpcclient
        from tritonclient.utils import InferenceServerException
    except ImportError as exc:
        raise EngineError(f"--backend triton://... needs the Triton client, which does not import here "
                          f"({_first_line(exc)}): {INSTALL}") from exc
    return grpcclient, InferenceServerException


def _status(exc) -> str:
    status = exc.status() if callable(getattr(exc, "status", None)) else None
    return str(status or "").rsplit(".", 1)[-1]


_TRANSIENT = ("UNAVAILABLE", "DEADLINE_EXCEEDED")


def _spec(entry: Mapping) -> TensorSpec:
    name, datatype = entry.get("name", "?"), entry.get("datatype", "?")
    if datatype not in TRITON_DTYPES:
        raise EngineError(f"tensor '{name}' has Triton type {datatype}, which this product does not handle "
                          f"(expected one of {', '.join(TRITON_DTYPES)})")
    shape = tuple(int(d) if int(d) > 0 else None for d in entry.get("shape", []))
    return TensorSpec(name, TRITON_DTYPES[datatype], shape)


class TritonEngine(Engine):
    """A model served by a Triton server, behind the :class:`Engine` interface.

    path: the model's ONNX on this host (names the Triton model; its sha256 is checked against the
    server's). url: ``triton://HOST:PORT[?timeout_s=S&reconnect_s=S]``. model_name: served under
    another name than the file's. After ``open()``: ``max_batch_size`` (0 = the model has no batch
    dimension), ``platform`` (the server's backend for it), ``reconnects`` (outages survived).
    """

    def __init__(self, path: str | Path, url: str | TritonTarget, *, model_name: str | None = None) -> None:
        super().__init__(path)
        self.target = url if isinstance(url, TritonTarget) else parse_triton_url(url)
        self.model = model_name or triton_model_name(self.path)
        self.backend = url if isinstance(url, str) else self.target.url  # as given: what the summary names
        self.providers: list[str] = []
        self.max_batch_size = 0
        self.platform = ""
        self.reconnects = 0
        self._headers, self._header_name = _header_from_env()
        self._client = None
        self._api = None
        self._closed = threading.Event()  # set by close(): a call waiting to reconnect gives up at once

    # -- connection ---------------------------------------------------------------------------------
    def _connect(self) -> None:
        grpcclient, _ = self._api  # type: ignore[misc]
        self._drop_client()
        self._client = grpcclient.InferenceServerClient(self.target.address)

    def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def _where(self) -> str:
        return f"the Triton server at {self.target.address}"

    def _call(self, what: str, fn: Callable, *, retry: bool):
        """``fn(client, timeout_s)``; transient failures retried on a new connection within ``reconnect_s``."""
        _, server_error = self._api  # type: ignore[misc]
        lost_at = None
        delay = _BACKOFF_S[0]
        while True:
            if self._closed.is_set():
                raise EngineError(f"{self._where()}: {what} for model '{self.model}' stopped: the engine was closed")
            try:
                out = fn(self._client, self.target.timeout_s)
            except server_error as exc:
                status, said = _status(exc), re.sub(r"^\[StatusCode\.\w+\]\s*", "", _first_line(exc))
                if status == "UNAUTHENTICATED" or "restricted" in said.lower():
                    hint = (f"the header {self._header_name!r} from {HEADER_ENV} was refused" if self._header_name
                            else f"set {HEADER_ENV}=NAME=VALUE to the header the server requires")
                    raise EngineError(f"{self._where()} refused {what} for model '{self.model}' ({said}): {hint}") from None
                if not retry or status not in _TRANSIENT:
                    raise self._call_error(what, status, said) from None
                now = time.monotonic()
                if lost_at is None:
                    lost_at = now
                    log.warning("%s: %s failed (%s); reconnecting for up to %.0f s", self._where(), what,
                                status, self.target.reconnect_s)
                if now - lost_at + delay > self.target.reconnect_s:
                    raise EngineError(
                        f"{self._where()} did not answer {what} for model '{self.model}' for {now - lost_at:.1f} s "
                        f"({status}: {said}); is it running? restart it, or wait longer with "
                        f"--backend {self.target.url}?reconnect_s=SECONDS") from None
                if self._closed.wait(delay):
                    raise EngineError(f"{self._where()}: {what} for model '{self.model}' stopped: the engine was "
                                      f"closed while reconnecting") from None
                delay = min(delay * 2, _BACKOFF_S[1])
                self._connect()
                continue
            if lost_at is not None:
                self.reconnects += 1
                log.warning("%s is back after %.1f s; %s resumed", self._where(), time.monotonic() - lost_at, what)
            return out

    def _call_error(self, what: str, status: str, said: str) -> EngineError:
        if status in _TRANSIENT:
            return EngineError(f"{self._where()} is not reachable ({status}: {said}): start it "
                               f"(tritonserver --model-repository REPO --grpc-port {self.target.port}) "
                               f"or fix --backend {self.target.url}")
        return EngineError(f"{self._where()}: {what} for model '{self.model}' failed ({status or 'error'}: {said})")

    # -- backend part -------------------------------------------------------------------------------
    def _open(self):
        self._closed.clear()
        self._api = _import_client()
        self._connect()
        try:
            return self._describe()
        except BaseException:
            self._drop_client()
            raise

    def _describe(self):
        headers = self._headers
        self._call("the health check", lambda c, t: c.is_server_live(headers=headers, client_timeout=t), retry=False)
        ready = self._call("the readiness check",
                           lambda c, t: c.is_model_ready(self.model, headers=headers, client_timeout=t), retry=False)
        if not ready:
            raise EngineError(self._not_ready_message())
        meta = self._call("the metadata request",
                          lambda c, t: c.get_model_metadata(self.model, headers=headers, as_json=True, client_timeout=t),
                          retry=False)
        config = self._call("the config request",
                            lambda c, t: c.get_model_config(self.model, headers=headers, as_json=True, client_timeout=t),
                            retry=False).get("config", {})
        self.max_batch_size = int(config.get("max_batch_size", 0) or 0)
        self.platform = str(meta.get("platform") or config.get("backend") or "?")
        self.providers = [f"Triton {self.platform} at {self.target.address}"]
        self._check_same_model(config)
        inputs = {e["name"]: _spec(e) for e in meta.get("inputs", [])}
        outputs = {e["name"]: _spec(e) for e in meta.get("outputs", [])}
        log.debug("opened %s on %s (%s, max_batch_size %d)", self.model, self.target.address, self.platform,
                  self.max_batch_size)
        return inputs, outputs

    def _not_ready_message(self) -> str:
        headers = self._headers
        index = self._call("the repository index",
                           lambda c, t: c.get_model_repository_index(headers=headers, as_json=True, client_timeout=t),
                           retry=False)
        models = index.get("models", [])
        mine = [m for m in models if m.get("name") == self.model]
        listed = ", ".join(f"{m.get('name')} ({m.get('state') or 'not loaded'})" for m in models) or "no model"
        if mine and mine[0].get("state"):
            reason = (str(mine[0].get("reason") or "").strip().splitlines() or ["no reason given"])[0]
            return (f"model '{self.model}' on {self._where()} is {mine[0]['state']}, not READY ({reason}): "
                    f"see the server's log, fix the model's folder in its repository and restart it")
        return (f"model '{self.model}' (for {self.path.name}) is not loaded on {self._where()} (it has: {listed}): "
                f"write it with python -m engines triton-repo {self.path} --out REPO, then restart tritonserver "
                f"--model-repository REPO")

    def _check_same_model(self, config: Mapping) -> None:
        served = ((config.get("parameters") or {}).get(SHA_PARAMETER) or {}).get("string_value")
        if not served or not self.path.is_file():
            return
        local = sha256_of(self.path)
        if served != local:
            raise EngineError(
                f"model '{self.model}' on {self._where()} was made from another ONNX (sha256 {served[:16]}…) than "
                f"{self.path} here ({local[:16]}…): rebuild the repository with python -m engines triton-repo "
                f"{self.path} --out REPO and restart the server, or use the same model file here")

    def _close(self) -> None:
        self._closed.set()
        self._drop_client()

    def _infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        grpcclient, _ = self._api  # type: ignore[misc]
        if self.max_batch_size > 0:
            batch = {int(a.shape[0]) for a in feeds.values()}
            if len(batch) > 1 or max(batch) > self.max_batch_size:
                raise EngineError(f"{self.path.name}: batch sizes {sorted(batch)} in one call; model '{self.model}' "
                                  f"on Triton takes one batch of at most {self.max_batch_size} (its max_batch_size)")
        inputs = []
        for name, arr in feeds.items():
            item = grpcclient.InferInput(name, list(arr.shape), NUMPY_TO_TRITON[np.dtype(arr.dtype)])
            item.set_data_from_numpy(np.ascontiguousarray(arr))
            inputs.append(item)
        names = list(self._outputs or {})
        wanted = [grpcclient.InferRequestedOutput(n) for n in names]
        headers = self._headers
        result = self._call("inference", lambda c, t: c.infer(self.model, inputs, outputs=wanted, headers=headers,
                                                              client_timeout=t), retry=True)
        return {n: np.array(result.as_numpy(n)) for n in names}
