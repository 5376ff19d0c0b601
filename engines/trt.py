"""TensorRT backend (``trt``): a serialised engine run with the tensor-name API of TensorRT 10 and 11.

The runtime calls below have the same names and meaning in TensorRT 10 and 11 (checked against the Python
bindings of 10.16 and 11.4); only the build differs (:mod:`engines.build`). Any error TensorRT raises while an
engine is loaded becomes one :class:`EngineError` line.

Life cycle, with no ``pycuda.autoinit``:

- ``open()``: ``cuda.init()``, retain the GPU's **primary context** (shared with anything else on that
  GPU in this process, e.g. the other model), push it on this thread, then: build or reuse the cached
  engine (an ``.onnx`` path; see :mod:`engines.build`) or read a serialised one (``.engine`` /
  ``.plan``), deserialise it, create one execution context, one CUDA stream, and for every I/O tensor
  one pinned host buffer and one device buffer sized for the largest shape of the optimization
  profile — allocated once, their device addresses bound once with ``set_tensor_address``. Pop.
- ``infer()`` from **any thread** (the parallel layout calls the detector and the depth network from two
  threads): push the context on the calling thread, copy the feeds into the pinned inputs,
  ``set_input_shape`` for each input, async host-to-device copies, ``execute_async_v3`` on this
  engine's stream, async device-to-host copies, synchronise the stream, pop. A lock keeps one call at a
  time per engine.
- ``close()``: push, free the buffers, stream, context and engine, pop, and release (detach) the
  primary context.

**Outputs are views of this engine's pinned output buffers: the next ``infer`` overwrites them.** Copy
what you keep (the product's detector and depth stages decode them at once).

Not run on the CPU-only machine this was written on; see the README (Engines and backends).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from depthstream.errors import EngineError

from .base import Engine, TensorSpec
from .build import TENSORRT_ERRORS

log = logging.getLogger(__name__)

SERIALISED = (".engine", ".plan", ".trt")


class TrtEngine(Engine):
    backend = "trt"

    def __init__(
        self,
        path: str | Path,
        *,
        fp16: bool = True,
        cache_dir: str | Path | None = None,
        shapes: Mapping[str, Sequence] | None = None,
        device: int = 0,
    ) -> None:
        super().__init__(path)
        self.fp16 = fp16
        self.cache_dir = cache_dir
        self.shapes = dict(shapes or {})
        self.device = device
        self.engine_path: Path | None = None
        self.built_because: str | None = None
        self._lock = threading.Lock()
        self._cuda = None
        self._ctx = None
        self._engine = None
        self._context = None
        self._stream = None
        self._host: dict[str, np.ndarray] = {}
        self._dev: dict[str, object] = {}
        self._max: dict[str, tuple[int, ...]] = {}
        self._min: dict[str, tuple[int, ...]] = {}
        self._logger = None
        self._runtime = None

    # -- life cycle ---------------------------------------------------------------------------
    def _open(self):
        import pycuda.driver as cuda
        import tensorrt as trt

        if not self.path.is_file():
            raise EngineError(f"model file not found: {self.path} (an .onnx to build from, or a serialised .engine)")
        self._cuda = cuda
        cuda.init()
        if self.device >= cuda.Device.count():
            raise EngineError(f"GPU {self.device} asked for but this machine has {cuda.Device.count()} CUDA device(s)")
        self._ctx = cuda.Device(self.device).retain_primary_context()
        self._ctx.push()
        loaded = None
        try:
            loaded = self._load(cuda, trt)
        except EngineError:
            raise
        except TENSORRT_ERRORS as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise EngineError(f"TensorRT {getattr(trt, '__version__', '?')} could not load {self.path.name}: {reason}") from exc
        finally:
            if loaded is None:
                self._free()
            cuda.Context.pop()
            if loaded is None:
                self._ctx.detach()
                self._ctx = None
        return loaded

    def _load(self, cuda, trt):
        if self.path.suffix.lower() in SERIALISED:
            self.engine_path = self.path
        else:
            from .build import ensure_engine

            self.engine_path, self.built_because = ensure_engine(
                self.path, fp16=self.fp16, cache_dir=self.cache_dir, shapes=self.shapes or None)
        self._logger = trt.Logger(trt.Logger.WARNING)  # must outlive the runtime
        self._runtime = trt.Runtime(self._logger)
        self._engine = self._runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
        if self._engine is None:
            raise EngineError(f"TensorRT could not deserialise {self.engine_path} (built by another TensorRT version "
                              f"or for another GPU?): delete it and run 'python -m engines build {self.path}'")
        self._context = self._engine.create_execution_context()
        self._stream = cuda.Stream()
        if self._engine.num_optimization_profiles > 0:
            self._context.set_optimization_profile_async(0, self._stream.handle)
        inputs: dict[str, TensorSpec] = {}
        outputs: dict[str, TensorSpec] = {}
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        for name in names:
            if self._engine.get_tensor_mode(name) != trt.TensorIOMode.INPUT:
                continue
            dims = tuple(self._engine.get_tensor_shape(name))
            if any(d < 0 for d in dims):
                lo, _opt, hi = (tuple(s) for s in self._engine.get_tensor_profile_shape(name, 0))
            else:
                lo = hi = dims
            self._min[name], self._max[name] = lo, hi
            self._context.set_input_shape(name, hi)  # the largest shape sizes the output buffers
        for name in names:
            is_input = self._engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(name)))
            dims = tuple(self._engine.get_tensor_shape(name))
            size_shape = self._max[name] if is_input else tuple(self._context.get_tensor_shape(name))
            if any(d < 0 for d in size_shape):
                raise EngineError(f"{self.engine_path.name}: output '{name}' has data-dependent shape "
                                  f"{size_shape}, which this engine runner does not handle")
            host = cuda.pagelocked_empty(int(np.prod(size_shape)), dtype)
            dev = cuda.mem_alloc(max(host.nbytes, 1))
            self._host[name], self._dev[name] = host, dev
            self._context.set_tensor_address(name, int(dev))
            spec = TensorSpec(name, dtype, tuple(None if d < 0 else int(d) for d in dims))
            (inputs if is_input else outputs)[name] = spec
        log.info("TensorRT engine %s on %s: inputs %s, outputs %s", self.engine_path.name,
                 cuda.Device(self.device).name(), [s.describe() for s in inputs.values()],
                 [s.describe() for s in outputs.values()])
        return inputs, outputs

    def _close(self) -> None:
        if self._ctx is None:
            return
        self._ctx.push()
        try:
            if self._stream is not None:
                self._stream.synchronize()
            self._free()
        finally:
            self._cuda.Context.pop()
            self._ctx.detach()
            self._ctx = None

    def _free(self) -> None:
        for dev in self._dev.values():
            dev.free()
        self._dev.clear()
        self._host.clear()
        self._context = None
        self._engine = None
        self._stream = None
        self._runtime = None

    # -- inference ----------------------------------------------------------------------------
    def _infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        cuda = self._cuda
        for name, arr in feeds.items():
            lo, hi = self._min[name], self._max[name]
            if any(not (a <= s <= b) for a, s, b in zip(lo, arr.shape, hi)):
                raise EngineError(
                    f"{self.path.name}: input '{name}' has shape {tuple(arr.shape)}, outside the engine's optimization "
                    f"profile {lo}..{hi}: rebuild with python -m engines build {self.path} --shape {name}:MIN,OPT,MAX")
        with self._lock:
            self._ctx.push()
            try:
                stream = self._stream
                for name, arr in feeds.items():
                    host = self._host[name][: arr.size]
                    np.copyto(host.reshape(arr.shape), arr)
                    if not self._context.set_input_shape(name, tuple(arr.shape)):
                        raise EngineError(f"{self.path.name}: TensorRT refused shape {tuple(arr.shape)} for input '{name}'")
                    cuda.memcpy_htod_async(self._dev[name], host, stream)
                if not self._context.execute_async_v3(stream.handle):
                    raise EngineError(f"{self.path.name}: TensorRT inference failed (execute_async_v3 returned False)")
                out: dict[str, np.ndarray] = {}
                for name in self._outputs or {}:
                    shape = tuple(self._context.get_tensor_shape(name))
                    host = self._host[name][: int(np.prod(shape))]
                    cuda.memcpy_dtoh_async(host, self._dev[name], stream)
                    out[name] = host.reshape(shape)
                stream.synchronize()
            finally:
                cuda.Context.pop()
        return out
