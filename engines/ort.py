"""ONNX Runtime backend.

Providers are named explicitly and, once the session exists, the provider that really runs is checked:
ONNX Runtime silently falls back to the CPU when a requested provider fails to load, and an explicit
request must not be answered by a silent fallback.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping

import numpy as np

from stream.errors import EngineError

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

PROVIDERS = {
    "ort-cpu": ["CPUExecutionProvider"],
}


def _spec(arg) -> TensorSpec:
    if arg.type not in _ONNX_DTYPES:
        raise EngineError(f"tensor '{arg.name}' has type {arg.type}, which this product does not handle")
    shape = tuple(d if isinstance(d, int) and d > 0 else None for d in arg.shape)
    return TensorSpec(arg.name, _ONNX_DTYPES[arg.type], shape)


class OrtEngine(Engine):
    """An ONNX model run by ONNX Runtime.

    threads: intra-op threads of this session. Two sessions running at once (depth and detection in
    the parallel layout) must together not exceed the cores, or both slow down.
    """

    backend = "ort-cpu"

    def __init__(self, path: str | Path, threads: int = 1, backend: str = "ort-cpu") -> None:
        super().__init__(path)
        if backend not in PROVIDERS:
            raise EngineError(f"unknown ONNX Runtime backend '{backend}': expected one of {sorted(PROVIDERS)}")
        if threads < 1:
            raise EngineError(f"threads must be >= 1, got {threads}")
        self.threads = int(threads)
        self.backend = backend
        self._session = None
        self.providers: list[str] = []

    def _open(self):
        import onnxruntime as ort

        if not self.path.is_file():
            raise EngineError(f"model file not found: {self.path} (check the path, or run 'make models')")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3
        wanted = PROVIDERS[self.backend]
        try:
            self._session = ort.InferenceSession(str(self.path), sess_options=opts, providers=wanted)
        except Exception as exc:  # onnxruntime raises its own (non-builtin) exception types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise EngineError(f"{self.path} is not a model ONNX Runtime can load: {first}") from exc
        self.providers = list(self._session.get_providers())
        if self.providers[0] != wanted[0]:
            raise EngineError(
                f"{self.path.name}: asked for {wanted[0]} but ONNX Runtime runs {self.providers[0]}"
            )
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
            raise EngineError(f"{self.path.name}: inference failed: {str(exc).strip().splitlines()[0]}") from exc
        return dict(zip(names, values))
