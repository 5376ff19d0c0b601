"""Model cards that fit real models (issue 10): uint8 inputs, channels-last and plain outputs, the resize modes and
their inverse on the frame, the load-time check against the ONNX's real tensors, a detector refused as a depth model
(and the reverse), valid range, domain and a camera profile's calibration; the real FastDepth-224 through its card."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from depthstream.errors import ConfigError, EngineError
from depthstream.schema.camera import CameraProfile
from depthstream.schema.card import load_card
from depthstream.types import DepthMap, Detections, Frame
from stream.boxtrust import flag_boxes
from stream.depth import OnnxDepth, open_depth_model
from stream.depth.geometry import map_to_frame, place, to_input

from conftest import DOG, FASTDEPTH_CARD, YOLOX

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

NET = 8


def _save(nodes, inputs, outputs, path: Path, initializers=()) -> Path:
    graph = helper.make_graph(nodes, path.stem, inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def vi(name, dtype, shape):
    return helper.make_tensor_value_info(name, dtype, shape)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("card_models")
    # uint8 NHWC in, channels-last out: depth = mean of the three channels (as FastDepth's tensors are laid out)
    _save([helper.make_node("Cast", ["x"], ["xf"], to=TensorProto.FLOAT),
           helper.make_node("ReduceMean", ["xf"], ["depth"], axes=[3], keepdims=1)],
          [vi("x", TensorProto.UINT8, [1, NET, NET, 3])], [vi("depth", TensorProto.FLOAT, [1, NET, NET, 1])],
          d / "u8_nhwc.onnx")
    # float NCHW in, the first channel out: the network input itself, to see where each frame pixel went
    idx = helper.make_tensor("idx", TensorProto.INT64, [1], [0])
    _save([helper.make_node("Gather", ["x", "idx"], ["depth"], axis=1)],
          [vi("x", TensorProto.FLOAT, [1, 3, NET, NET])], [vi("depth", TensorProto.FLOAT, [1, 1, NET, NET])],
          d / "chan0.onnx", [idx])
    # a dynamic input and a plain [1, h, w] output
    _save([helper.make_node("ReduceMean", ["x"], ["depth"], axes=[1], keepdims=0)],
          [vi("x", TensorProto.FLOAT, [1, 3, "h", "w"])], [vi("depth", TensorProto.FLOAT, [1, "h", "w"])],
          d / "dynamic.onnx")
    # not depth maps: an int output, a map of another aspect ratio, two inputs
    _save([helper.make_node("Cast", ["x"], ["depth"], to=TensorProto.INT64)],
          [vi("x", TensorProto.FLOAT, [1, 3, NET, NET])], [vi("depth", TensorProto.INT64, [1, 3, NET, NET])],
          d / "int_out.onnx")
    starts, ends, axes = (helper.make_tensor(n, TensorProto.INT64, [1], [v]) for n, v in
                          (("s", 0), ("e", NET // 2), ("a", 3)))
    _save([helper.make_node("ReduceMean", ["x"], ["m"], axes=[1], keepdims=1),
           helper.make_node("Slice", ["m", "s", "e", "a"], ["depth"])],
          [vi("x", TensorProto.FLOAT, [1, 3, NET, NET])], [vi("depth", TensorProto.FLOAT, [1, 1, NET, NET // 2])],
          d / "half_wide.onnx", [starts, ends, axes])
    _save([helper.make_node("Add", ["x", "y"], ["depth"])],
          [vi("x", TensorProto.FLOAT, [1, 3, NET, NET]), vi("y", TensorProto.FLOAT, [1, 3, NET, NET])],
          [vi("depth", TensorProto.FLOAT, [1, 3, NET, NET])], d / "two_in.onnx")
    return d


BASE = {"name": "tiny", "model": "chan0.onnx", "input": "x", "output": "depth", "layout": "nchw", "output_layout": "nchw",
        "size": [NET, NET], "colour": "bgr", "scale": 1, "mean": [0, 0, 0], "std": [1, 1, 1], "kind": "metric",
        "domain": "any"}
U8 = {"model": "u8_nhwc.onnx", "input_dtype": "uint8", "layout": "nhwc", "output_layout": "nhwc", "scale": None,
      "mean": None, "std": None}


def card_file(folder: Path, models: Path, stem="card", **changes) -> Path:
    for f in models.glob("*.onnx"):
        if not (folder / f.name).exists():
            (folder / f.name).symlink_to(f)
    data = {k: v for k, v in {**BASE, **changes}.items() if v is not None}
    text = "".join(f"{k}: {v if not isinstance(v, str) else repr(v)}\n" for k, v in data.items())
    (folder / f"{stem}.yaml").write_text(text.replace("'", ""))
    return folder / f"{stem}.yaml"


def frame(image) -> Frame:
    return Frame(np.ascontiguousarray(image, dtype=np.uint8), 0, None, 0, "test")


# -- uint8 input, channels-last output ----------------------------------------------------------------------------


def test_uint8_input_and_channels_last_output_run_without_editing_the_onnx(tmp_path, models):
    card = load_card(card_file(tmp_path, models, **U8))
    assert card.input_dtype == "uint8" and card.output_layout == "nhwc" and card.pixel_scale == 1.0
    img = np.zeros((16, 24, 3), np.uint8)
    img[:] = (10, 20, 60)
    with OnnxDepth(card) as depth:
        x, _ = depth.preprocess(img)
        assert x.dtype == np.uint8 and x.shape == (1, NET, NET, 3)
        out = depth(frame(img))
    np.testing.assert_allclose(out.metres, 30.0, rtol=1e-6)  # (10 + 20 + 60) / 3
    assert out.metres.shape == (16, 24) and out.state == "any scene, metric"


def test_dynamic_input_takes_the_card_size_and_a_plain_output(tmp_path, models):
    card = load_card(card_file(tmp_path, models, model="dynamic.onnx", output_layout="hw", size=[6, 10]))
    with OnnxDepth(card) as depth:
        out = depth(frame(np.full((12, 20, 3), 7, np.uint8)))
    np.testing.assert_allclose(out.metres, 7.0, rtol=1e-6)


# -- the resize modes and their inverse --------------------------------------------------------------------------


def gradient(h: int, w: int) -> np.ndarray:
    """A frame whose every channel is 4 * column + 10: where a frame pixel lands can be read back."""
    cols = (4 * np.arange(w) + 10).astype(np.uint8)
    return np.repeat(np.broadcast_to(cols, (h, w))[..., None], 3, axis=2)


def test_letterbox_drops_the_padding_when_mapping_back(tmp_path, models):
    # 16 x 32 into 8 x 8: r = 0.25 -> 4 x 8 rows 2..5, rows 0-1 and 6-7 are pad (250)
    card = load_card(card_file(tmp_path, models, resize="letterbox", pad=250))
    img = gradient(16, 32)
    with OnnxDepth(card) as depth:
        x, placement = depth.preprocess(img)
        assert (placement.resized, placement.offset) == ((4, 8), (2, 0))
        assert (x[0, 0, :2] == 250).all() and (x[0, 0, 6:] == 250).all() and (x[0, 0, 2:6] < 250).all()
        metres = depth(frame(img)).metres
    assert metres.shape == (16, 32) and np.isfinite(metres).all()
    assert metres.max() < 150  # nothing of the padding (250) came back onto the frame
    # the gradient comes back where it was: columns 8..23 within half a network pixel (4 frame columns x 4 per column)
    np.testing.assert_allclose(metres[:, 8:24], np.broadcast_to(4.0 * np.arange(8, 24) + 10, (16, 16)), atol=9)


def test_crop_leaves_the_cut_sides_without_depth(tmp_path, models):
    # 16 x 32 into 8 x 8: r = 0.5 -> 8 x 16, columns 4..11 kept: the frame's columns 8..23
    card = load_card(card_file(tmp_path, models, resize="crop"))
    img = gradient(16, 32)
    with OnnxDepth(card) as depth:
        _, placement = depth.preprocess(img)
        assert (placement.resized, placement.offset) == ((8, 16), (0, -4))
        metres = depth(frame(img)).metres
    assert np.isnan(metres[:, :7]).all() and np.isnan(metres[:, 25:]).all()  # never an invented depth
    assert np.isfinite(metres[:, 8:24]).all()
    np.testing.assert_allclose(metres[:, 9:23], np.broadcast_to(4.0 * np.arange(9, 23) + 10, (16, 14)), atol=5)


@pytest.mark.parametrize("mode", ["stretch", "letterbox", "crop"])
def test_the_inverse_maps_a_known_output_back_exactly(mode):
    """An output that is the input's own column coordinate maps back onto the frame's column coordinate."""
    fh, fw, size = 30, 50, (20, 20)
    p = place((fh, fw), size, mode)
    oh, ow = 10, 10  # a network whose output is half its input's size
    # the input column of each output pixel's centre, then the frame column it came from (continuous coordinates)
    u = (np.arange(ow) + 0.5) * size[1] / ow
    frame_col = (u - p.offset[1]) * fw / p.resized[1]
    out = np.broadcast_to(frame_col.astype(np.float32), (oh, ow)).copy()
    back = map_to_frame(out, p)
    inside = np.isfinite(back[0])
    centres = np.arange(fw) + 0.5
    covered = (centres >= frame_col[0]) & (centres <= frame_col[-1])
    np.testing.assert_allclose(back[0, covered], centres[covered], atol=1e-3)
    assert inside[covered].all()
    if mode == "crop":
        assert not inside.all()


def test_to_input_keeps_the_aspect_for_letterbox_and_crop():
    img = np.zeros((30, 60, 3), np.uint8)
    assert to_input(img, place((30, 60), (32, 32), "letterbox"), 5).shape == (32, 32, 3)
    assert to_input(img, place((30, 60), (32, 32), "crop")).shape == (32, 32, 3)
    assert place((30, 60), (32, 32), "letterbox").resized == (16, 32)
    assert place((30, 60), (32, 32), "crop").resized == (32, 64)


# -- the card against the ONNX: one line per mismatch -----------------------------------------------------------


@pytest.mark.parametrize(("changes", "match"), [
    (dict(input_dtype="uint8", scale=None, mean=None, std=None),
     r"input 'x' of chan0\.onnx is x: float32\[1, 3, 8, 8\], but the card says input_dtype uint8; set input_dtype: float32"),
    (dict(model="u8_nhwc.onnx", layout="nhwc", output_layout="nhwc"),
     r"input 'x' of u8_nhwc\.onnx is x: uint8\[1, 8, 8, 3\], but the card says input_dtype float32; set input_dtype: uint8"),
    (dict(**{**U8, "output_layout": "nchw"}),
     r"output 'depth' of u8_nhwc\.onnx has shape \[1, 8, 8, 1\], but output_layout nchw means \[1, 1, h, w\]; set "
     r"output_layout: nhwc"),
    (dict(output_layout="hw"), r"output 'depth' of chan0\.onnx has shape \[1, 1, 8, 8\], but output_layout hw means "
                               r"\[1, h, w\] or \[h, w\]; set output_layout: nchw"),
    (dict(model="int_out.onnx"), r"output 'depth' of int_out\.onnx is depth: int64\[1, 3, 8, 8\]: a depth map is "
                                 r"float32 or float16"),
    (dict(model="half_wide.onnx"), r"output 'depth' of half_wide\.onnx \[1, 1, 8, 4\] is not a depth map of the 8x8 "
                                   r"input \(a map has the input's aspect ratio 8:8, this one 8:4\)"),
    (dict(model="two_in.onnx"), r"two_in\.onnx has 2 inputs \(x: float32\[1, 3, 8, 8\], y: float32\[1, 3, 8, 8\]\); "
                                r"a depth card feeds one image input"),
    (dict(size=[16, 16]), r"size \[16, 16\] with layout nchw gives input shape \(1, 3, 16, 16\), but the model's input "
                          r"'x' has shape \(1, 3, 8, 8\); fix size/layout in the card"),
])
def test_card_against_the_model_is_one_line(tmp_path, models, changes, match):
    with pytest.raises(ConfigError, match=r"^model card .*card\.yaml: " + match):
        OnnxDepth(load_card(card_file(tmp_path, models, **changes))).open()


@pytest.mark.parametrize(("changes", "match"), [
    (dict(input_dtype="uint8", mean=None, std=None, scale=0.5),
     r"input_dtype uint8 feeds the pixels as they are \(the network normalises inside\): scale cannot apply"),
    (dict(mean=None), r"input_dtype float32 needs mean: how the uint8 pixels become the network's numbers"),
    (dict(domain=None), r"missing required key domain"),
    (dict(domain="street"), r"domain: got 'street', expected indoor \| outdoor \| driving \| any"),
    (dict(output_layout=None), r"missing required key output_layout"),
    (dict(output_layout="chw"), r"output_layout: got 'chw', expected nchw \(\[1, 1, h, w\]\) \| nhwc"),
    (dict(resize="fit"), r"resize: got 'fit', expected stretch \| letterbox \| crop"),
    (dict(pad=7), r"pad applies only to resize: letterbox, but resize is stretch"),
    (dict(valid_range_m=[10, 2]), r"valid_range_m must be \[near, far\] with near < far, got \[10\.0, 2\.0\]"),
    (dict(input_dtype="int8"), r"input_dtype: got 'int8', expected float32 \| float16 \| uint8"),
])
def test_card_schema_errors(tmp_path, models, changes, match):
    with pytest.raises(ConfigError, match=match):
        load_card(card_file(tmp_path, models, **changes))


def test_a_detector_sidecar_is_not_a_depth_card(tmp_path):
    side = tmp_path / "yolo.yaml"
    side.write_text("task: detect\nlayout: ultralytics\n")
    with pytest.raises(ConfigError, match=r"yolo\.yaml: is a detector sidecar \(task: detect, layout: ultralytics\), not "
                                          r"a depth model card: give its ONNX to --detector"):
        load_card(side)


def test_a_detector_onnx_is_refused_as_a_depth_model(tmp_path):
    """The issue's case: a card pointing at the detector's ONNX gave people 0.001-0.006 m away with exit 0."""
    card = tmp_path / "yolo-as-depth.yaml"
    card.write_text(f"name: yolo\nmodel: {YOLOX}\ninput: images\noutput: output\nlayout: nchw\noutput_layout: hw\n"
                    "size: [416, 416]\ncolour: bgr\nscale: 1\nmean: [0, 0, 0]\nstd: [1, 1, 1]\nkind: metric\n"
                    "domain: any\n")
    with pytest.raises(ConfigError, match=r"yolox_nano\.onnx is a YOLO detector \(layout yolox: output output: "
                                          r"float32\[1, 3549, 85\]\), not a depth network; give it to --detector"):
        open_depth_model(card).open()


def test_a_depth_network_is_refused_as_a_detector(fastdepth_onnx, tmp_path):
    from stream.detect import Detector

    with pytest.raises(ConfigError, match=r"fastdepth_224_nyu\.onnx is not a detector: its output depth: "
                                          r"float32\[1, 224, 224, 1\] is a one-channel map, as a depth network gives"):
        Detector.from_path(fastdepth_onnx).open()
    # an exported depth model with its card beside it: the card is not read as a detector sidecar
    (tmp_path / "d.onnx").symlink_to(fastdepth_onnx)
    (tmp_path / "d.yaml").write_text(FASTDEPTH_CARD.read_text().replace("model: fastdepth_224_nyu.onnx", "model: d.onnx"))
    with pytest.raises(ConfigError, match=r"d\.yaml: is a depth model card \(kind: metric\), not a detector sidecar"):
        Detector.from_path(tmp_path / "d.onnx")


def test_a_dynamic_output_is_checked_at_the_first_frame(tmp_path, models):
    card = load_card(card_file(tmp_path, models, model="dynamic.onnx", output_layout="nchw", size=[6, 10]))
    with pytest.raises(ConfigError, match=r"output 'depth' of dynamic\.onnx has shape \[1, \?, \?\], but output_layout "
                                          r"nchw means \[1, 1, h, w\]; set output_layout: hw"):
        OnnxDepth(card).open()


# -- valid range, domain, a profile's calibration ---------------------------------------------------------------


def profile(**parts) -> CameraProfile:
    return CameraProfile(name="cam", **parts)


def cal(output: str, scale: float, shift: float = 0.0, fit="scale") -> dict:
    return {"model": "tiny", "output": output, "fit": fit, "scale": scale, "shift": shift, "samples": 3,
            "range_m": [1.0, 4.0], "source": {"method": "known-distance"}}


def test_profile_calibration_rescales_a_metric_network(tmp_path, models):
    card = load_card(card_file(tmp_path, models))
    img = np.full((8, 8, 3), 20, np.uint8)
    with OnnxDepth(card, camera=profile(depth_calibrations=[cal("metric", 0.1)])) as depth:
        dm = depth(frame(img))
    np.testing.assert_allclose(dm.metres, 2.0, rtol=1e-6)
    assert dm.state == "any scene, metric, calibrated on cam"
    with pytest.raises(ConfigError, match=r"camera profile 'cam': its depth calibration for model 'tiny' is for output "
                                          r"relative-inverse, but card .* gives metric output; calibrate again"):
        OnnxDepth(card, camera=profile(depth_calibrations=[cal("relative-inverse", 0.1, 0.2, "scale-shift")]))


def test_profile_calibration_gives_a_relative_network_metres_and_its_range(tmp_path, models):
    card = load_card(card_file(tmp_path, models, kind="relative-inverse"))
    camera = profile(depth_calibrations=[cal("relative-inverse", 0.01, 0.05, "scale-shift")])
    with OnnxDepth(card, camera=camera) as depth:
        dm = depth(frame(np.full((8, 8, 3), 20, np.uint8)))
    np.testing.assert_allclose(dm.metres, 1 / (0.01 * 20 + 0.05), rtol=1e-6)  # 4 m
    assert dm.kind == "relative+calibrated" and dm.valid_range_m == (1.0, 4.0)  # where the fit was measured


def test_a_network_out_of_its_domain_flags_every_box(tmp_path, models):
    card = load_card(card_file(tmp_path, models, domain="indoor", valid_range_m=[0.5, 10]))
    depth = OnnxDepth(card, camera=profile(scene="outdoor"))
    assert depth.domain_note == "out of domain: tiny is an indoor model, camera 'cam' films an outdoor scene"
    assert depth.state == "indoor model on an outdoor scene: out of domain"
    assert OnnxDepth(card, camera=profile(scene="indoor")).domain_note is None
    assert OnnxDepth(load_card(card_file(tmp_path, models, domain="outdoor")), camera=profile(scene="driving")).domain_note is None
    dm = DepthMap(np.full((20, 20), 3.0, np.float32), "tiny", "metric", valid_range_m=(0.5, 10.0))
    dets = Detections(np.array([[2, 2, 8, 8]], np.float32), [0.9], [0]).with_depth([3.0], [1.0], [0.0])
    flagged = flag_boxes(dets, dm, domain_note=depth.domain_note)
    assert not flagged.depth_reliable[0] and flagged.depth_note[0] == depth.domain_note


def test_flag_boxes_rules():
    dm = DepthMap(np.full((100, 100), 3.0, np.float32), "net", "metric", valid_range_m=(0.5, 10.0))
    boxes = np.array([[0, 0, 10, 10]] * 5 + [[0, 80, 10, 100]], np.float32)
    dets = Detections(boxes, [0.9] * 6, [0] * 6).with_depth(
        [3.0, 12.0, 0.3, np.nan, 3.0, 3.0], [1.0, 1.0, 1.0, 0.0, 0.3, 1.0], [0.1] * 6)
    out = flag_boxes(dets, dm, stat="bottom")
    assert out.depth_reliable.tolist() == [True, False, False, False, False, False]
    assert out.depth_note.tolist() == [
        "", "beyond net's range 0.5-10 m", "nearer than net's range 0.5-10 m", "no depth in the box",
        "fewer than 50% of the box's depth pixels valid",
        "box cut by the frame's bottom edge: its ground contact is not seen"]
    # another stage's flag is kept, and the notes add up
    earlier = out.with_trust(np.array([False] + [True] * 5), np.array(["uncalibrated"] + [""] * 5, dtype=object))
    again = flag_boxes(earlier.with_depth([12.0] * 6, [1.0] * 6, [0.1] * 6), dm)
    assert again.depth_note[0] == "uncalibrated; beyond net's range 0.5-10 m" and not again.depth_reliable.any()


# -- the real FastDepth-224 --------------------------------------------------------------------------------------


def test_fastdepth_card_loads_and_checks_against_the_real_onnx():
    card = load_card(FASTDEPTH_CARD)
    assert (card.input_dtype, card.layout, card.output_layout, card.resize) == ("uint8", "nhwc", "nhwc", "stretch")
    assert (card.domain, card.valid_range) == ("indoor", (0.5, 10.0))
    import cv2

    with open_depth_model(FASTDEPTH_CARD) as depth:
        dm = depth(frame(cv2.imread(str(DOG))))
        assert depth.engine.inputs["image"].dtype == np.uint8
    assert (dm.source, dm.kind, dm.state, dm.valid_range_m) == ("fastdepth-224-nyu", "metric", "indoor, metric", (0.5, 10.0))


def test_fastdepth_out_of_domain_on_the_bundled_clip(demo_frames):
    """The bundled clip's profile says outdoor: FastDepth (indoor) there says so in its state and on every box."""
    from depthstream.schema.camera import load_profile
    from stream.depth.select import BUNDLED_PROFILE

    with open_depth_model(FASTDEPTH_CARD, camera=load_profile(BUNDLED_PROFILE)) as depth:
        dm = depth(frame(demo_frames[0]))
    assert dm.state == "indoor model on an outdoor scene: out of domain"
    assert depth.domain_note == ("out of domain: fastdepth-224-nyu is an indoor model, camera 'pets2009-view001' films "
                                 "an outdoor scene")


def test_fastdepth_output_map_shape_is_checked_at_run_time(tmp_path, fastdepth_onnx):
    from stream.depth.cardcheck import output_map

    card = load_card(FASTDEPTH_CARD)
    assert output_map(np.zeros((1, 224, 224, 1), np.float32), card).shape == (224, 224)
    with pytest.raises(EngineError, match=r"output 'depth' has shape \[1, 1, 224, 224\], expected \[1, h, w, 1\] "
                                          r"\(output_layout nhwc in "):
        output_map(np.zeros((1, 1, 224, 224), np.float32), card)


def test_tensorrt_11_fp16_build_of_fastdepth_keeps_its_uint8_input(tmp_path, monkeypatch, fastdepth_onnx, dog_image):
    """TensorRT 11 builds FP16 from an FP16 copy of the ONNX: for FastDepth the copy keeps the uint8 input (its Cast
    now makes float16) and the float32 output, and runs within 3 % of the FP32 model. TensorRT itself is a stand-in
    (tests/test_engines_trt_fake.py): no TensorRT build of FastDepth has run on this project's machines."""
    import sys

    import onnxruntime as ort

    from engines import build
    from test_engines_trt_fake import _fake_builder_module

    calls: dict = {}
    monkeypatch.setitem(sys.modules, "tensorrt", _fake_builder_module(calls, False, "11.4.0.106"))
    cache = tmp_path / "cache"
    cache.mkdir()
    shape = (1, 224, 224, 3)
    req = build.BuildRequest(fastdepth_onnx, cache / "fd.fp16.engine", cache / "fd.fp16.json", tmp_path / "timing.cache",
                             "fp16", {"image": (shape, shape, shape)}, {})
    build.build_with_tensorrt(req, report=lambda text: None)
    copy = onnx.load(calls["parsed"])
    assert [(i.name, i.type.tensor_type.elem_type) for i in copy.graph.input] == [("image", TensorProto.UINT8)]
    assert [o.type.tensor_type.elem_type for o in copy.graph.output] == [TensorProto.FLOAT]
    first = copy.graph.node[0]
    assert first.op_type == "Cast" and first.input[0] == "image" and first.attribute[0].i == TensorProto.FLOAT16
    with open_depth_model(FASTDEPTH_CARD) as depth:
        x, _ = depth.preprocess(dog_image)
    fp32 = ort.InferenceSession(str(fastdepth_onnx), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    fp16 = ort.InferenceSession(calls["parsed"], providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    assert np.mean(np.abs(fp16 - fp32)) < 0.03 * np.mean(np.abs(fp32))
