"""Numeric check: statistics and box matching as pure functions, and real runs on the CPU
(ONNX Runtime FP32 vs the same model converted to FP16, and vs graph optimisations off)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import YOLOX
from engines.check import BoxStats, DiffStats, Variant, iou_matrix, match_boxes, parse_variant
from stream.enginecheck import run_check
from depthstream.errors import ConfigError, EngineError
from depthstream.types import Detections
from test_engines_ort import tiny_onnx


def test_iou_matrix():
    a = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float)
    b = np.array([[0, 0, 10, 5], [100, 100, 110, 110]], float)
    np.testing.assert_allclose(iou_matrix(a, b), [[0.5, 0.0], [0.0, 0.0]])
    assert iou_matrix(a, np.zeros((0, 4))).shape == (2, 0)


def test_matching_is_one_to_one_same_class_best_first():
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60]], float)
    b = np.array([[0, 0, 10, 9], [50, 50, 60, 60]], float)
    pairs = match_boxes(a, np.array([0, 0, 1]), b, np.array([0, 2]))
    assert pairs == [(0, 0, pytest.approx(0.9))]  # a[1] has no partner left; class 1 vs 2 never match


def test_box_stats_agreement():
    dets = Detections(np.array([[0, 0, 10, 10], [20, 20, 40, 40]], np.float32), np.array([0.9, 0.8], np.float32), np.array([0, 1], np.int32))
    fewer = Detections(dets.xyxy[:1], np.array([0.85], np.float32), dets.class_id[:1])
    s = BoxStats()
    s.add(dets, dets)
    assert (s.agreement, s.mean_iou) == (1.0, 1.0)
    s.add(dets, fewer)
    assert (s.boxes_a, s.boxes_b, s.matched) == (4, 3, 3)
    assert s.agreement == pytest.approx(6 / 7) and s.score_diff_max == pytest.approx(0.05)
    assert BoxStats().agreement == 1.0  # no boxes on either side: nothing disagrees


def test_diff_stats():
    s = DiffStats()
    s.add(np.array([1.0, -2.0, 3.0]), np.array([1.0, -2.5, 3.1]))
    assert s.max_abs == pytest.approx(0.5) and s.mean_abs == pytest.approx(0.2)
    assert s.rel_mean == pytest.approx(0.2 / 2.0)
    s.add(np.array([1.0]), np.array([np.nan]))
    assert s.max_abs == np.inf
    with pytest.raises(EngineError, match=r"outputs of different shapes: \(2,\) and \(3,\)"):
        s.add(np.zeros(2), np.zeros(3))


def test_parse_variant():
    assert parse_variant("ort-cpu") == Variant("ort-cpu", "fp32")
    assert parse_variant("trt:fp16").label == "trt:fp16"
    with pytest.raises(ConfigError, match=r"variant 'cuda:fp16': unknown backend 'cuda'"):
        parse_variant("cuda:fp16")
    with pytest.raises(ConfigError, match=r"variant 'ort-cpu:int8': unknown option 'int8', expected one of fp32, fp16, noopt"):
        parse_variant("ort-cpu:int8")
    with pytest.raises(ConfigError, match=r"noopt is an ONNX Runtime option"):
        parse_variant("trt:noopt")


@pytest.mark.timeout(60)
def test_yolox_fp32_vs_fp16_on_the_cpu(demo_frames):
    report = run_check(YOLOX, Variant("ort-cpu"), Variant("ort-cpu", "fp16"), frames=demo_frames[:3])
    assert (report.a, report.b, report.frames) == ("ort-cpu:fp32", "ort-cpu:fp16", 3)
    assert report.fed == "yolox detector: frames letterboxed as its family expects"
    out = report.outputs["output"]
    assert 0 < out.max_abs < 2 and out.rel_mean < 0.03  # FP16 differs, a little
    assert report.boxes.boxes_a > 10 and report.boxes.agreement > 0.95 and report.boxes.mean_iou > 0.98
    assert report.problems(0.03, 0.9) == []
    text = "\n".join(report.lines())
    assert "max |A-B|" in text and "agreement" in text and "time per inference" in text


@pytest.mark.timeout(60)
@pytest.mark.parametrize("model", ["card", "onnx"])
def test_fastdepth_fp32_vs_fp16_fed_its_uint8_pixels(demo_frames, fastdepth_onnx, model):
    """The bundled depth network, by its card (its own preprocessing) or as a bare ONNX (its uint8 image input fed
    the frame's pixels as they are, as a TensorRT build's check does): FP16 stays within 3 % of FP32."""
    from conftest import FASTDEPTH_CARD

    path = FASTDEPTH_CARD if model == "card" else fastdepth_onnx
    report = run_check(path, Variant("ort-cpu"), Variant("ort-cpu", "fp16"), frames=demo_frames[:2])
    assert report.fed == ("depth card fastdepth-224-nyu: its own preprocessing" if model == "card"
                          else "'image' frames resized, RGB 0..255 uint8")
    depth = report.outputs["depth"]
    assert depth.ref_sum_abs / depth.count > 1.0  # metres of a real map, not a map of zeros
    assert 0 < depth.rel_mean < 0.03 and report.problems(0.03, 0.9) == []


def test_generic_model_with_random_inputs(tmp_path, demo_frames):
    report = run_check(tiny_onnx(tmp_path / "t.onnx"), Variant("ort-cpu"), Variant("ort-cpu", "noopt"), frames=demo_frames[:2])
    assert report.boxes is None and report.fed == "'x' random (seed 0)"
    assert report.outputs["y"].max_abs == 0.0


def test_a_variant_this_machine_cannot_run_fails_with_one_line(monkeypatch, demo_frames):
    from engines import backends

    monkeypatch.setattr(backends, "probe", lambda: backends.Facts(ort_version="1.32.0", ort_providers=("CPUExecutionProvider",),
                                                                  tensorrt_note="not installed"))
    with pytest.raises(EngineError, match=r"^--backend trt needs TensorRT, which is not installed here"):
        run_check(YOLOX, Variant("ort-cpu"), Variant("trt", "fp16"), frames=demo_frames[:1])


def test_tolerance_problems_are_named():
    from engines.check import Report

    r = Report("m", "a", "b", 1, "x", outputs={"y": DiffStats(max_abs=1.0, sum_abs=5.0, count=10, ref_max_abs=2, ref_sum_abs=10.0)},
               boxes=BoxStats(boxes_a=10, boxes_b=6, matched=5))
    assert r.problems(0.03, 0.9) == ["output 'y': mean abs diff is 50.00% of the mean |value| (tolerance 3.00%)",
                                     "box agreement 0.625 < 0.9"]
