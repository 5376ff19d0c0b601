"""Backend choice as pure functions of a machine's facts; the config key and the CLI flag."""

from __future__ import annotations

from pathlib import Path

import pytest

from engines.backends import (
    BACKENDS, Choice, EngineOptions, Facts, Gpu, choose_backend, parse_nvidia_smi, probe, resolve_options, unavailable_reason,
)
from depthstream.schema.config import load_config
from depthstream.errors import ConfigError, EngineError

CPU_ONLY = Facts(ort_version="1.32.0", ort_providers=("AzureExecutionProvider", "CPUExecutionProvider"),
                 tensorrt_note="not installed", pycuda_note="not installed", gpu_note="no nvidia-smi on PATH and no pycuda")
RTX = Gpu("NVIDIA GeForce RTX 3060", "8.6", 12288)
ORT_GPU = Facts(ort_version="1.22.0", ort_providers=("CUDAExecutionProvider", "CPUExecutionProvider"),
                tensorrt_note="not installed", pycuda_note="not installed", gpus=(RTX,), gpu_note="nvidia-smi")
FULL = Facts(ort_version="1.22.0", ort_providers=("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
             tensorrt="10.9.0", pycuda="2025.1", gpus=(RTX,), gpu_note="CUDA driver (pycuda)")
TRT_NO_PYCUDA = Facts(ort_version="1.32.0", ort_providers=("CPUExecutionProvider",), tensorrt="10.9.0",
                      pycuda_note="not installed", gpus=(RTX,), gpu_note="nvidia-smi")
TRT_NO_GPU = Facts(ort_version="1.32.0", ort_providers=("CPUExecutionProvider",), tensorrt="10.9.0", pycuda="2025.1",
                   gpu_note="CUDA driver: cuInit failed: no CUDA-capable device is detected")


def test_auto_on_a_cpu_machine_picks_ort_cpu_and_says_why():
    c = choose_backend("auto", CPU_ONLY)
    assert c == Choice("ort-cpu", "auto", "no TensorRT; onnxruntime 1.32.0 has no CUDAExecutionProvider")
    assert c.describe() == "auto chose ort-cpu (no TensorRT; onnxruntime 1.32.0 has no CUDAExecutionProvider)"


def test_auto_prefers_tensorrt_then_ort_cuda():
    assert choose_backend("auto", FULL).backend == "trt"
    assert "TensorRT 10.9.0 and a GPU: NVIDIA GeForce RTX 3060" in choose_backend("auto", FULL).reason
    assert choose_backend("auto", ORT_GPU).backend == "ort-cuda"
    assert choose_backend("auto", TRT_NO_PYCUDA).reason.startswith("TensorRT 10.9.0 but no pycuda")
    assert choose_backend("auto", TRT_NO_GPU).reason.startswith("TensorRT 10.9.0 but no GPU")
    assert choose_backend("auto", TRT_NO_GPU).backend == "ort-cpu"


@pytest.mark.parametrize("backend", BACKENDS[1:])
def test_explicit_backends_run_where_everything_is_there(backend):
    assert choose_backend(backend, FULL) == Choice(backend, backend)


@pytest.mark.parametrize("backend, facts, message", [
    ("ort-cuda", CPU_ONLY, r"^--backend ort-cuda asked for CUDAExecutionProvider but this onnxruntime 1.32.0 has only "
                           r"CPUExecutionProvider: pip uninstall -y onnxruntime && pip install "
                           r"'onnxruntime-gpu\[cuda,cudnn\]>=1.27,<1.32' \(replaces the CPU wheel; CUDA 13 and cuDNN 9 "
                           r"come with it, NVIDIA driver 580 or newer\), or use --backend ort-cpu$"),
    ("ort-trt", ORT_GPU, r"^--backend ort-trt asked for TensorrtExecutionProvider but this onnxruntime 1.22.0 has only "
                         r"CUDAExecutionProvider, CPUExecutionProvider: pip uninstall -y onnxruntime .*, then pip install "
                         r"'tensorrt-cu13-libs>=10.13,<11' \(its TensorRT provider is built against TensorRT 10\)"),
    ("trt", CPU_ONLY, r"^--backend trt needs TensorRT, which is not installed here \(Python package 'tensorrt'\): "
                      r"pip install -e '.\[gpu\]' on a machine with an NVIDIA GPU \(on Jetson, TensorRT comes with "
                      r"JetPack\), or use --backend ort-cpu$"),
    ("trt", TRT_NO_PYCUDA, r"^--backend trt needs pycuda for its CUDA buffers and stream, which is not installed"),
    ("trt", TRT_NO_GPU, r"^--backend trt found TensorRT 10.9.0 but no NVIDIA GPU \(CUDA driver: cuInit failed"),
])
def test_explicit_request_this_machine_cannot_run_is_one_clear_line(backend, facts, message):
    with pytest.raises(EngineError, match=message):
        choose_backend(backend, facts)
    assert "\n" not in unavailable_reason(backend, facts)


def test_ort_cpu_is_always_available():
    assert unavailable_reason("ort-cpu", Facts()) is None


def test_unknown_backend():
    with pytest.raises(EngineError, match=r"unknown backend 'gpu': expected one of auto, ort-cpu, ort-cuda, ort-trt, trt"):
        choose_backend("gpu", CPU_ONLY)
    with pytest.raises(EngineError, match=r"unknown backend 'tensorrt'"):
        EngineOptions("tensorrt")


def test_resolved_auto_options_allow_a_visible_fallback_and_explicit_ones_do_not():
    opts, choice = resolve_options(EngineOptions("auto", fp16=False, cache_dir="/c"), CPU_ONLY)
    assert opts == EngineOptions("ort-cpu", fp16=False, cache_dir="/c", fallback=True) and choice.auto
    opts, choice = resolve_options(EngineOptions("ort-cuda"), ORT_GPU)
    assert opts.backend == "ort-cuda" and not opts.fallback and not choice.auto


def test_describe_running_names_a_fallback():
    c = Choice("ort-cuda", "auto", "no TensorRT")
    assert c.describe_running("ort-cuda") == "ort-cuda (auto: no TensorRT)"
    assert c.describe_running("ort-cpu") == "ort-cpu (auto chose ort-cuda, which did not load: ort-cpu runs instead)"
    assert Choice("trt", "trt").describe_running("trt") == "trt (asked for)"


def test_nvidia_smi_csv():
    text = "NVIDIA GeForce RTX 3060, 8.6, 12288\nOrin (nvgpu), 8.7, [N/A]\n\n"
    assert parse_nvidia_smi(text) == (RTX, Gpu("Orin (nvgpu)", "8.7", None))


def test_this_machine_is_probed_without_tensorrt_imports_failing():
    facts = probe()
    assert "CPUExecutionProvider" in facts.ort_providers
    assert facts.ort_version
    if facts.tensorrt is None:
        assert facts.tensorrt_note


def test_engine_config_section():
    cfg = load_config()
    assert (cfg.engine.backend, cfg.engine.fp16, cfg.engine.cache_dir) == ("auto", True, None)
    cfg = load_config(sets=["engine.backend=trt", "engine.fp16=false", "engine.cache_dir=~/trt-cache"])
    assert cfg.engine.backend == "trt" and cfg.engine.fp16 is False
    assert cfg.engine.cache_dir == str(Path.home() / "trt-cache")  # ~ is the home folder


def test_engine_backend_config_names_the_allowed_values():
    with pytest.raises(ConfigError, match=r"engine.backend: got 'gpu', expected auto \| ort-cpu \| ort-cuda \| ort-trt \| trt"):
        load_config(sets=["engine.backend=gpu"])


def test_gpus_from_nvidia_smi(monkeypatch):
    """nvidia-smi found and answering, failing, or absent: GPUs or the reason there are none."""
    import subprocess

    from engines import backends

    monkeypatch.setattr(backends.shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    monkeypatch.setattr(backends.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, "NVIDIA H100 80GB HBM3, 9.0, 81559\n", ""))
    assert backends.probe_gpus(use_pycuda=False) == ((Gpu("NVIDIA H100 80GB HBM3", "9.0", 81559),), "nvidia-smi")
    monkeypatch.setattr(backends.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(
        a, 9, "", "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n"))
    assert backends.probe_gpus(use_pycuda=False) == ((), "nvidia-smi failed: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.")
    monkeypatch.setattr(backends.shutil, "which", lambda name: None)
    assert backends.probe_gpus(use_pycuda=False) == ((), "no nvidia-smi on PATH and no pycuda")
