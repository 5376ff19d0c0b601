"""YOLOX pre/post-processing on hand-checked cases, and the shipped model on real photos."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import ROOT, YOLOX
from engines.ort import OrtEngine
from depthstream.coco import COCO_CLASSES
from stream.detect import (
    YoloxDetector,
    class_aware_nms,
    decode_yolox,
    resolve_classes,
    yolox_grids,
)
from depthstream.errors import ConfigError, EngineError
from depthstream.schema.config import DetectConfig


def test_grids_follow_yolox_row_order():
    grids, strides = yolox_grids((416, 416))
    assert len(grids) == 52 * 52 + 26 * 26 + 13 * 13 == 3549
    assert grids[1].tolist() == [1, 0]  # x runs first within a row
    assert grids[52].tolist() == [0, 1]
    assert strides[52 * 52, 0] == 16 and strides[-1, 0] == 32
    assert grids[-1].tolist() == [12, 12]


def test_decode_one_row_by_hand():
    grids, strides = yolox_grids((416, 416))
    raw = np.zeros((3549, 85), np.float32)
    row = 52 * 52 + 26 * 3 + 5  # stride-16 grid, cell x=5, y=3
    raw[row, :4] = [0.5, 0.25, np.log(4.0), np.log(2.0)]
    raw[row, 4] = 0.8  # objectness
    raw[row, 5 + 2] = 0.5  # class 2 (car)
    boxes, scores, classes = decode_yolox(raw, grids, strides, conf=0.3)
    # cx = (0.5 + 5) * 16 = 88, cy = (0.25 + 3) * 16 = 52, w = 4 * 16 = 64, h = 2 * 16 = 32
    assert boxes.tolist() == [[56.0, 36.0, 120.0, 68.0]]
    assert scores.tolist() == [pytest.approx(0.4)]
    assert classes.tolist() == [2]
    assert len(decode_yolox(raw, grids, strides, conf=0.41)[0]) == 0


def test_nms_hand_checked():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 10, 5]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    one_class = np.zeros(4, np.int32)
    # IoU(0,1) = 90/110 = 0.818 -> suppressed; IoU(0,3) = 50/100 = 0.5 -> kept at 0.55, dropped at 0.45
    assert class_aware_nms(boxes, scores, one_class, 0.55).tolist() == [0, 2, 3]
    assert class_aware_nms(boxes, scores, one_class, 0.45).tolist() == [0, 2]
    # The same scene moved into negative coordinates (past the left and top edges): the same boxes stay.
    assert class_aware_nms(boxes - 50, scores, one_class, 0.55).tolist() == [0, 2, 3]


def test_class_aware_nms_keeps_classes_apart_at_negative_coordinates():
    # Class 1's boxes lie left of and above the origin. Shifted by OpenCV's class offset alone
    # (largest coordinate 10, + 1 = 11) box 1 would land exactly on class 0's box 0 and be dropped.
    boxes = np.array([[0, 0, 10, 10], [-11, -11, -1, -1], [-10, -11, -1, -1], [-30, -30, -20, -20]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    classes = np.array([0, 1, 1, 0], np.int32)
    # Box 2 overlaps box 1 (same class) with IoU 90/100 = 0.9: dropped. Box 3 overlaps nothing.
    assert class_aware_nms(boxes, scores, classes, 0.45).tolist() == [0, 1, 3]


def test_class_aware_nms_keeps_overlapping_boxes_of_other_classes():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    classes = np.array([0, 1, 0])
    assert sorted(class_aware_nms(boxes, scores, classes, 0.45).tolist()) == [0, 1]
    assert class_aware_nms(np.zeros((0, 4), np.float32), np.zeros(0), np.zeros(0), 0.5).size == 0


def test_resolve_classes_names_and_ids():
    assert resolve_classes(["person", 2], COCO_CLASSES).tolist() == [0, 2]
    assert resolve_classes([], COCO_CLASSES) is None
    with pytest.raises(ConfigError, match=r"detect.classes: unknown class 'persn'"):
        resolve_classes(["persn"], COCO_CLASSES)


@pytest.fixture(scope="module")
def detector():
    with YoloxDetector.from_path(YOLOX, threads=1) as d:
        yield d


def test_the_detector_feeds_yolox_what_yolox_expects(dog_image):
    """What the shipped model really receives, against YOLOX's own recipe written out here with numpy: the photo
    (768 x 576) resized by r = 416 / 768 to 416 x 312, at the top-left, the rest 114; BGR, 0..255, NCHW float32."""
    import cv2

    fed = []

    class Recording(OrtEngine):
        def _infer(self, feeds):
            fed.append(feeds["images"].copy())
            return super()._infer(feeds)

    with YoloxDetector(Recording(YOLOX)) as d:
        d(dog_image)
    expected = np.full((416, 416, 3), 114, np.uint8)
    expected[:312] = cv2.resize(dog_image, (416, 312), interpolation=cv2.INTER_LINEAR)
    assert dog_image.shape == (576, 768, 3) and fed[0].dtype == np.float32
    np.testing.assert_array_equal(fed[0][0], expected.transpose(2, 0, 1).astype(np.float32))


def _named(dets):
    return [COCO_CLASSES[c] for c in dets.class_id]


def test_dog_photo(detector, dog_image):
    dets, timings = detector(dog_image)
    names = _named(dets)
    assert {"dog", "bicycle", "car"} <= set(names)
    dog = dets[dets.class_id == COCO_CLASSES.index("dog")]
    # the dog sits in the lower left of the 768x576 photo
    x1, y1, x2, y2 = dog.xyxy[0]
    assert 100 < x1 < 170 and 180 < y1 < 240 and 300 < x2 < 350 and 510 < y2 < 576
    assert dog.confidence[0] > 0.7
    assert set(timings) == {"detect_pre", "detect_infer", "detect_post"}


def test_living_room_photo(detector, living_room_image):
    names = _named(detector(living_room_image)[0])
    assert {"tv", "person", "chair"} <= set(names)
    assert names.count("chair") >= 2


def test_demo_frames_find_pedestrians(detector, demo_frames):
    dets, _ = detector(demo_frames[0])
    assert _named(dets).count("person") >= 3
    h, w = demo_frames[0].shape[:2]
    assert dets.xyxy[:, 0::2].max() <= w and dets.xyxy[:, 1::2].max() <= h and dets.xyxy.min() >= 0


def test_class_filter_and_confidence(dog_image):
    with YoloxDetector.from_path(YOLOX, DetectConfig(conf=0.5, classes=("dog",))) as d:
        dets, _ = d(dog_image)
    assert _named(dets) == ["dog"]


def test_missing_model_is_a_clear_error():
    with pytest.raises(EngineError, match=r"detector model not found: .*nope.onnx"):
        YoloxDetector.from_path(ROOT / "nope.onnx")


def test_text_file_is_not_a_model(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_text("not a model")
    with pytest.raises(EngineError, match=r"is not a model ONNX Runtime can load"):
        YoloxDetector.from_path(bad).open()


def test_non_detector_model_is_rejected(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 64, 64])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 64, 64])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    path = tmp_path / "relu.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    with pytest.raises(EngineError, match=r"is not a YOLOX detector for 80 classes: output y: float32\[1, 3, 64, 64\]"):
        YoloxDetector(OrtEngine(path)).open()
