"""ONNX Runtime backend: ``ort-cpu``, ``ort-cuda``, ``ort-trt``.

Providers are named explicitly (:func:`providers_for`) and checked twice: before the session, the
provider must be in ``onnxruntime.get_available_providers()`` (else one line saying what to install);
after it, the provider the session really runs (``session.get_providers()[0]``) must be the one asked
for, because ONNX Runtime silently falls back to the next provider when one fails to load (missing
CUDA / cuDNN / TensorRT libraries). An explicit request is never answered by that fallback: it is an
:class:`EngineError`. With ``fallback=True`` (what ``auto`` passes) it is a logged warning and the
engine's ``backend`` says what really runs.

``ort-trt`` runs the TensorRT execution provider with FP16 (``fp16=True``), its engine and timing caches
in ``<cache_dir>/ort-trt``; the CUDA and CPU providers follow it for the nodes TensorRT does not take.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping

import numpy as np

from depthstream.errors import EngineError

from .backends import ORT_PROVIDER, cache_dir_of, unavailable_reason
from .base import Engine, TensorSpec

log = logging.getLogger(__name__)

# ONNX type strings -> numpy dtypes (the ones our models use).
_ONNX_DTYPES = {
    "tensor(float)": np.dtype(np.float32),
    "tensor(float16)": np.dtype(np.float16),
    "tensor(double)": np.dtype(np.float64),
    "tensor(uint8)": np.dtype(np.uint8),
    "tensor(int8)": np.dtype(np.int8),
    "tensor(int32)": np.dtype(np.int32),
    "tensor(int64)": np.dtype(np.int64),
    "tensor(bool)": np.dtype(np.bool_),
}

# Provider names in the order each backend registers them (the first is the one asked for).
PROVIDERS = {
    "ort-cpu": ["CPUExecutionProvider"],
    "ort-cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "ort-trt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}
_BACKEND_OF = {v: k for k, v in ORT_PROVIDER.items()}


def providers_for(backend: str, *, fp16: bool = True, cache_dir: str | Path | None = None, device_id: int = 0) -> list:
    """The ``providers=`` argument of ``InferenceSession`` for ``backend``: (name, options) pairs."""
    if backend not in PROVIDERS:
        raise EngineError(f"unknown ONNX Runtime backend '{backend}': expected one of {sorted(PROVIDERS)}")
    out: list = []
    for name in PROVIDERS[backend]:
        if name == "TensorrtExecutionProvider":
            trt_cache = cache_dir_of(cache_dir) / "ort-trt"
            out.append((name, {
                "device_id": device_id,
                "trt_fp16_enable": bool(fp16),
                "trt_engine_cache_enable": True,
                "trt_engine_cache_path": str(trt_cache),
                "trt_timing_cache_enable": True,
                "trt_timing_cache_path": str(trt_cache),
            }))
        elif name == "CUDAExecutionProvider":
            out.append((name, {"device_id": device_id}))
        else:
            out.append((name, {}))
    return out


def check_running(backend: str, running: list[str], *, fallback: bool, model: str = "model") -> str:
    """The backend that really runs, given the session's providers (``session.get_providers()``).

    The one asked for -> ``backend``. Another one: ``fallback`` -> a logged warning and the backend
    that runs; otherwise EngineError (one line).
    """
    wanted = PROVIDERS[backend][0]
    first = running[0] if running else "no provider"
    if first == wanted:
        return backend
    message = (f"{model}: --backend {backend} asked for {wanted} but ONNX Runtime runs {first} "
               f"(the provider is installed but did not load: check the CUDA 13 / cuDNN 9"
               f"{' / TensorRT 10' if backend == 'ort-trt' else ''} libraries on the library path"
               f"{' and the GPU with nvidia-smi' if backend != 'ort-cpu' else ''})")
    if not fallback:
        raise EngineError(message + ", or use --backend ort-cpu")
    log.warning("%s; falling back to %s", message, first)
    return _BACKEND_OF.get(first, "ort-cpu")


def _spec(arg) -> TensorSpec:
    if arg.type not in _ONNX_DTYPES:
        raise EngineError(f"tensor '{arg.name}' has type {arg.type}, which this product does not handle")
    shape = tuple(d if isinstance(d, int) and d > 0 else None for d in arg.shape)
    return TensorSpec(arg.name, _ONNX_DTYPES[arg.type], shape)


class OrtEngine(Engine):
    """An ONNX model run by ONNX Runtime.

    threads: intra-op threads of this session. Two sessions running at once (depth and detection in
    the parallel layout) must together not exceed the cores, or both slow down.
    optimization: ONNX Runtime's graph optimisation level (``all``, ``extended``, ``basic``, ``none``).
    Output arrays are new arrays on every call (ONNX Runtime allocates them).
    """

    backend = "ort-cpu"
    _LEVELS = ("all", "extended", "basic", "none")

    def __init__(
        self,
        path: str | Path,
        threads: int = 1,
        backend: str = "ort-cpu",
        *,
        fp16: bool = True,
        cache_dir: str | Path | None = None,
        fallback: bool = False,
        optimization: str = "all",
    ) -> None:
        super().__init__(path)
        if backend not in PROVIDERS:
            raise EngineError(f"unknown ONNX Runtime backend '{backend}': expected one of {sorted(PROVIDERS)}")
        if threads < 1:
            raise EngineError(f"threads must be >= 1, got {threads}")
        if optimization not in self._LEVELS:
            raise EngineError(f"unknown graph optimisation level '{optimization}': expected one of {', '.join(self._LEVELS)}")
        self.threads = int(threads)
        self.backend = backend
        self.requested = backend
        self.fp16 = fp16
        self.cache_dir = cache_dir
        self.fallback = fallback
        self.optimization = optimization
        self._session = None
        self.providers: list[str] = []

    def _open(self):
        import onnxruntime as ort

        if not self.path.is_file():
            raise EngineError(f"model file not found: {self.path} (check the path, or run 'make models')")
        backend = self.requested
        if backend != "ort-cpu":
            from .backends import probe

            why = unavailable_reason(backend, probe())
            if why is not None:
                if not self.fallback:
                    raise EngineError(why)
                log.warning("%s; falling back to ort-cpu", why)
                backend = "ort-cpu"
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = {
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        }[self.optimization]
        opts.log_severity_level = 3
        # Idle intra-op threads sleep instead of spinning: the product runs two sessions, decode and
        # encode side by side on few cores, and spinning threads steal the cores the others need.
        # Measured on the 2-core CPU with the demo (whole process, 5 runs each): 14 % less CPU time,
        # 3 % less wall time.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = providers_for(backend, fp16=self.fp16, cache_dir=self.cache_dir)
        if backend == "ort-trt":
            Path(providers[0][1]["trt_engine_cache_path"]).mkdir(parents=True, exist_ok=True)
        try:
            self._session = ort.InferenceSession(str(self.path), sess_options=opts, providers=providers)
        except Exception as exc:  # onnxruntime raises its own (non-builtin) exception types
            raise EngineError(f"{self.path} is not a model ONNX Runtime can load: {_first_line(exc)}") from exc
        self.providers = list(self._session.get_providers())
        try:
            self.backend = check_running(backend, self.providers, fallback=self.fallback, model=self.path.name)
        except EngineError:
            self._session = None
            raise
        inputs = {a.name: _spec(a) for a in self._session.get_inputs()}
        outputs = {a.name: _spec(a) for a in self._session.get_outputs()}
        log.debug("opened %s on %s with %d threads", self.path.name, self.providers[0], self.threads)
        return inputs, outputs

    def _close(self) -> None:
        self._session = None

    def _infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = list(self._outputs or {})
        try:
            values = self._session.run(names, dict(feeds))  # type: ignore[union-attr]
        except Exception as exc:  # onnxruntime's own exception types
            raise EngineError(f"{self.path.name}: inference failed: {_first_line(exc)}") from exc
        return dict(zip(names, values))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
