"""Detector adapters: every layout decoded from hand-made raw outputs, layout detection from shapes,
sidecar parsing errors, and the shipped YOLOX-Nano re-wrapped into each layout finding the same dog."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import pytest

from conftest import YOLOX
from engines.base import Engine, TensorSpec
from depthstream.coco import COCO_CLASSES
from stream.detect import Detector, YoloxDetector
from stream.detectors import (
    Geometry,
    decode_end2end,
    decode_ultralytics,
    decode_yolov5,
    grid_cells,
    FAMILY_PREPROCESS,
    infer_layout,
    letterbox_image,
    to_blob,
)
from depthstream.errors import ConfigError, EngineError
from depthstream.schema.config import DetectConfig
from depthstream.schema.sidecar import load_detector_card

F32 = np.dtype(np.float32)


class FakeEngine(Engine):
    """An engine that returns a fixed output and records what it was fed."""

    backend = "fake"

    def __init__(self, output: np.ndarray, in_shape=(1, 3, 64, 64), out_shape=None, path="fake.onnx",
                 out_name="output0") -> None:
        super().__init__(path)
        self.output = output.astype(np.float32)
        self.in_shape = tuple(in_shape)
        self.out_shape = tuple(out_shape) if out_shape is not None else self.output.shape
        self.out_name = out_name
        self.fed: list[np.ndarray] = []

    def _open(self):
        return ({"images": TensorSpec("images", F32, self.in_shape)},
                {self.out_name: TensorSpec(self.out_name, F32, self.out_shape)})

    def _close(self) -> None:
        pass

    def _infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.fed.append(feeds["images"])
        return {self.out_name: self.output}


# A 128 x 64 frame (w x h) letterboxed into 64 x 64, centred: r = 0.5, the image is 64 x 32 at rows 16..47.
FRAME = np.zeros((64, 128, 3), np.uint8)
G = grid_cells((64, 64))  # 8*8 + 4*4 + 2*2 = 84


def test_grid_cells_and_centred_letterbox_geometry():
    assert G == 84 and grid_cells((640, 640)) == 8400 and grid_cells((416, 416)) == 3549
    image = np.full((64, 128, 3), 200, np.uint8)
    canvas, geo = letterbox_image(image, (64, 64), "centre")
    assert geo == Geometry(0.5, 0.5, 0.0, 16.0)
    assert (canvas[:16] == 114).all() and (canvas[16:48] == 200).all() and (canvas[48:] == 114).all()
    # Ultralytics' split of an odd padding: round(d/2 - 0.1) before, the rest after.
    canvas, geo = letterbox_image(np.zeros((10, 64, 3), np.uint8), (64, 64), "centre")
    assert geo.pad_y == 27 and (canvas[26] == 114).all() and (canvas[27] == 0).all() and (canvas[37] == 114).all()
    canvas, geo = letterbox_image(image, (64, 64), "top-left")
    assert geo == Geometry(0.5, 0.5, 0.0, 0.0) and (canvas[:32] == 200).all() and (canvas[32:] == 114).all()


def test_decoders_by_hand():
    # Ultralytics [4 + C, N]: column 10 = box cx 32, cy 40, w 20, h 10, class scores 0.1 0.9 0.2.
    raw = np.zeros((7, G), np.float32)
    raw[:, 10] = [32, 40, 20, 10, 0.1, 0.9, 0.2]
    raw[:, 11] = [5, 5, 2, 2, 0.2, 0.1, 0.0]  # best score 0.2 < conf
    boxes, scores, classes = decode_ultralytics(raw, conf=0.3)
    assert boxes.tolist() == [[22, 35, 42, 45]] and scores.tolist() == [pytest.approx(0.9)] and classes.tolist() == [1]
    # YOLOv5 [N, 5 + C]: score = objectness 0.8 x class 0.5 = 0.4.
    rows = np.zeros((3 * G, 8), np.float32)
    rows[7] = [32, 40, 20, 10, 0.8, 0.1, 0.5, 0.2]
    boxes, scores, classes = decode_yolov5(rows, conf=0.3)
    assert boxes.tolist() == [[22, 35, 42, 45]] and scores.tolist() == [pytest.approx(0.4)] and classes.tolist() == [1]
    assert len(decode_yolov5(rows, conf=0.41)[0]) == 0
    # End-to-end [K, 6]: x1 y1 x2 y2 score class.
    e2e = np.array([[22, 35, 42, 45, 0.9, 2], [0, 0, 10, 10, 0.1, 0]], np.float32)
    boxes, scores, classes = decode_end2end(e2e, conf=0.3)
    assert boxes.tolist() == [[22, 35, 42, 45]] and scores.tolist() == [pytest.approx(0.9)] and classes.tolist() == [2]


def _detect(output, **kwargs):
    engine_args = ("in_shape", "out_shape", "path")
    options = {k: v for k, v in kwargs.items() if k in ("conf", "iou", "max_det", "classes")}
    det = Detector(FakeEngine(output, **{k: v for k, v in kwargs.items() if k in engine_args}), DetectConfig(**options),
                   **{k: v for k, v in kwargs.items() if k not in engine_args and k not in options})
    with det:
        dets, timings = det(FRAME)
    return det, dets


def test_ultralytics_layout_end_to_end_in_frame_pixels():
    raw = np.zeros((1, 4 + 80, G), np.float32)
    raw[0, :4, 10] = [32, 40, 20, 10]
    raw[0, 4 + 2, 10] = 0.9  # car
    raw[0, :4, 11] = [33, 40, 20, 10]  # the same car, a little lower score: NMS removes it
    raw[0, 4 + 2, 11] = 0.8
    raw[0, :4, 12] = [33, 40, 20, 10]  # a person on the same spot: another class, kept
    raw[0, 4 + 0, 12] = 0.7
    det, dets = _detect(raw)
    assert det.layout == "ultralytics" and det.class_names == tuple(COCO_CLASSES)
    # input box [22, 35, 42, 45] -> frame: x / 0.5, (y - 16) / 0.5
    assert dets.xyxy.tolist() == [[44, 38, 84, 58], [46, 38, 86, 58]]
    assert dets.class_id.tolist() == [2, 0] and dets.confidence.tolist() == pytest.approx([0.9, 0.7])
    # fed RGB / 255, centred: rows 0..15 are padding (114 / 255), the frame is black
    blob = det.engine.fed[0]
    assert blob.shape == (1, 3, 64, 64) and blob[0, :, 0, 0] == pytest.approx([114 / 255] * 3) and blob[0, :, 20, 5].max() == 0


def test_ultralytics_rgb_order_is_fed():
    frame = np.zeros((64, 64, 3), np.uint8)
    frame[..., 0] = 255  # blue in BGR
    det = Detector(FakeEngine(np.zeros((1, 84, G), np.float32)))
    with det:
        det(frame)
    blob = det.engine.fed[0]
    assert blob[0, 2, 5, 5] == 1.0 and blob[0, 0, 5, 5] == 0.0  # blue is the last channel in RGB


def test_yolov5_layout_with_nms_and_class_filter():
    raw = np.zeros((1, 3 * G, 85), np.float32)
    raw[0, 7] = [32, 40, 20, 10, 0.8] + [0.0] * 80
    raw[0, 7, 5 + 2] = 0.5  # car 0.4
    raw[0, 8] = raw[0, 7]
    raw[0, 8, 4] = 0.7  # the same car, 0.35: suppressed
    raw[0, 9] = [50, 40, 20, 10, 0.9] + [0.0] * 80
    raw[0, 9, 5 + 0] = 0.9  # a person 0.81
    det, dets = _detect(raw)
    assert det.layout == "yolov5"
    assert dets.xyxy.tolist() == [[80, 38, 120, 58], [44, 38, 84, 58]]
    assert dets.class_id.tolist() == [0, 2]
    det, dets = _detect(raw, classes=["car"])
    assert dets.class_id.tolist() == [2]


def test_end2end_layout_keeps_every_box_without_nms():
    raw = np.zeros((1, 300, 6), np.float32)
    raw[0, 0] = [22, 35, 42, 45, 0.8, 2]
    raw[0, 1] = [23, 35, 43, 45, 0.9, 2]  # overlapping the first: an end-to-end head means both are real
    raw[0, 2] = [0, 0, 10, 10, 0.2, 0]
    det, dets = _detect(raw, max_det=5)
    assert det.layout == "end2end"
    assert dets.xyxy.tolist() == [[46, 38, 86, 58], [44, 38, 84, 58]]
    assert dets.confidence.tolist() == pytest.approx([0.9, 0.8]) and dets.class_id.tolist() == [2, 2]
    _, one = _detect(raw, max_det=1)
    assert len(one) == 1 and one.confidence[0] == pytest.approx(0.9)


def test_yolox_layout_of_any_class_count_by_shape():
    raw = np.zeros((1, G, 5 + 3), np.float32)
    row = 64 + 4 * 1 + 1  # stride 16 grid, cell x=1, y=1
    raw[0, row, :5] = [0.5, 0.5, np.log(2.0), np.log(1.0), 0.9]
    raw[0, row, 5 + 1] = 1.0
    padding = 64 + 4 * 2 + 3  # cell x=3, y=2: a box wholly in the padding below the image (input rows 32..63)
    raw[0, padding, :5] = [0.5, 0.5, np.log(1.0), np.log(1.0), 0.8]
    raw[0, padding, 5 + 2] = 1.0
    det, dets = _detect(raw)
    assert det.layout == "yolox" and det.class_names == ("class0", "class1", "class2")
    assert det.preprocess.colour == "bgr" and det.preprocess.letterbox == "top-left" and det.preprocess.scale == 1.0
    # cx = 1.5 * 16 = 24, cy = 1.5 * 16 = 24, w = 32, h = 16 -> [8, 16, 40, 32] in the input; top-left, r = 0.5.
    # The padding box, [48, 32, 64, 48] in the input, is rows 64..96 of a 64-row frame: nothing of it is in the frame.
    assert dets.xyxy.tolist() == [[16, 32, 80, 64]] and dets.class_id.tolist() == [1]
    assert det.engine.fed[0][0, 0, 0, 0] == 0.0 and det.engine.fed[0][0, 0, 40, 0] == 114.0


@pytest.mark.timeout(120)
def test_a_box_wholly_in_the_letterbox_padding_never_reaches_the_jsonl(tmp_path):
    """python -m stream with a detector whose output is fixed: one box in the image, one in the padding above it."""
    import json
    import subprocess
    import sys

    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from conftest import ROOT

    # The bundled clip (768 x 576) letterboxed, centred, into 640 x 640: r = 5/6, the image is 640 x 480 at rows
    # 80..559. Input box [100, 200, 300, 400] -> frame [120, 144, 360, 384]; [100, 10, 300, 60] lies in rows 0..79.
    boxes = np.array([[[100, 200, 300, 400, 0.9, 0], [100, 10, 300, 60, 0.8, 0]]], np.float32)
    nodes = [helper.make_node("ReduceMax", ["images"], ["m"], keepdims=0),
             helper.make_node("Mul", ["m", "zero"], ["z"]),
             helper.make_node("Add", ["boxes", "z"], ["output0"])]
    graph = helper.make_graph(nodes, "fixed", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 640, 640])],
                              [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 2, 6])],
                              [numpy_helper.from_array(boxes, "boxes"), numpy_helper.from_array(np.float32(0), "zero")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "fixed.onnx"))
    (tmp_path / "fixed.yaml").write_text("task: detect\nlayout: end2end\nnames: [thing]\n")
    jsonl = tmp_path / "out.jsonl"
    r = subprocess.run([sys.executable, "-m", "stream", "--source", "demo", "--detector", str(tmp_path / "fixed.onnx"),
                        "--max-frames", "2", "--jsonl", str(jsonl), "--quiet"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    for line in jsonl.read_text().splitlines():
        assert [d["box"] for d in json.loads(line)["detections"]] == [[120.0, 144.0, 360.0, 384.0]]


@pytest.mark.parametrize("shape", [(1, 3, 64, 64), (1, 50, 7), (1, 100, 85)])
def test_unknown_layout_names_the_shapes(shape):
    with pytest.raises(EngineError, match=r"fake.onnx is not a supported detector: its output matches no supported "
                                          r"layout: found inputs \['images: float32\[1, 3, 64, 64\]'\], outputs "
                                          r"\['output0: float32\[" + ", ".join(map(str, shape)) + r"\]'\].*expected "
                                          r"YOLOX \[1, 84, 5\+C\], Ultralytics v8/11/26 \[1, 4\+C, 84\], YOLOv5/v7 "
                                          r"\[1, 252, 5\+C\] or end-to-end YOLO26/v10 \[1, K, 6\]"):
        Detector(FakeEngine(np.zeros(shape, np.float32))).open()


def test_infer_layout_table():
    assert infer_layout((1, 84, 8400), (640, 640)).layout == "ultralytics"
    assert infer_layout((1, 84, 8400), (640, 640)).num_classes == 80
    assert infer_layout((1, 25200, 85), (640, 640)).layout == "yolov5"
    assert infer_layout((1, 3549, 85), (416, 416)).layout == "yolox"
    assert infer_layout((1, 300, 6), (640, 640)).layout == "end2end"
    assert infer_layout((1, 3, 640, 640), (640, 640)) is None


def test_yolox_detector_still_rejects_other_layouts():
    with pytest.raises(EngineError, match=r"fake.onnx is not a YOLOX detector for 80 classes: output output0: "
                                          r"float32\[1, 84, 84\], expected \[1, 84, 85\]"):
        YoloxDetector(FakeEngine(np.zeros((1, 84, G), np.float32))).open()


# -- sidecars ----------------------------------------------------------------------------------------


def _sidecar(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "model.yaml"
    path.write_text(text)
    return path


def test_sidecar_sets_layout_names_and_dynamic_size(tmp_path):
    card = load_detector_card(_sidecar(tmp_path, "task: detect\nlayout: ultralytics\nsize: [64, 64]\n"
                                                 "names: [cat, dog]\nletterbox: top-left\n"))
    raw = np.zeros((1, 6, G), np.float32)
    raw[0, :, 3] = [32, 16, 20, 10, 0.1, 0.95]
    det = Detector(FakeEngine(raw, in_shape=(1, 3, None, None), out_shape=(1, 6, None)), card=card)
    with det:
        dets, _ = det(FRAME)
    assert det.class_names == ("cat", "dog") and det.input_size == (64, 64)
    assert det.preprocess.letterbox == "top-left" and det.preprocess.colour == "rgb"
    assert dets.xyxy.tolist() == [[44, 22, 84, 42]] and dets.class_id.tolist() == [1]


def test_sidecar_beside_the_model_is_found(tmp_path):
    (tmp_path / "m.yaml").write_text("task: detect\nlayout: end2end\nnames: {0: a, 1: b, 2: c}\n")
    det = Detector(FakeEngine(np.zeros((1, 10, 6), np.float32), path=tmp_path / "m.onnx"))
    with det:
        assert det.layout == "end2end" and det.class_names == ("a", "b", "c")


@pytest.mark.parametrize("text, message", [
    ("task: detect\nlayout: yolo8\n", r"layout: got 'yolo8', expected yolox \| ultralytics \| yolov5 \| end2end$"),
    ("task: depth\nlayout: yolox\n", r"task: got 'depth', expected detect \(this file describes a detector; a depth model card "
                                     r"belongs to --depth-model\)"),
    ("layout: yolox\n", r"missing required key task \(required: task, layout\)"),
    ("task: detect\nlayout: yolox\nnmes: [a]\n", r"unknown key 'nmes' \(did you mean 'names'\?\)"),
    ("task: detect\nlayout: yolox\nsize: [640, 630]\n", r"size: got \[640, 630\], expected \[height, width\], two positive multiples of 32"),
    ("task: detect\nlayout: yolox\ncolour: rbg\n", r"colour: got 'rbg', expected rgb \| bgr"),
    ("task: detect\nlayout: yolox\nscale: 255\n", r"scale: got 255, expected a number in \(0, 1\]"),
    ("task: detect\nlayout: yolox\nletterbox: center\n", r"letterbox: got 'center', expected centre \| top-left"),
    ("task: detect\nlayout: yolox\npad: 300\n", r"pad: got 300, expected an integer in 0..255"),
    ("task: detect\nlayout: yolox\nnames: []\n", r"names: got \[\], expected a non-empty list of class names"),
    ("task: detect\nlayout: yolox\nnames: {1: a}\n", r"names: got \{1: 'a'\}, expected class names; as a mapping its keys must be 0..0"),
    ("[1, 2]\n", r"must be a mapping of keys"),
    ("task: detect\nlayout: [\n", r"not valid YAML"),
])
def test_sidecar_errors(tmp_path, text, message):
    with pytest.raises(ConfigError, match=r"detector sidecar .*model.yaml: " + message):
        load_detector_card(_sidecar(tmp_path, text))


def test_sidecar_that_does_not_fit_the_model(tmp_path):
    raw = np.zeros((1, 6, G), np.float32)
    card = load_detector_card(_sidecar(tmp_path, "task: detect\nlayout: ultralytics\nnames: [a, b, c]\n"))
    with pytest.raises(ConfigError, match=r"model.yaml lists 3 class names, but fake.onnx has 2 classes"):
        Detector(FakeEngine(raw), card=card).open()
    card = load_detector_card(_sidecar(tmp_path, "task: detect\nlayout: end2end\n"))
    with pytest.raises(ConfigError, match=r"layout end2end does not fit output output0: float32\[1, 6, 84\]: an end2end output is \[1, K, 6\]"):
        Detector(FakeEngine(raw), card=card).open()
    card = load_detector_card(_sidecar(tmp_path, "task: detect\nlayout: ultralytics\nsize: [128, 128]\n"))
    with pytest.raises(ConfigError, match=r"size \[128, 128\] differs from the model's input images: float32\[1, 3, 64, 64\]"):
        Detector(FakeEngine(raw), card=card).open()
    card = load_detector_card(_sidecar(tmp_path, "task: detect\nlayout: ultralytics\noutput: boxes\n"))
    with pytest.raises(ConfigError, match=r"output 'boxes' is not an output of the model"):
        Detector(FakeEngine(raw), card=card).open()
    with pytest.raises(EngineError, match=r"has no fixed height and width; export it with a fixed size or give 'size: \[H, W\]'"):
        Detector(FakeEngine(raw, in_shape=(1, 3, None, None))).open()


def test_missing_sidecar_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match=r"detector sidecar .*nope.yaml: file not found"):
        load_detector_card(tmp_path / "nope.yaml")


# -- the shipped YOLOX-Nano re-wrapped into every layout ------------------------------------------------


def _rewrap_yolox(layout: str, path: Path) -> Path:
    """YOLOX-Nano with ONNX nodes around it so that it takes RGB / 255 and gives ``layout``'s output: a real
    detector in each layout, to check preprocessing, decoding and the way back to frame pixels."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    from stream.detect import yolox_grids

    model = onnx.load(str(YOLOX))
    graph = model.graph
    (inp,) = graph.input
    inp.name = "yolox_images"
    for node in graph.node:
        node.input[:] = ["yolox_images" if i == "images" else i for i in node.input]
    grids, strides = yolox_grids((416, 416))
    consts = {
        "k255": np.array(255.0, np.float32), "bgr": np.array([2, 1, 0], np.int64),
        "grid": grids[None], "stride": strides[None], "half": np.array(0.5, np.float32),
        "s0": np.array([0], np.int64), "s2": np.array([2], np.int64), "s4": np.array([4], np.int64),
        "s5": np.array([5], np.int64), "s85": np.array([85], np.int64), "ax2": np.array([2], np.int64),
        "rep3": np.array([1, 3, 1], np.int64), "k100": np.array([100], np.int64),
    }
    graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in consts.items())
    n = helper.make_node
    nodes = [n("Mul", ["images", "k255"], ["x255"]), n("Gather", ["x255", "bgr"], ["yolox_images"], axis=1)]
    nodes += [
        n("Slice", ["output", "s0", "s2", "ax2"], ["dxy"]), n("Slice", ["output", "s2", "s4", "ax2"], ["lwh"]),
        n("Slice", ["output", "s4", "s5", "ax2"], ["obj"]), n("Slice", ["output", "s5", "s85", "ax2"], ["cls"]),
        n("Add", ["dxy", "grid"], ["cxy_g"]), n("Mul", ["cxy_g", "stride"], ["cxy"]),
        n("Exp", ["lwh"], ["ewh"]), n("Mul", ["ewh", "stride"], ["wh"]),
        n("Concat", ["cxy", "wh"], ["xywh"], axis=2),
    ]
    if layout == "ultralytics":
        nodes += [n("Mul", ["obj", "cls"], ["scores"]), n("Concat", ["xywh", "scores"], ["rows"], axis=2),
                  n("Transpose", ["rows"], ["output0"], perm=[0, 2, 1])]
        out_shape = [1, 84, 3549]
    elif layout == "yolov5":
        nodes += [n("Concat", ["xywh", "obj", "cls"], ["rows"], axis=2), n("Tile", ["rows", "rep3"], ["output0"])]
        out_shape = [1, 3 * 3549, 85]
    else:
        nodes += [
            n("Mul", ["obj", "cls"], ["scores"]), n("ReduceMax", ["scores"], ["best"], axes=[2], keepdims=1),
            n("ArgMax", ["scores"], ["cid"], axis=2, keepdims=1), n("Cast", ["cid"], ["cidf"], to=TensorProto.FLOAT),
            n("Mul", ["wh", "half"], ["hwh"]), n("Sub", ["cxy", "hwh"], ["xy1"]), n("Add", ["cxy", "hwh"], ["xy2"]),
            n("Concat", ["xy1", "xy2", "best", "cidf"], ["rows"], axis=2),
            n("Squeeze", ["best"], ["best1"], axes=[0, 2]), n("TopK", ["best1", "k100"], ["topv", "topi"], axis=0),
            n("Squeeze", ["rows"], ["rows0"], axes=[0]), n("Gather", ["rows0", "topi"], ["picked"], axis=0),
            n("Unsqueeze", ["picked"], ["output0"], axes=[0]),
        ]
        out_shape = [1, 100, 6]
    graph.node.extend(nodes)
    graph.input.insert(0, helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 416, 416]))
    graph.input.remove(inp)
    graph.output.pop()
    graph.output.append(helper.make_tensor_value_info("output0", TensorProto.FLOAT, out_shape))
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def yolox_dog(dog_image):
    with YoloxDetector.from_path(YOLOX, threads=1) as d:
        dets, _ = d(dog_image)
    return dets


@pytest.mark.parametrize("layout", ["ultralytics", "yolov5", "end2end"])
def test_real_detector_in_each_layout_finds_the_dog(tmp_path, dog_image, yolox_dog, layout):
    path = _rewrap_yolox(layout, tmp_path / f"yolox_as_{layout}.onnx")
    dog = COCO_CLASSES.index("dog")
    ref = yolox_dog.xyxy[yolox_dog.class_id == dog][0]
    with Detector.from_path(path, DetectConfig(conf=0.5), threads=1) as det:
        assert det.layout == layout and det.preprocess.colour == "rgb" and det.preprocess.letterbox == "centre"
        dets, _ = det(dog_image)
    # The family's centred letterbox shows the network the photo 52 px lower than YOLOX's top-left one:
    # the same dog, its box within a few pixels of the fuzzy right edge.
    got = dets.xyxy[dets.class_id == dog]
    assert len(got) >= 1 and np.abs(got[0] - ref).max() < 25, (got[0], ref)
    assert {"dog", "bicycle"} <= {COCO_CLASSES[c] for c in dets.class_id}
    # With the sidecar's letterbox at the top-left the network sees exactly YOLOX's input (RGB / 255 in, x 255
    # and back to BGR inside): every layout's decoding gives YOLOX's own dog box.
    path.with_suffix(".yaml").write_text(f"task: detect\nlayout: {layout}\nletterbox: top-left\n")
    with Detector.from_path(path, DetectConfig(conf=0.5), threads=1) as det:
        dets, _ = det(dog_image)
    got = dets.xyxy[dets.class_id == dog]
    assert np.abs(got[0] - ref).max() < 0.05, (got[0], ref)


@pytest.mark.parametrize("family, dtype", [("yolox", np.float32), ("ultralytics", np.float32),
                                           ("ultralytics", np.float16), ("yolox", np.float16)])
def test_blob_is_the_canvas_channel_first_in_the_networks_colours_scale_and_dtype(dog_image, family, dtype):
    pre = FAMILY_PREPROCESS[family]
    canvas, _ = letterbox_image(dog_image, (416, 416), pre.letterbox, pre.pad)
    blob = to_blob(canvas, pre, dtype)
    assert blob.shape == (1, 3, 416, 416) and blob.dtype == dtype and blob.flags.c_contiguous
    colours = canvas[..., ::-1] if pre.colour == "rgb" else canvas  # YOLOX: BGR 0..255; Ultralytics: RGB / 255
    for c in range(3):
        expected = (colours[..., c].astype(np.float32) * np.float32(pre.scale)).astype(dtype)
        np.testing.assert_array_equal(blob[0, c], expected)

