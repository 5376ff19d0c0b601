"""`python -m engines info | build | check` and `python -m stream --backend ...` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT
from engines.backends import probe

FACTS = probe()
no_trt = pytest.mark.skipif(FACTS.trt_usable, reason="this machine can run TensorRT")
no_cuda_ep = pytest.mark.skipif("CUDAExecutionProvider" in FACTS.ort_providers, reason="this onnxruntime has CUDA")


def run(module: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.mark.timeout(60)
def test_info_exits_0_and_lists_the_facts():
    r = run("engines", "info")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.startswith("backends: auto, ort-cpu, ort-cuda, ort-trt, trt\n")
    assert f"onnxruntime {FACTS.ort_version}: providers " in out
    assert "\nGPU" in out and "\nTensorRT: " in out and "\npycuda: " in out
    assert "  ort-cpu   yes" in out
    assert f"auto -> {_auto_by_the_documented_rule()} (" in out
    assert "engine cache: " in out


@no_trt
@pytest.mark.timeout(60)
def test_build_without_tensorrt_is_one_clear_line_exit_1():
    r = run("engines", "build", "models/yolox_nano.onnx", "--fp16")
    assert r.returncode == 1
    assert r.stderr.startswith("error: building a TensorRT engine needs TensorRT")
    assert r.stderr.count("\n") == 1 and r.stdout == ""


@pytest.mark.timeout(60)
def test_build_of_a_missing_model_is_a_usage_error():
    r = run("engines", "build", "models/nope.onnx")
    assert r.returncode == 2 and r.stderr == "error: model not found: models/nope.onnx (give an .onnx or a depth model card .yaml)\n"


@pytest.mark.timeout(60)
def test_check_fp16_on_the_cpu():
    r = run("engines", "check", "models/yolox_nano.onnx", "--a", "ort-cpu", "--b", "ort-cpu:fp16", "--frames", "2")
    assert r.returncode == 0, r.stderr
    assert "ort-cpu:fp32 (A, reference) vs ort-cpu:fp16 (B) on 2 frames (yolox detector: frames letterboxed as its family expects)" in r.stdout
    assert "boxes: A " in r.stdout and r.stdout.splitlines()[-1].startswith("OK: within tolerance")


@pytest.mark.timeout(60)
def test_check_past_tolerance_exits_1():
    r = run("engines", "check", "models/yolox_nano.onnx", "--b", "ort-cpu:fp16", "--frames", "1", "--tol", "0")
    assert r.returncode == 1 and "FAIL: output 'output': mean abs diff is" in r.stdout


def test_check_bad_variant_is_a_usage_error():
    r = run("engines", "check", "models/yolox_nano.onnx", "--b", "cuda")
    assert r.returncode == 2 and r.stderr.startswith("error: variant 'cuda': unknown backend 'cuda'")


@no_trt
@pytest.mark.timeout(60)
def test_stream_backend_trt_here_is_one_clear_line_exit_1():
    r = run("stream", "--source", "demo", "--backend", "trt", "--max-frames", "1", "--quiet")
    assert r.returncode == 1
    assert r.stderr.startswith("error: --backend trt needs TensorRT") and r.stderr.count("\n") == 1


@no_cuda_ep
@pytest.mark.timeout(60)
def test_stream_backend_ort_cuda_here_is_one_clear_line_exit_1():
    r = run("stream", "--source", "demo", "--backend", "ort-cuda", "--max-frames", "1", "--quiet")
    assert r.returncode == 1
    assert r.stderr.startswith("error: --backend ort-cuda asked for CUDAExecutionProvider but this onnxruntime")
    assert r.stderr.count("\n") == 1


def _auto_by_the_documented_rule() -> str:
    """What ``auto`` must pick here, by the rule the README states (TensorRT if it imports and a GPU is present,
    else ONNX Runtime's CUDA provider, else the CPU), from facts read here, not from engines.backends."""
    import importlib.util
    import shutil

    import onnxruntime

    gpu = shutil.which("nvidia-smi") is not None and subprocess.run(
        ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30).stdout.startswith("GPU ")
    if gpu and importlib.util.find_spec("tensorrt") is not None and importlib.util.find_spec("pycuda") is not None:
        return "trt"
    return "ort-cuda" if "CUDAExecutionProvider" in onnxruntime.get_available_providers() else "ort-cpu"


@pytest.mark.timeout(120)
def test_stream_backend_auto_says_what_it_chose_and_records_it(tmp_path):
    jsonl = tmp_path / "x.jsonl"
    r = run("stream", "--source", "demo", "--backend", "auto", "--max-frames", "3", "--jsonl", str(jsonl))
    assert r.returncode == 0, r.stderr
    expected = _auto_by_the_documented_rule()
    assert r.stderr.count("INFO: backend: ") == 1
    assert f"INFO: backend: {expected} (auto: " in r.stderr
    assert f"\nbackend: {expected} (auto: " in r.stdout
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(records) == 3 and {rec["backend"] for rec in records} == {expected}


def test_stream_unknown_backend_is_a_usage_error():
    r = run("stream", "--backend", "cuda")
    assert r.returncode == 2 and "argument --backend: invalid choice: 'cuda'" in r.stderr
