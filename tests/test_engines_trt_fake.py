"""TrtEngine's and the engine build's own logic on the CPU, against stand-ins for tensorrt and pycuda.driver that do
what the TensorRT / pycuda calls they make do (buffers as bytes, y = 2x + 1 as the "network"), and insist that
a CUDA context is current on the calling thread. This checks the engine's life cycle, buffer reuse,
optimization-profile limits, per-thread context handling and the FP16 build on both API shapes; it is no
substitute for the gpu tests.

The stand-ins model two TensorRT versions, each offering exactly the names its real module has for what the
product touches (taken from the Python bindings of tensorrt-cu12-bindings 10.16.1.11 and 11.4.0.106): TensorRT 11
has no ``BuilderFlag.FP16`` (nor any precision flag; every network is strongly typed). Touching a name the modelled
version lacks raises AttributeError, as the real module would, and is recorded: the test fails even where the
code under test catches the error."""

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

# -- what each modelled TensorRT version has -----------------------------------------------------------------

MISSING: list[str] = []  # names the code touched that the modelled version lacks
VERSIONS = ("10.16.1.11", "11.4.0.106")
BUILDER_FLAGS = {"10": ("FP16", "BF16", "FP8", "TF32", "REFIT", "DIRECT_IO", "STRICT_TYPES", "OBEY_PRECISION_CONSTRAINTS",
                        "PREFER_PRECISION_CONSTRAINTS", "SPARSE_WEIGHTS"),
                 "11": ("TF32", "REFIT", "DIRECT_IO", "SPARSE_WEIGHTS")}
NETWORK_FLAGS = {"10": ("EXPLICIT_BATCH", "STRONGLY_TYPED"), "11": ("STRONGLY_TYPED",)}


class _Strict:
    """Attribute lookups that fail land here: recorded in MISSING, then AttributeError like the real bindings."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        MISSING.append(f"{type(self).__name__}.{name}")
        raise AttributeError(f"'tensorrt.{type(self).__name__}' object has no attribute '{name}'")


class _Namespace(_Strict):
    def __init__(self, label: str, **names):
        self.__class__ = type(label, (_Namespace,), {})
        self.__dict__.update(names)


def _enum(label: str, members: tuple[str, ...]) -> _Namespace:
    return _Namespace(label, __members__={m: m for m in members}, **{m: m for m in members})


@pytest.fixture(autouse=True)
def no_missing_names():
    MISSING.clear()
    yield
    assert MISSING == [], f"the code touched names the modelled TensorRT lacks: {MISSING}"


# -- tensorrt stand-in: an engine for y = 2x + 1, x float32 [batch, 3], profile batch 1..8 ---------------


_Mode = _enum("TensorIOMode", ("NONE", "INPUT", "OUTPUT"))


class _ExecContext(_Strict):
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


class _CudaEngine(_Strict):
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


class _Runtime(_Strict):
    def __init__(self, logger):
        self.logger = logger

    def deserialize_cuda_engine(self, blob):
        _need_context("deserialize_cuda_engine")
        if blob == b"raises":
            raise RuntimeError("[TRT] [E] IRuntime::deserializeCudaEngine: Error Code 1: Serialization (version tag)")
        return _CudaEngine() if blob == b"fake engine" else None


class _Logger(_Strict):
    WARNING = 2

    def __init__(self, level):
        self.level = level


def _runtime_module(version: str) -> _Namespace:
    """The runtime side: the same names in TensorRT 10 and 11 (the tensor-name API of 10 is unchanged in 11)."""
    return _Namespace("tensorrt", __version__=version, Logger=_Logger, Runtime=_Runtime, TensorIOMode=_Mode,
                      nptype=lambda dtype: dtype)


@pytest.fixture(params=VERSIONS)
def fake_gpu(monkeypatch, request):
    package = types.ModuleType("pycuda")
    package.driver = cuda
    monkeypatch.setitem(sys.modules, "pycuda", package)
    monkeypatch.setitem(sys.modules, "pycuda.driver", cuda)
    monkeypatch.setitem(sys.modules, "tensorrt", _runtime_module(request.param))
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


def test_a_tensorrt_error_while_loading_is_one_line_and_frees_everything(fake_gpu, tmp_path):
    from engines.trt import TrtEngine

    bad = tmp_path / "bad.engine"
    bad.write_bytes(b"raises")
    with pytest.raises(EngineError, match=r"^TensorRT 1[01]\.[0-9.]+ could not load bad.engine: \[TRT\] \[E\] "
                                          r"IRuntime::deserializeCudaEngine: Error Code 1"):
        TrtEngine(bad).open()
    assert _DevBuf.live == 0 and _Device.ctxs[0].detached


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


# -- the build, against a stand-in builder that records what it is told, in each version's API shape -------


def _fake_builder_module(calls: dict, dynamic: bool, version: str, fail: str | None = None) -> _Namespace:
    """TensorRT's build API as ``version`` has it. fail: ``build`` makes build_serialized_network raise as the
    bindings do, ``none`` makes it return None (TensorRT logged why)."""
    major = version.split(".")[0]

    class ITensor(_Strict):
        name = "x"
        shape = (-1, 3) if dynamic else (1, 3)

    class INetworkDefinition(_Strict):
        num_inputs = 1

        def get_input(self, i):
            return ITensor()

    class OnnxParser(_Strict):
        num_errors = 0

        def __init__(self, network, logger):
            pass

        def parse_from_file(self, path):
            calls["parsed"] = path
            return True

    class IOptimizationProfile(_Strict):
        def set_shape(self, name, lo, opt, hi):
            calls["profile"] = (name, lo, opt, hi)

    class ITimingCache(_Strict):
        def __init__(self, blob):
            self.blob = blob

        def serialize(self):
            return b"timings after " + self.blob

    class IBuilderConfig(_Strict):
        def __init__(self):
            self.flags, self.progress_monitor = [], None
            calls["flags"] = self.flags

        def set_memory_pool_limit(self, pool, size):
            calls["workspace"] = size

        def set_flag(self, flag):
            self.flags.append(flag)

        def create_timing_cache(self, blob):
            calls["timing_in"] = blob
            return ITimingCache(blob)

        def set_timing_cache(self, cache, ignore_mismatch):
            self.cache = cache

        def get_timing_cache(self):
            return self.cache

        def add_optimization_profile(self, profile):
            calls["profiles"] = calls.get("profiles", 0) + 1

    class Builder(_Strict):
        def __init__(self, logger):
            pass

        def create_network(self, flags=0):
            calls["network_flags"] = flags
            return INetworkDefinition()

        def create_builder_config(self):
            return IBuilderConfig()

        def create_optimization_profile(self):
            return IOptimizationProfile()

        def build_serialized_network(self, network, config):
            if fail == "build":
                raise RuntimeError("[TRT] [E] IBuilder::buildSerializedNetwork: Error Code 4: Internal Error (out of memory)")
            monitor = config.progress_monitor
            monitor.phase_start("Building engine", None, 3)
            for step in range(3):
                assert monitor.step_complete("Building engine", step) is True
            monitor.phase_finish("Building engine")
            return None if fail == "none" else b"serialised engine"

    if major == "10":
        Builder.platform_has_fast_fp16 = True  # gone in 11

    class IProgressMonitor:
        def __init__(self):
            pass

    return _Namespace(
        "tensorrt", __version__=version, Logger=_Logger, Builder=Builder, OnnxParser=OnnxParser,
        IProgressMonitor=IProgressMonitor, MemoryPoolType=_enum("MemoryPoolType", ("WORKSPACE", "TACTIC_DRAM")),
        BuilderFlag=_enum("BuilderFlag", BUILDER_FLAGS[major]),
        NetworkDefinitionCreationFlag=_enum("NetworkDefinitionCreationFlag", NETWORK_FLAGS[major]),
    )


def _request(tmp_path, precision="fp16"):
    timing = tmp_path / "timing.cache"
    timing.write_bytes(b"earlier")
    (tmp_path / "cache").mkdir(exist_ok=True)
    return build.BuildRequest(tiny_onnx(tmp_path / "m.onnx"), tmp_path / "cache" / f"m.{precision}.engine",
                              tmp_path / "cache" / f"m.{precision}.json", timing, precision,
                              {"x": ((1, 3), (4, 3), (8, 3))}, {})


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("dynamic", [False, True])
def test_build_with_tensorrt_writes_engine_and_timing_cache_and_reports_progress(tmp_path, monkeypatch, dynamic, version):
    calls: dict = {}
    monkeypatch.setitem(sys.modules, "tensorrt", _fake_builder_module(calls, dynamic, version))
    req = _request(tmp_path)
    said = []
    build.build_with_tensorrt(req, report=said.append)
    assert req.engine.read_bytes() == b"serialised engine" and not list(req.engine.parent.glob("*.tmp"))
    assert req.timing_cache.read_bytes() == b"timings after earlier"
    assert calls["timing_in"] == b"earlier" and calls["network_flags"] == 0
    assert said[-2:] == ["Building engine (3 steps)", "  Building engine: 1/3"]  # later steps: at most one a second
    if dynamic:
        assert calls["profile"] == ("x", (1, 3), (4, 3), (8, 3)) and calls["profiles"] == 1
    else:
        assert "profiles" not in calls  # fixed shapes need no optimization profile


def test_tensorrt_10_builds_fp16_with_the_builder_flag(tmp_path, monkeypatch):
    calls: dict = {}
    monkeypatch.setitem(sys.modules, "tensorrt", _fake_builder_module(calls, False, "10.16.1.11"))
    req = _request(tmp_path)
    build.build_with_tensorrt(req, report=lambda text: None)
    assert calls["flags"] == ["FP16"] and calls["parsed"] == str(req.onnx)  # the FP32 ONNX, weakly typed
    assert not list(req.engine.parent.glob("*.fp16.onnx"))


def test_tensorrt_11_builds_fp16_from_an_fp16_onnx_without_any_precision_flag(tmp_path, monkeypatch):
    import onnx

    calls: dict = {}
    monkeypatch.setitem(sys.modules, "tensorrt", _fake_builder_module(calls, False, "11.4.0.106"))
    req = _request(tmp_path)
    said = []
    build.build_with_tensorrt(req, report=said.append)
    assert calls["flags"] == []  # TensorRT 11 has no FP16 flag: nothing set, nothing touched (MISSING is empty)
    parsed = onnx.load(calls["parsed"])
    assert calls["parsed"] == str(req.engine.parent / "m.fp16.onnx")
    assert {i.data_type for i in parsed.graph.initializer} == {onnx.TensorProto.FLOAT16}  # the weights are FP16
    assert [i.type.tensor_type.elem_type for i in parsed.graph.input] == [onnx.TensorProto.FLOAT]  # I/O stay FP32
    assert said[0] == "TensorRT 11.4.0.106 builds strongly typed networks: FP16 from m.fp16.onnx"


@pytest.mark.parametrize("version", VERSIONS)
def test_fp32_builds_set_no_precision_on_either_version(tmp_path, monkeypatch, version):
    calls: dict = {}
    monkeypatch.setitem(sys.modules, "tensorrt", _fake_builder_module(calls, False, version))
    req = _request(tmp_path, "fp32")
    build.build_with_tensorrt(req, report=lambda text: None)
    assert calls["flags"] == [] and calls["parsed"] == str(req.onnx)


@pytest.mark.parametrize("version", VERSIONS)
def test_a_tensorrt_failure_is_one_error_line(tmp_path, monkeypatch, version):
    monkeypatch.setitem(sys.modules, "tensorrt", _fake_builder_module({}, False, version, fail="build"))
    with pytest.raises(EngineError, match=rf"^TensorRT {version} failed to build an engine from m.onnx: \[TRT\] \[E\] "
                                          r"IBuilder::buildSerializedNetwork: Error Code 4: Internal Error \(out of memory\)$"):
        build.build_with_tensorrt(_request(tmp_path), report=lambda text: None)
    monkeypatch.setitem(sys.modules, "tensorrt", _fake_builder_module({}, False, version, fail="none"))
    with pytest.raises(EngineError, match=r"^TensorRT could not build an engine for m.onnx \(see the TensorRT messages"):
        build.build_with_tensorrt(_request(tmp_path), report=lambda text: None)


def test_the_old_code_path_would_have_been_caught(tmp_path, monkeypatch):
    """The stand-in of TensorRT 11 really lacks the flag: asking for it is recorded (and would fail a test)."""
    module = _fake_builder_module({}, False, "11.4.0.106")
    with pytest.raises(AttributeError):
        module.BuilderFlag.FP16  # noqa: B018
    assert MISSING == ["BuilderFlag.FP16"]
    MISSING.clear()


def test_tensorrt_missing_is_one_error_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import fails
    with pytest.raises(EngineError, match=r"^building a TensorRT engine needs TensorRT, which does not import .*: "
                                          r"pip install -e '.\[gpu\]'"):
        build.build_with_tensorrt(_request(tmp_path), report=lambda text: None)
