"""TrtEngine's own logic on the CPU, against stand-ins for tensorrt and pycuda.driver that do what the
TensorRT 10 / pycuda calls it makes do (buffers as bytes, y = 2x + 1 as the "network"), and insist that
a CUDA context is current on the calling thread. This checks the engine's life cycle, buffer reuse,
optimization-profile limits and per-thread context handling; it is no substitute for the gpu tests."""

from __future__ import annotations

import sys
import threading
import types

import numpy as np
import pytest

from engines import backends, build
from depthstream.errors import EngineError
from test_engines_ort import tiny_onnx

# -- pycuda.driver stand-in ----------------------------------------------------------------------------

_tls = threading.local()


def _stack() -> list:
    if not hasattr(_tls, "stack"):
        _tls.stack = []
    return _tls.stack


def _need_context(what: str) -> None:
    if not _stack():
        raise RuntimeError(f"{what} without a current CUDA context on thread {threading.current_thread().name}")


class _Ctx:
    def __init__(self):
        self.detached = False

    def push(self):
        _stack().append(self)

    def detach(self):
        self.detached = True


class _Context:
    @staticmethod
    def pop():
        _stack().pop()


class _Device:
    ctxs: list = []

    def __init__(self, i):
        self.i = i

    @staticmethod
    def count():
        return 1

    def name(self):
        return "Fake GPU"

    def compute_capability(self):
        return (8, 6)

    def total_memory(self):
        return 8 << 30

    def retain_primary_context(self):
        ctx = _Ctx()
        _Device.ctxs.append(ctx)
        return ctx


_memory: dict[int, "_DevBuf"] = {}


class _DevBuf:
    live = 0

    def __init__(self, nbytes):
        _need_context("mem_alloc")
        self.data = bytearray(nbytes)
        _memory[id(self)] = self
        _DevBuf.live += 1

    def __int__(self):
        return id(self)

    def free(self):
        _need_context("free")
        _memory.pop(id(self))
        _DevBuf.live -= 1


class _Stream:
    def __init__(self):
        _need_context("Stream()")
        self.handle = id(self)

    def synchronize(self):
        _need_context("synchronize")


def _htod(dev, host, stream):
    _need_context("memcpy_htod_async")
    raw = np.ascontiguousarray(host).tobytes()
    dev.data[: len(raw)] = raw


def _dtoh(host, dev, stream):
    _need_context("memcpy_dtoh_async")
    host[...] = np.frombuffer(bytes(dev.data[: host.nbytes]), host.dtype).reshape(host.shape)


cuda = types.SimpleNamespace(
    init=lambda: None, Device=_Device, Context=_Context, Error=RuntimeError, Stream=_Stream, mem_alloc=_DevBuf,
    pagelocked_empty=lambda n, dtype: np.zeros(n, dtype), memcpy_htod_async=_htod, memcpy_dtoh_async=_dtoh,
)

# -- tensorrt stand-in: an engine for y = 2x + 1, x float32 [batch, 3], profile batch 1..8 ---------------


class _Mode:
    INPUT, OUTPUT = "in", "out"


class _ExecContext:
    def __init__(self):
        self.shapes, self.addr = {}, {}

    def set_optimization_profile_async(self, index, stream):
        assert index == 0

    def set_input_shape(self, name, shape):
        shape = tuple(shape)
        if not (1 <= shape[0] <= 8 and shape[1:] == (3,)):
            return False
        self.shapes[name] = shape
        return True

    def get_tensor_shape(self, name):
        return self.shapes["x"]

    def set_tensor_address(self, name, address):
        self.addr[name] = address

    def execute_async_v3(self, stream_handle):
        _need_context("execute_async_v3")
        n = int(np.prod(self.shapes["x"]))
        x = np.frombuffer(bytes(_memory[self.addr["x"]].data[: n * 4]), np.float32)
        _memory[self.addr["y"]].data[: n * 4] = (x * 2 + 1).astype(np.float32).tobytes()
        return True


class _CudaEngine:
    num_io_tensors = 2
    num_optimization_profiles = 1

    def get_tensor_name(self, i):
        return "xy"[i]

    def get_tensor_mode(self, name):
        return _Mode.INPUT if name == "x" else _Mode.OUTPUT

    def get_tensor_dtype(self, name):
        return np.float32

    def get_tensor_shape(self, name):
        return (-1, 3)

    def get_tensor_profile_shape(self, name, index):
        return [(1, 3), (4, 3), (8, 3)]

    def create_execution_context(self):
        _need_context("create_execution_context")
        return _ExecContext()


class _Runtime:
    def __init__(self, logger):
        self.logger = logger

    def deserialize_cuda_engine(self, blob):
        _need_context("deserialize_cuda_engine")
        return _CudaEngine() if blob == b"fake engine" else None


trt = types.SimpleNamespace(
    __version__="10.9.0", Logger=type("Logger", (), {"WARNING": 2, "__init__": lambda self, level: None}),
    Runtime=_Runtime, TensorIOMode=_Mode, nptype=lambda dtype: dtype,
)


@pytest.fixture
def fake_gpu(monkeypatch):
    package = types.ModuleType("pycuda")
    package.driver = cuda
    monkeypatch.setitem(sys.modules, "pycuda", package)
    monkeypatch.setitem(sys.modules, "pycuda.driver", cuda)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    _Device.ctxs.clear()
    _DevBuf.live = 0
    yield
    assert _stack() == []  # every push on this thread was popped


@pytest.fixture
def plan(tmp_path):
    path = tmp_path / "tiny.engine"
    path.write_bytes(b"fake engine")
    return path


def test_life_cycle_shapes_and_reused_outputs(fake_gpu, plan):
    from engines.trt import TrtEngine

    e = TrtEngine(plan)
    with e:
        assert e.inputs["x"].describe() == "x: float32[?, 3]" and e.outputs["y"].describe() == "y: float32[?, 3]"
        assert _DevBuf.live == 2  # one device buffer per tensor, allocated once
        for n in (1, 5, 8):
            x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
            np.testing.assert_array_equal(e.infer({"x": x})["y"], x * 2 + 1)
        first = e.infer({"x": np.ones((2, 3), np.float32)})["y"]
        second = e.infer({"x": np.zeros((2, 3), np.float32)})["y"]
        assert np.shares_memory(first, second) and first.tolist() == [[1.0] * 3] * 2  # overwritten, as documented
        assert _DevBuf.live == 2
        with pytest.raises(EngineError, match=r"input 'x' has shape \(9, 3\), outside the engine's optimization profile "
                                              r"\(1, 3\)..\(8, 3\): rebuild with python -m engines build .*--shape x:MIN,OPT,MAX"):
            e.infer({"x": np.zeros((9, 3), np.float32)})
    assert _DevBuf.live == 0 and _Device.ctxs[0].detached


def test_two_engines_from_two_threads(fake_gpu, plan):
    """Each infer makes the context current on the thread that calls it (no context on the worker
    threads beforehand: the stand-in would raise)."""
    from engines.trt import TrtEngine

    errors, results = [], {}
    with TrtEngine(plan) as a, TrtEngine(plan) as b:
        def work(engine, key, value):
            try:
                results[key] = [engine.infer({"x": np.full((3, 3), value, np.float32)})["y"].copy() for _ in range(50)]
                assert _stack() == []
            except Exception as exc:  # reported by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(e, k, v)) for e, k, v in ((a, "a", 1.0), (b, "b", 2.0))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert not errors
    assert all((r == 3.0).all() for r in results["a"]) and all((r == 5.0).all() for r in results["b"])


def test_an_engine_that_does_not_deserialise_says_what_to_do(fake_gpu, tmp_path):
    from engines.trt import TrtEngine

    bad = tmp_path / "old.engine"
    bad.write_bytes(b"built by TensorRT 8")
    with pytest.raises(EngineError, match=r"TensorRT could not deserialise .*old.engine \(built by another TensorRT version "
                                          r"or for another GPU\?\): delete it and run 'python -m engines build"):
        TrtEngine(bad).open()
    assert _DevBuf.live == 0 and _Device.ctxs[0].detached  # nothing left behind


def test_an_onnx_is_built_once_then_reused(fake_gpu, tmp_path, monkeypatch):
    from engines.trt import TrtEngine

    facts = backends.Facts(tensorrt="10.9.0", pycuda="2025.1", gpus=(backends.Gpu("Fake GPU", "8.6"),))
    monkeypatch.setattr(backends, "probe", lambda: facts)
    calls = []

    def fake_build(req):
        calls.append(req)
        req.engine.write_bytes(b"fake engine")

    monkeypatch.setattr(build, "build_with_tensorrt", fake_build)
    model = tiny_onnx(tmp_path / "tiny.onnx")
    shapes = {"x": ((1, 3), (4, 3), (8, 3))}
    with TrtEngine(model, cache_dir=tmp_path, shapes=shapes) as e:
        assert e.built_because == "no cached engine" and e.engine_path.suffix == ".engine"
        assert calls[0].profile == shapes and calls[0].precision == "fp16"
        np.testing.assert_array_equal(e.infer({"x": np.ones((4, 3), np.float32)})["y"], np.full((4, 3), 3.0))
    with TrtEngine(model, cache_dir=tmp_path, shapes=shapes) as e:
        assert e.built_because is None and len(calls) == 1


# -- the build, against a stand-in builder that records what it is told ----------------------------------


def _fake_builder_module(calls: dict, dynamic: bool):
    class Tensor:
        name = "x"
        shape = (-1, 3) if dynamic else (1, 3)

    class Network:
        num_inputs = 1

        def get_input(self, i):
            return Tensor()

    class Parser:
        num_errors = 0

        def __init__(self, network, logger):
            pass

        def parse_from_file(self, path):
            calls["parsed"] = path
            return True

    class Profile:
        def set_shape(self, name, lo, opt, hi):
            calls["profile"] = (name, lo, opt, hi)

    class Cache:
        def __init__(self, blob):
            self.blob = blob

        def serialize(self):
            return b"timings after " + self.blob

    class Config:
        def __init__(self):
            self.flags, self.progress_monitor = [], None

        def set_memory_pool_limit(self, pool, size):
            calls["workspace"] = size

        def set_flag(self, flag):
            self.flags.append(flag)
            calls["flags"] = self.flags

        def create_timing_cache(self, blob):
            calls["timing_in"] = blob
            return Cache(blob)

        def set_timing_cache(self, cache, ignore_mismatch):
            self.cache = cache

        def get_timing_cache(self):
            return self.cache

        def add_optimization_profile(self, profile):
            calls["profiles"] = calls.get("profiles", 0) + 1

    class Builder:
        def __init__(self, logger):
            pass

        def create_network(self, flags):
            return Network()

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            monitor = config.progress_monitor
            monitor.phase_start("Building engine", None, 3)
            for step in range(3):
                assert monitor.step_complete("Building engine", step) is True
            monitor.phase_finish("Building engine")
            return b"serialised engine"

    class ProgressMonitor:
        def __init__(self):
            pass

    return types.SimpleNamespace(
        Logger=trt.Logger, Builder=Builder, OnnxParser=Parser, IProgressMonitor=ProgressMonitor,
        MemoryPoolType=types.SimpleNamespace(WORKSPACE="workspace"), BuilderFlag=types.SimpleNamespace(FP16="fp16"),
    )


@pytest.mark.parametrize("dynamic", [False, True])
def test_build_with_tensorrt_writes_engine_and_timing_cache_and_reports_progress(tmp_path, monkeypatch, dynamic):
    calls: dict = {}
    monkeypatch.setitem(sys.modules, "tensorrt", _fake_builder_module(calls, dynamic))
    timing = tmp_path / "timing.cache"
    timing.write_bytes(b"earlier")
    req = build.BuildRequest(tmp_path / "m.onnx", tmp_path / "m.fp16.engine", tmp_path / "m.fp16.json", timing, "fp16",
                             {"x": ((1, 3), (4, 3), (8, 3))}, {})
    said = []
    build.build_with_tensorrt(req, report=said.append)
    assert req.engine.read_bytes() == b"serialised engine" and not list(tmp_path.glob("*.tmp"))
    assert timing.read_bytes() == b"timings after earlier" and calls["timing_in"] == b"earlier"
    assert calls["flags"] == ["fp16"] and calls["parsed"] == str(req.onnx)
    assert said[0] == "Building engine (3 steps)" and said[1] == "  Building engine: 1/3"
    if dynamic:
        assert calls["profile"] == ("x", (1, 3), (4, 3), (8, 3)) and calls["profiles"] == 1
    else:
        assert "profiles" not in calls  # fixed shapes need no optimization profile
