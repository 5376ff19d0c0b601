"""ONNX Runtime engine: a tiny graph built here and the shipped YOLOX, explicit providers, and the
check of the provider that really runs (ONNX Runtime falls back silently; we must not)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from conftest import YOLOX
from engines import backends
from engines.backends import EngineOptions, Facts
from engines.factory import create_engine
from engines.ort import OrtEngine, check_running, providers_for
from depthstream.errors import EngineError


def tiny_onnx(path: Path, scale: float = 2.0) -> Path:
    """y = x * scale + 1, x float32 [batch, 3] with a dynamic batch."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "s"], ["m"]), helper.make_node("Add", ["m", "one"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor("s", TensorProto.FLOAT, [], [scale]), helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


CPU_ONLY = Facts(ort_version="1.32.0", ort_providers=("CPUExecutionProvider",), tensorrt_note="not installed",
                 pycuda_note="not installed", gpu_note="no nvidia-smi on PATH and no pycuda")
ORT_GPU = Facts(ort_version="1.22.0", ort_providers=("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
                tensorrt_note="not installed", pycuda_note="not installed", gpu_note="nvidia-smi")


@pytest.fixture
def tiny(tmp_path) -> Path:
    return tiny_onnx(tmp_path / "tiny.onnx")


def test_tiny_graph_specs_and_values(tiny):
    with OrtEngine(tiny) as e:
        assert e.inputs["x"].shape == (None, 3) and e.inputs["x"].dtype == np.float32
        assert e.outputs["y"].describe() == "y: float32[?, 3]"
        for batch in (1, 4):
            x = np.arange(batch * 3, dtype=np.float32).reshape(batch, 3)
            np.testing.assert_allclose(e.infer({"x": x})["y"], x * 2 + 1)
        assert e.providers == ["CPUExecutionProvider"] and e.backend == "ort-cpu"


def test_tiny_graph_wrong_rank_says_what_fits(tiny):
    with OrtEngine(tiny) as e, pytest.raises(EngineError, match=r"has shape \(3,\), the model expects x: float32\[\?, 3\] \(\? = any size\)"):
        e.infer({"x": np.zeros(3, np.float32)})


def test_yolox_through_the_factory():
    engine = create_engine(YOLOX, EngineOptions("ort-cpu"), threads=1)
    assert isinstance(engine, OrtEngine)
    with engine:
        out = engine.infer({"images": np.full((1, 3, 416, 416), 114, np.float32)})
    assert out["output"].shape == (1, 3549, 85)


def test_providers_are_explicit(tmp_path):
    assert providers_for("ort-cpu") == [("CPUExecutionProvider", {})]
    assert [p[0] for p in providers_for("ort-cuda")] == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    trt = providers_for("ort-trt", fp16=True, cache_dir=tmp_path)
    assert [p[0] for p in trt] == ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    opts = trt[0][1]
    assert opts["trt_fp16_enable"] is True and opts["trt_engine_cache_enable"] is True
    assert opts["trt_engine_cache_path"] == str(tmp_path / "ort-trt") == opts["trt_timing_cache_path"]
    assert providers_for("ort-trt", fp16=False, cache_dir=tmp_path)[0][1]["trt_fp16_enable"] is False


# Provider options as ONNX Runtime documents them (not as engines.ort builds them): the TensorRT provider's in the
# "Configurations" section of https://onnxruntime.ai/docs/execution-providers/TensorRT-ExecutionProvider.html, the
# CUDA provider's in https://onnxruntime.ai/docs/execution-providers/CUDA-ExecutionProvider.html. A misspelt key is
# refused only when the provider loads, on a GPU machine: this is where a CPU-only CI can catch it.
DOCUMENTED_OPTIONS = {
    "TensorrtExecutionProvider": {
        "device_id", "user_compute_stream", "trt_max_workspace_size", "trt_max_partition_iterations",
        "trt_min_subgraph_size", "trt_fp16_enable", "trt_bf16_enable", "trt_int8_enable",
        "trt_int8_calibration_table_name", "trt_int8_use_native_calibration_table", "trt_dla_enable", "trt_dla_core",
        "trt_engine_cache_enable", "trt_engine_cache_path", "trt_engine_cache_prefix", "trt_dump_subgraphs",
        "trt_force_sequential_engine_build", "trt_context_memory_sharing_enable", "trt_layer_norm_fp32_fallback",
        "trt_timing_cache_enable", "trt_timing_cache_path", "trt_force_timing_cache", "trt_detailed_build_log",
        "trt_build_heuristics_enable", "trt_sparsity_enable", "trt_builder_optimization_level", "trt_auxiliary_streams",
        "trt_cuda_graph_enable", "trt_engine_decryption_enable", "trt_engine_decryption_lib_path",
    },
    "CUDAExecutionProvider": {
        "device_id", "user_compute_stream", "do_copy_in_default_stream", "gpu_mem_limit", "arena_extend_strategy",
        "cudnn_conv_algo_search", "cudnn_conv_use_max_workspace", "cudnn_conv1d_pad_to_nc1d", "enable_cuda_graph",
        "enable_skip_layer_norm_strict_mode", "use_tf32", "prefer_nhwc", "use_ep_level_unified_stream",
    },
    "CPUExecutionProvider": set(),
}


@pytest.mark.parametrize("backend", ["ort-cpu", "ort-cuda", "ort-trt"])
@pytest.mark.parametrize("fp16", [True, False])
def test_provider_options_are_ones_onnx_runtime_documents(backend, fp16, tmp_path):
    for name, options in providers_for(backend, fp16=fp16, cache_dir=tmp_path):
        unknown = set(options) - DOCUMENTED_OPTIONS[name]
        assert not unknown, f"{name} does not document {sorted(unknown)}"
        if name == "TensorrtExecutionProvider":  # what the user asked for: FP16 or not, engines cached under cache_dir
            assert options["trt_fp16_enable"] is fp16 and options["trt_engine_cache_enable"] is True
            assert Path(options["trt_engine_cache_path"]).is_relative_to(tmp_path)


def test_check_running_accepts_the_provider_asked_for():
    assert check_running("ort-cuda", ["CUDAExecutionProvider", "CPUExecutionProvider"], fallback=False) == "ort-cuda"
    assert check_running("ort-cpu", ["CPUExecutionProvider"], fallback=False) == "ort-cpu"


def test_check_running_explicit_fallback_is_an_error():
    with pytest.raises(EngineError, match=r"m.onnx: --backend ort-cuda asked for CUDAExecutionProvider but ONNX Runtime "
                                          r"runs CPUExecutionProvider .*, or use --backend ort-cpu$"):
        check_running("ort-cuda", ["CPUExecutionProvider"], fallback=False, model="m.onnx")


def test_check_running_auto_fallback_is_a_visible_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="engines.ort"):
        assert check_running("ort-trt", ["CUDAExecutionProvider", "CPUExecutionProvider"], fallback=True) == "ort-cuda"
    assert "asked for TensorrtExecutionProvider but ONNX Runtime runs CUDAExecutionProvider" in caplog.text
    assert "falling back to CUDAExecutionProvider" in caplog.text


def test_unavailable_provider_fails_before_the_session(tiny, monkeypatch):
    """get_available_providers() lacks CUDA: one line naming what this onnxruntime has and what to install."""
    monkeypatch.setattr(backends, "probe", lambda: CPU_ONLY)
    with pytest.raises(EngineError, match=r"^--backend ort-cuda asked for CUDAExecutionProvider but this onnxruntime "
                                          r"1.32.0 has only CPUExecutionProvider: pip uninstall -y onnxruntime && pip install "
                                          r"'onnxruntime-gpu\[cuda,cudnn\]>=1.27,<1.32' .*, or use --backend ort-cpu$"):
        OrtEngine(tiny, backend="ort-cuda").open()


def test_real_available_providers_are_read(monkeypatch):
    """The facts come from onnxruntime.get_available_providers() (patched here to a GPU build's list)."""
    backends.probe.cache_clear()
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    try:
        facts = backends.probe()
        assert facts.ort_providers == ("CUDAExecutionProvider", "CPUExecutionProvider")
        assert backends.choose_backend("auto", facts).backend in ("ort-cuda", "trt")
    finally:
        backends.probe.cache_clear()


class _FallbackSession:
    """A real CPU session that reports what ONNX Runtime reports after a GPU provider failed to load."""

    def __init__(self, path, sess_options=None, providers=None):
        self.asked = providers
        self._real = _REAL_SESSION(path, sess_options=sess_options, providers=["CPUExecutionProvider"])

    def get_providers(self):
        return ["CPUExecutionProvider"]

    def __getattr__(self, name):
        return getattr(self._real, name)


_REAL_SESSION = onnxruntime.InferenceSession


def test_session_fallback_is_caught_for_an_explicit_request(tiny, monkeypatch):
    monkeypatch.setattr(backends, "probe", lambda: ORT_GPU)
    monkeypatch.setattr(onnxruntime, "InferenceSession", _FallbackSession)
    engine = OrtEngine(tiny, backend="ort-cuda")
    with pytest.raises(EngineError, match=r"tiny.onnx: --backend ort-cuda asked for CUDAExecutionProvider but ONNX Runtime runs CPUExecutionProvider"):
        engine.open()
    assert not engine.is_open


def test_session_fallback_under_auto_warns_and_says_what_runs(tiny, monkeypatch, caplog):
    monkeypatch.setattr(backends, "probe", lambda: ORT_GPU)
    monkeypatch.setattr(onnxruntime, "InferenceSession", _FallbackSession)
    engine = create_engine(tiny, EngineOptions("auto"))
    assert isinstance(engine, OrtEngine) and engine.backend == "ort-cuda" and engine.fallback
    with caplog.at_level(logging.WARNING, logger="engines.ort"), engine:
        assert engine.backend == "ort-cpu"
        assert engine.infer({"x": np.ones((1, 3), np.float32)})["y"].tolist() == [[3.0, 3.0, 3.0]]
    assert "falling back to CPUExecutionProvider" in caplog.text


def test_trt_provider_options_reach_the_session(tiny, monkeypatch, tmp_path):
    monkeypatch.setattr(backends, "probe", lambda: ORT_GPU)
    seen = {}

    class Recording(_FallbackSession):
        def __init__(self, path, sess_options=None, providers=None):
            super().__init__(path, sess_options, providers)
            seen["providers"] = providers

        def get_providers(self):
            return ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]

    monkeypatch.setattr(onnxruntime, "InferenceSession", Recording)
    with OrtEngine(tiny, backend="ort-trt", fp16=False, cache_dir=tmp_path) as e:
        assert e.backend == "ort-trt"
    names = [name for name, _ in seen["providers"]]
    assert names == ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    options = seen["providers"][0][1]
    assert options["trt_fp16_enable"] is False  # as asked: FP32 engines
    cache = Path(options["trt_engine_cache_path"])
    assert cache.is_dir() and cache.is_relative_to(tmp_path)  # created before TensorRT writes to it


def test_unknown_optimisation_level(tiny):
    with pytest.raises(EngineError, match=r"unknown graph optimisation level 'max': expected one of all, extended, basic, none"):
        OrtEngine(tiny, optimization="max")


def test_graph_optimisation_off_gives_the_same_numbers(tiny):
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    with OrtEngine(tiny, optimization="none") as a, OrtEngine(tiny) as b:
        np.testing.assert_array_equal(a.infer({"x": x})["y"], b.infer({"x": x})["y"])
