"""TensorRT engine cache: shapes, cache key, rebuild decisions and the build flow, without TensorRT
(the build function is injected; the real one runs only where TensorRT is, see test_engines_trt.py)."""

from __future__ import annotations

import json
import logging

import pytest

from conftest import YOLOX
from engines.backends import Facts, Gpu
from engines.build import (
    cache_key, engine_paths, ensure_engine, key_parts, onnx_input_shapes, parse_shapes, rebuild_reason, require_tensorrt,
    resolve_profile, timing_cache_path,
)
from depthstream.errors import ConfigError, EngineError
from test_engines_ort import tiny_onnx

RTX = Gpu("NVIDIA GeForce RTX 3060", "8.6")
TRT = Facts(ort_version="1.22.0", ort_providers=("CPUExecutionProvider",), tensorrt="10.9.0", pycuda="2025.1",
            gpus=(RTX,), gpu_note="pycuda")
PROFILE = {"images": ((1, 3, 416, 416),) * 3}


def parts(**changes):
    base = key_parts("ab" * 32, "10.9.0", RTX, "fp16", PROFILE)
    return {**base, **changes}


# -- shapes --------------------------------------------------------------------------------------


def test_parse_shapes():
    assert parse_shapes(["images:1x3x416x416"]) == {"images": ((1, 3, 416, 416),) * 3}
    assert parse_shapes(["x:1x3x320x320,1x3x416x416,1x3x640x640"]) == {
        "x": ((1, 3, 320, 320), (1, 3, 416, 416), (1, 3, 640, 640))}


@pytest.mark.parametrize("item, message", [
    ("images", r"--shape expects NAME:SHAPE or NAME:MIN,OPT,MAX \(e.g. images:1x3x416x416\), got 'images'"),
    ("x:1x3xa", r"shape '1x3xa' is not a shape: expected dimensions joined by x"),
    ("x:1x0", r"shape '1x0' has a dimension < 1"),
    ("x:1x4,1x2,1x3", r"min <= opt <= max must hold in every dimension"),
    ("x:1x2,1x3", r"expected one shape or three \(min,opt,max\), got 2"),
])
def test_parse_shapes_errors(item, message):
    with pytest.raises(ConfigError, match=message):
        parse_shapes([item])


def test_profile_of_a_fixed_model_is_its_own_shape():
    assert resolve_profile(onnx_input_shapes(YOLOX)) == PROFILE


def test_profile_of_a_dynamic_input_needs_a_shape(tmp_path):
    tiny = tiny_onnx(tmp_path / "t.onnx")
    with pytest.raises(ConfigError, match=r"input 'x' has dynamic shape \?x3: give its shape, e.g. --shape x:1x3 \(or MIN,OPT,MAX for a range\)"):
        resolve_profile(onnx_input_shapes(tiny))
    assert resolve_profile(onnx_input_shapes(tiny), {"x": (4, 3)}) == {"x": ((4, 3),) * 3}
    assert resolve_profile({"x": (None, 3)}, {"x": ((1, 3), (4, 3), (8, 3))}) == {"x": ((1, 3), (4, 3), (8, 3))}


def test_profile_shape_must_fit_the_fixed_dims():
    with pytest.raises(ConfigError, match=r"input 'x' has shape \?x3; the shape 4x5 given for it does not fit"):
        resolve_profile({"x": (None, 3)}, {"x": (4, 5)})
    with pytest.raises(ConfigError, match=r"shapes given for \['y'\], which are not inputs of the model; its inputs are \['x'\]"):
        resolve_profile({"x": (1, 3)}, {"y": (1, 3)})


# -- cache key and rebuild decisions ----------------------------------------------------------------


def test_cache_key_is_stable_and_covers_every_part():
    assert cache_key(parts()) == cache_key(dict(reversed(list(parts().items()))))
    keys = {cache_key(parts())}
    for change in [dict(onnx_sha256="cd" * 32), dict(tensorrt="10.3.0"), dict(gpu="NVIDIA A100"),
                   dict(compute_capability="8.0"), dict(precision="fp32"),
                   dict(shapes={"images": ["1x3x640x640"] * 3})]:
        keys.add(cache_key(parts(**change)))
    assert len(keys) == 7


def test_rebuild_reason():
    sidecar = {**parts(), "key": cache_key(parts())}
    assert rebuild_reason(sidecar, parts()) is None
    assert rebuild_reason(None, parts(), engine_exists=False) == "no cached engine"
    assert rebuild_reason(None, parts(), engine_exists=True) == "the engine has no sidecar JSON (unknown origin)"
    assert rebuild_reason(sidecar, parts(), engine_exists=False) == "the engine file is missing (only its sidecar is there)"
    assert rebuild_reason(sidecar, parts(tensorrt="10.10.0")) == "TensorRT version 10.9.0 -> 10.10.0"
    assert rebuild_reason(sidecar, parts(gpu="Orin", compute_capability="8.7")) == "GPU NVIDIA GeForce RTX 3060 -> Orin; compute capability 8.6 -> 8.7"
    assert rebuild_reason(sidecar, parts(precision="fp32")) == "precision fp16 -> fp32"
    assert rebuild_reason(sidecar, parts(onnx_sha256="cd" * 32)) == "ONNX changed (sha256 abababababab... -> cdcdcdcdcdcd...)"
    assert rebuild_reason(sidecar, parts(shapes={"images": ["1x3x640x640"] * 3})).startswith("input shapes {'images': ['1x3x416x416'")
    assert rebuild_reason({**sidecar, "key": "0"}, parts()) == "cache key differs"


def test_engine_paths_one_slot_per_location_and_precision(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    e16, s16 = engine_paths(tmp_path / "cache", tmp_path / "a" / "m.onnx", "fp16")
    e32, _ = engine_paths(tmp_path / "cache", tmp_path / "a" / "m.onnx", "fp32")
    other, _ = engine_paths(tmp_path / "cache", tmp_path / "b" / "m.onnx", "fp16")
    assert e16.parent == tmp_path / "cache" / "trt" and e16.name.startswith("m-") and e16.name.endswith(".fp16.engine")
    assert s16 == e16.parent / e16.name.replace(".engine", ".json")
    assert len({e16, e32, other}) == 3
    assert timing_cache_path(tmp_path, "10.9.0", RTX).name == "timing-10.9.0-nvidia-geforce-rtx-3060-sm8.6.cache"


# -- the flow ---------------------------------------------------------------------------------------


class FakeBuild:
    def __init__(self):
        self.calls = []

    def __call__(self, req):
        self.calls.append(req)
        req.engine.write_bytes(b"engine for " + req.precision.encode())


def test_build_then_reuse_then_rebuild_with_a_visible_reason(tmp_path, caplog):
    model = tiny_onnx(tmp_path / "m.onnx")
    build = FakeBuild()
    kw = dict(cache_dir=tmp_path / "cache", shapes={"x": (1, 3)}, build=build)
    with caplog.at_level(logging.INFO, logger="engines.build"):
        engine, reason = ensure_engine(model, facts=TRT, **kw)
    assert reason == "no cached engine" and engine.read_bytes() == b"engine for fp16"
    assert "building FP16 engine for m.onnx (no cached engine)" in caplog.text
    side = json.loads(engine.with_suffix(".json").read_text())
    assert side["tensorrt"] == "10.9.0" and side["gpu"] == RTX.name and side["compute_capability"] == "8.6"
    assert side["precision"] == "fp16" and side["shapes"] == {"x": ["1x3", "1x3", "1x3"]}
    assert side["key"] == cache_key({k: side[k] for k in ("onnx_sha256", "tensorrt", "gpu", "compute_capability", "precision", "shapes")})
    assert build.calls[0].timing_cache.name.startswith("timing-10.9.0-")

    assert ensure_engine(model, facts=TRT, **kw) == (engine, None)  # cached
    assert len(build.calls) == 1

    newer = Facts(**{**TRT.__dict__, "tensorrt": "10.10.0"})
    assert ensure_engine(model, facts=newer, **kw)[1] == "TensorRT version 10.9.0 -> 10.10.0"

    tiny_onnx(model, scale=3.0)  # the ONNX changes
    assert ensure_engine(model, facts=newer, **kw)[1].startswith("ONNX changed (sha256 ")
    assert ensure_engine(model, facts=newer, **{**kw, "shapes": {"x": (2, 3)}})[1].startswith("input shapes")
    assert ensure_engine(model, facts=newer, force=True, **{**kw, "shapes": {"x": (2, 3)}})[1] == "--force"
    fp32, reason = ensure_engine(model, facts=newer, fp16=False, **kw)
    assert reason == "no cached engine" and fp32 != engine and fp32.read_bytes() == b"engine for fp32"


def test_a_failed_build_leaves_no_sidecar(tmp_path):
    model = tiny_onnx(tmp_path / "m.onnx")

    def broken(req):
        raise EngineError("TensorRT could not build an engine for m.onnx")

    with pytest.raises(EngineError, match="could not build"):
        ensure_engine(model, facts=TRT, cache_dir=tmp_path, shapes={"x": (1, 3)}, build=broken)
    assert not list((tmp_path / "trt").glob("*.json"))


@pytest.mark.parametrize("facts, message", [
    (Facts(tensorrt_note="not installed"), r"^building a TensorRT engine needs TensorRT, which is not installed here "
                                           r"\(Python package 'tensorrt'\): pip install -e '.\[gpu\]' .*; the ONNX "
                                           r"Runtime backends \(ort-cpu, ort-cuda\) need no build$"),
    (Facts(tensorrt="10.9.0", pycuda_note="not installed"), r"^building a TensorRT engine needs pycuda, which is not installed"),
    (Facts(tensorrt="10.9.0", pycuda="2025.1", gpu_note="no nvidia-smi on PATH"),
     r"^TensorRT 10.9.0 is installed but no NVIDIA GPU was found \(no nvidia-smi on PATH\)"),
])
def test_building_needs_tensorrt_pycuda_and_a_gpu(facts, message):
    with pytest.raises(EngineError, match=message):
        require_tensorrt(facts)


def test_missing_model(tmp_path):
    with pytest.raises(EngineError, match=r"model file not found: .*nope.onnx \(expected an .onnx file\)"):
        ensure_engine(tmp_path / "nope.onnx", facts=TRT)
