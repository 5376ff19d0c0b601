"""The Engine interface's checks, on the shipped YOLOX model through ONNX Runtime."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import YOLOX
from engines.ort import OrtEngine
from depthstream.errors import EngineError


@pytest.fixture(scope="module")
def engine():
    with OrtEngine(YOLOX, threads=1) as e:
        yield e


def test_specs_and_provider(engine):
    assert engine.inputs["images"].shape == (1, 3, 416, 416)
    assert engine.inputs["images"].dtype == np.float32
    assert engine.outputs["output"].shape == (1, 3549, 85)
    assert engine.providers[0] == "CPUExecutionProvider"


def test_infer_runs(engine):
    out = engine.infer({"images": np.full((1, 3, 416, 416), 114, np.float32)})
    assert out["output"].shape == (1, 3549, 85)
    assert np.isfinite(out["output"]).all()


def test_wrong_name(engine):
    with pytest.raises(EngineError, match=r"missing \['images'\]; unknown \['image'\]"):
        engine.infer({"image": np.zeros((1, 3, 416, 416), np.float32)})


def test_wrong_dtype_says_how_to_convert(engine):
    with pytest.raises(EngineError, match=r"has dtype float64, the model expects float32: convert with .astype\(np.float32\)"):
        engine.infer({"images": np.zeros((1, 3, 416, 416))})


def test_wrong_shape(engine):
    with pytest.raises(EngineError, match=r"has shape \(1, 3, 320, 320\), the model expects images: float32\[1, 3, 416, 416\]"):
        engine.infer({"images": np.zeros((1, 3, 320, 320), np.float32)})


def test_not_open():
    with pytest.raises(EngineError, match=r"is not open: call open\(\)"):
        OrtEngine(YOLOX).infer({})


def test_missing_file(tmp_path):
    with pytest.raises(EngineError, match=r"model file not found"):
        OrtEngine(tmp_path / "x.onnx").open()


def test_unknown_backend():
    with pytest.raises(EngineError, match=r"unknown ONNX Runtime backend 'ort-gpu'"):
        OrtEngine(YOLOX, backend="ort-gpu")
