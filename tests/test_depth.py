"""Depth providers: the ground-plane formula, model cards and ONNX depth networks on tiny graphs."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

from depthstream.errors import ConfigError, DepthError, EngineError
from depthstream.schema.camera import CameraProfile
from depthstream.schema.card import Calibration, ModelCard, load_card
from depthstream.schema.config import load_config
from depthstream.types import Frame
from stream.depth import GroundPlaneDepth, OnnxDepth, ground_plane_z, open_depth_model


def make_frame(image: np.ndarray) -> Frame:
    return Frame(np.ascontiguousarray(image, dtype=np.uint8), index=0, pts_s=None, captured_ns=0, source_id="test")


def camera(height_m: float, pitch_deg: float, size: tuple[int, int], *, vfov_deg=None, focal_px=None, cy_px=None,
           max_depth_m: float = 100.0, roll_deg: float = 0.0) -> GroundPlaneDepth:
    """A ground plane from a camera profile whose intrinsics refer to ``size`` = (rows, columns), every value given
    (no PETS defaults). ``cy_px`` in OpenCV's convention (row r's centre is r); None: the image centre (rows - 1) / 2."""
    h, w = size
    intrinsics = {"width": w, "height": h, "source": {"method": "manual"}, "cy": cy_px,
                  **({"vfov_deg": vfov_deg} if vfov_deg is not None else {"fy": focal_px})}
    profile = CameraProfile(name="test-cam", intrinsics=intrinsics, mounting={
        "height_m": height_m, "pitch_deg": pitch_deg, "roll_deg": roll_deg, "source": {"method": "manual"}})
    return GroundPlaneDepth(profile, max_depth_m)


def blank(h: int, w: int, bgr=(0, 0, 0)) -> Frame:
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = bgr
    return make_frame(img)


# --------------------------------------------------------------------------------------------------
# Ground plane
# --------------------------------------------------------------------------------------------------

def test_ground_plane_hand_computed_rows():
    # H = 3 m, pitch 30 deg, f = 500 px, cy = 240: row 240's centre is the principal row.
    gp = camera(3.0, 30.0, (480, 640), focal_px=500.0, cy_px=240.0, max_depth_m=50.0)
    depth = gp(blank(480, 640))
    assert depth.metres.shape == (480, 640) and depth.metres.dtype == np.float32
    assert depth.kind == "geometric" and depth.source == "ground-plane"
    assert depth.valid_range_m == (0.0, 50.0) and depth.state == "geometric, test-cam"
    # Row at cy: z = 3 / sin 30 = 6.0 m.
    assert depth.metres[240, 0] == pytest.approx(6.0, abs=1e-5)
    # 100 px below: z = 3 / (cos30 * 100/500 + sin30) = 3 / (0.8660254 * 0.2 + 0.5) = 3 / 0.6732051 = 4.456300 m.
    assert depth.metres[340, 0] == pytest.approx(4.456300, abs=1e-4)
    # 200 px above cy: 3 / (0.8660254 * -0.4 + 0.5) = 3 / 0.1535898 = 19.532634 m.
    assert depth.metres[40, 0] == pytest.approx(19.532634, abs=1e-3)
    # Independent of the column.
    assert np.array_equal(depth.metres[340], np.full(640, depth.metres[340, 0], np.float32))


def test_ground_plane_z_helper_matches_formula():
    z = ground_plane_z(np.array([240.0, 340.0]), 3.0, 30.0, 500.0, 240.0)
    assert z == pytest.approx([6.0, 4.456300], abs=1e-4)


def test_ground_plane_vfov_gives_focal():
    # vfov 90 deg on 480 rows: f = 240 / tan 45 = 240 px. vfov 60: f = 240 / tan 30 = 415.6922 px.
    assert camera(1.5, 0.0, (480, 32), vfov_deg=90.0).profile.intrinsics_for(32, 480).fy == pytest.approx(240.0)
    assert camera(1.5, 0.0, (480, 32), vfov_deg=60.0).profile.intrinsics_for(32, 480).fy == pytest.approx(415.6922, abs=1e-3)
    by_fov = camera(1.5, 0.0, (480, 32), vfov_deg=90.0, cy_px=240.0, max_depth_m=1e6)(blank(480, 32)).metres
    by_f = camera(1.5, 0.0, (480, 32), focal_px=240.0, cy_px=240.0, max_depth_m=1e6)(blank(480, 32)).metres
    np.testing.assert_array_equal(by_fov, by_f)
    # Pitch 0, row 360: v - cy = 120, 120 / 240 = 0.5 -> z = 1.5 / 0.5 = 3.0 m.
    assert by_fov[360, 5] == pytest.approx(3.0, abs=1e-5)
    # Pitch 0: every row at or above the principal row looks at or above the horizon.
    assert np.isnan(by_fov[:241]).all() and np.isfinite(by_fov[241:]).all()


def test_ground_plane_horizon_and_max_depth():
    # H = 3, pitch 10 deg, f = 500, cy = 239.5 (the image centre, OpenCV's convention). Horizon: v - cy =
    # -500 tan 10 = -88.16 -> v = 151.34.
    far = camera(3.0, 10.0, (480, 8), focal_px=500.0, max_depth_m=1e9)(blank(480, 8)).metres
    assert np.isnan(far[:152]).all()  # row 151: v - cy = -88.5 is above the horizon
    # Row 152: v - cy = -87.5: 0.98480775 * -0.175 + 0.17364818 = 0.00130682 -> z = 2295.65 m.
    assert far[152, 0] == pytest.approx(2295.65, rel=1e-3)
    cut = camera(3.0, 10.0, (480, 8), focal_px=500.0, max_depth_m=100.0)(blank(480, 8)).metres
    # Row 166: 0.98480775 * -0.147 + 0.17364818 = 0.02888144 -> 103.873 m > 100 -> NaN.
    assert np.isnan(cut[:167]).all()
    # Row 167: 0.98480775 * -0.145 + 0.17364818 = 0.03085105 -> 97.2414 m.
    assert cut[167, 3] == pytest.approx(97.2414, abs=1e-2)
    assert np.isfinite(cut[167:]).all()
    # Further down the image is nearer.
    assert np.all(np.diff(cut[167:, 0]) < 0)


def test_ground_plane_caches_per_size_and_is_read_only():
    gp = camera(3.0, 30.0, (120, 160), vfov_deg=50.0)
    a = gp(blank(120, 160))
    b = gp(blank(120, 160))
    assert a is b and a.metres is b.metres
    assert not a.metres.flags.writeable
    with pytest.raises(ValueError):
        a.metres[0, 0] = 1.0
    c = gp(blank(240, 320))
    assert c.metres.shape == (240, 320) and c is not a


def test_ground_plane_frame_of_another_aspect_is_refused():
    """The profile's intrinsics refer to a resolution: a frame of another aspect ratio is no scale of it."""
    gp = camera(3.0, 30.0, (480, 640), focal_px=500.0)
    assert gp(blank(240, 320)).metres.shape == (240, 320)
    with pytest.raises(ConfigError, match=r"camera profile 'test-cam': frame 640x360 has another aspect ratio than "
                                          r"the 640x480 its intrinsics refer to"):
        gp(blank(360, 640))


def test_ground_plane_scales_with_the_frame():
    """The same camera at half the resolution: the same metres at the same place of the picture."""
    full = camera(3.0, 20.0, (480, 640), focal_px=600.0, cy_px=250.0, max_depth_m=1e6)
    z_full = full(blank(480, 640)).metres
    z_half = full(blank(240, 320)).metres
    # Row r of the half frame covers rows 2r and 2r + 1 of the full one: its centre, row 2r + 0.5.
    centre = ground_plane_z(np.array([2 * 100 + 0.5]), 3.0, 20.0, 600.0, 250.0)[0]
    assert z_half[100, 0] == pytest.approx(centre, rel=1e-5)
    assert z_full[200, 0] > z_half[100, 0] > z_full[201, 0]  # lower rows are nearer


def test_ground_plane_roll_tilts_the_horizon():
    # Roll 10 deg lowers the image's right side: the ground there is nearer than at the left, at the same row.
    gp = camera(2.0, 15.0, (200, 300), focal_px=300.0, roll_deg=10.0, max_depth_m=1e6)
    z = gp(blank(200, 300)).metres
    assert z[150, 250] < z[150, 150] < z[150, 50]
    # Hand-computed: row 150, column 250, cx = 149.5, cy = 99.5: a = 100.5 / 300, b = 50.5 / 300,
    # b' = sin10 * a + cos10 * b = 0.0581741 + 0.1657761 = 0.2239502; down = cos15 * b' + sin15 = 0.4751392 -> 4.209294 m.
    assert z[150, 250] == pytest.approx(4.209294, rel=1e-5)
    flat = camera(2.0, 15.0, (200, 300), focal_px=300.0, max_depth_m=1e6)(blank(200, 300)).metres
    assert np.array_equal(flat[150], np.full(300, flat[150, 0]))


def test_ground_plane_needs_a_mounting_and_intrinsics():
    with pytest.raises(ConfigError, match=r"camera profile 'nomount' has no mounting: the ground plane needs the camera's "
                                          r"height and pitch"):
        GroundPlaneDepth(CameraProfile(name="nomount", intrinsics={"width": 4, "height": 3, "fx": 3.0,
                                                                    "source": {"method": "manual"}}))


@pytest.mark.parametrize("item", ["depth.ground_plane.height_m=3", "depth.ground_plane.focal_px=null",
                                  "depth.ground_plane={height_m: 3}"])
def test_old_ground_plane_keys_say_where_they_went(item):
    """The ground plane's camera moved into camera profiles: an old --set gets one line saying what to do."""
    key = item.split("=")[0]
    with pytest.raises(ConfigError, match=rf"^--set {re.escape(key)}: the ground plane's camera is now a camera profile, "
                                          r".*pass --camera FILE \(config camera\.profile\)"):
        load_config(sets=[item])


def test_old_ground_plane_keys_in_a_config_file(tmp_path):
    user = tmp_path / "old.yaml"
    user.write_text("depth:\n  ground_plane:\n    height_m: 3.5\n    pitch_deg: 12\n")
    with pytest.raises(ConfigError, match=r"old\.yaml: depth\.ground_plane\.height_m: the ground plane's camera is now a "
                                          r"camera profile"):
        load_config(user)


# --------------------------------------------------------------------------------------------------
# Tiny ONNX graphs and cards
# --------------------------------------------------------------------------------------------------

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

NET = 8  # the tiny networks' input size (NET x NET)


def _save(graph, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def build_mean_nchw(path: Path) -> Path:
    """x (1, 3, 8, 8) -> depth (1, 1, 8, 8) = mean over the channels."""
    node = helper.make_node("ReduceMean", ["x"], ["depth"], axes=[1], keepdims=1)
    graph = helper.make_graph(
        [node], "mean_nchw",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, NET, NET])],
        [helper.make_tensor_value_info("depth", TensorProto.FLOAT, [1, 1, NET, NET])],
    )
    return _save(graph, path)


def build_channel0_nchw(path: Path) -> Path:
    """x (1, 3, 8, 8) -> depth (1, 1, 8, 8) = channel 0 (the first channel of the card's colour order)."""
    idx = helper.make_tensor("idx", TensorProto.INT64, [1], [0])
    node = helper.make_node("Gather", ["x", "idx"], ["depth"], axis=1)
    graph = helper.make_graph(
        [node], "chan0_nchw",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, NET, NET])],
        [helper.make_tensor_value_info("depth", TensorProto.FLOAT, [1, 1, NET, NET])],
        initializer=[idx],
    )
    return _save(graph, path)


def build_mean_nhwc(path: Path) -> Path:
    """x (1, 8, 8, 3) -> depth (1, 8, 8) = mean over the channels."""
    node = helper.make_node("ReduceMean", ["x"], ["depth"], axes=[3], keepdims=0)
    graph = helper.make_graph(
        [node], "mean_nhwc",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, NET, NET, 3])],
        [helper.make_tensor_value_info("depth", TensorProto.FLOAT, [1, NET, NET])],
    )
    return _save(graph, path)


CARD_BASE = {
    "name": "tiny",
    "model": "mean.onnx",
    "input": "x",
    "output": "depth",
    "layout": "nchw",
    "size": [NET, NET],
    "colour": "bgr",
    "scale": 1.0,
    "mean": [0.0, 0.0, 0.0],
    "std": [1.0, 1.0, 1.0],
    "kind": "metric",
    "output_layout": "nchw",
    "domain": "any",
}


def _yaml_value(v) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_yaml_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_yaml_value(x) for x in v) + "]"
    return str(v)


def write_card(folder: Path, stem: str = "card", drop: tuple[str, ...] = (), **changes) -> Path:
    data = {k: v for k, v in {**CARD_BASE, **changes}.items() if k not in drop}
    path = folder / f"{stem}.yaml"
    path.write_text("".join(f"{k}: {_yaml_value(v)}\n" for k, v in data.items()), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("depth_models")
    build_mean_nchw(folder / "mean.onnx")
    build_channel0_nchw(folder / "chan0.onnx")
    build_mean_nhwc(folder / "mean_nhwc.onnx")
    return folder


@pytest.fixture()
def cards(models, tmp_path) -> Path:
    """A fresh folder for cards, with the models linked in (cards refer to models relative to themselves)."""
    for onnx_file in models.glob("*.onnx"):
        (tmp_path / onnx_file.name).symlink_to(onnx_file)
    return tmp_path


def run(card: ModelCard, frame: Frame) -> np.ndarray:
    with OnnxDepth(card) as depth:
        result = depth(frame)
    assert result.metres.shape == (frame.height, frame.width) and result.metres.dtype == np.float32
    return result.metres


# --------------------------------------------------------------------------------------------------
# Card loading
# --------------------------------------------------------------------------------------------------

def test_load_good_card(cards):
    path = write_card(cards, kind="relative-inverse", calibration={"scale": 0.01, "shift": 0.05},
                      colour="rgb", scale=0.00392156862745098, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    card = load_card(path)
    assert card.name == "tiny" and card.model == (cards / "mean.onnx").resolve()
    assert card.size == (NET, NET) and card.layout == "nchw" and card.colour == "rgb"
    assert card.scale == pytest.approx(1 / 255) and card.mean == pytest.approx((0.485, 0.456, 0.406))
    assert card.calibration == Calibration(0.01, 0.05) and card.max_depth_m is None
    assert card.card_path == path


def test_module_docstring_example_card_loads(tmp_path):
    import depthstream.schema.card as mod

    doc = mod.__doc__
    block = doc[doc.index("    name: midas-small"):doc.index("Required keys")]
    text = "\n".join(line[4:] for line in block.splitlines())
    (tmp_path / "midas_v21_small_256.onnx").write_bytes(b"placeholder")
    (tmp_path / "midas_small.yaml").write_text(text, encoding="utf-8")
    card = load_card(tmp_path / "midas_small.yaml")
    assert card.kind == "relative-inverse" and card.calibration == Calibration(0.0012, 0.05)
    assert card.size == (256, 256)


@pytest.mark.parametrize(
    ("changes", "drop", "match"),
    [
        (dict(colur="rgb"), (), r"model card .*card\.yaml: unknown key 'colur' \(did you mean 'colour'\?\)"),
        (dict(max_depth=10), (), r"unknown key 'max_depth' \(did you mean 'max_depth_m'\?\)"),
        (dict(calibration={"scale": 1.0, "shfit": 0.1}, kind="relative-depth"), (),
         r"unknown key 'calibration\.shfit' \(did you mean 'calibration\.shift'\?\)"),
        ({}, ("input",), r"card\.yaml: missing required key input \(required: name, model, input"),
        (dict(layout="nwhc"), (), r"card\.yaml: layout: got 'nwhc', expected nchw \| nhwc$"),
        (dict(kind="disparity"), (),
         r"card\.yaml: kind: got 'disparity', expected metric \| relative-inverse \| relative-depth \| normalized$"),
        (dict(colour="rbg"), (), r"colour: got 'rbg', expected rgb \| bgr$"),
        (dict(kind="normalized"), (), r"card\.yaml: kind normalized needs max_depth_m"),
        (dict(kind="normalized", max_depth_m=-3), (), r"max_depth_m: got -3, expected metres > 0"),
        (dict(model="nope.onnx"), (), r"card\.yaml: model: got 'nope\.onnx', expected an ONNX file that exists; looked for "
                                      r".*nope\.onnx \(the path is relative to the card's folder\)"),
        (dict(size=[8]), (), r"card\.yaml: size: got \[8\], expected \[height, width\], two positive integers of pixels"),
        (dict(size=[8.5, 8]), (), r"size: got \[8\.5, 8\], expected \[height, width\], two positive integers of pixels"),
        (dict(scale="1/255"), (), r"card\.yaml: scale: got '1/255', expected a number > 0"),
        (dict(scale=0), (), r"scale: got 0, expected a number > 0 \(e\.g\. 0\.00392156862745098 for 1/255\)"),
        (dict(std=[1, 0, 1]), (), r"std: got \[1, 0, 1\], expected 3 numbers > 0"),
        (dict(calibration={"scale": 1.0, "shift": 0.0}), (), r"calibration applies only to kind relative-inverse or "
                                                             r"relative-depth, but kind is metric"),
        (dict(calibration={"scale": 1.0}, kind="relative-depth"), (),
         r"missing required key calibration\.shift \(required: calibration\.scale, calibration\.shift\)"),
        (dict(calibration={"scale": 0, "shift": 1}, kind="relative-depth"), (), r"calibration\.scale: got 0, expected a non-zero number"),
    ],
)
def test_card_errors(cards, changes, drop, match):
    path = write_card(cards, drop=drop, **changes)
    with pytest.raises(ConfigError, match=match):
        load_card(path)


def test_card_not_a_mapping_and_missing_file(tmp_path):
    (tmp_path / "list.yaml").write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"list\.yaml: must be a mapping of keys"):
        load_card(tmp_path / "list.yaml")
    with pytest.raises(ConfigError, match=r"model card .*absent\.yaml: file not found"):
        load_card(tmp_path / "absent.yaml")


def test_open_depth_model_paths(cards):
    write_card(cards, stem="mean")
    provider = open_depth_model(cards / "mean.onnx")  # sidecar mean.yaml
    assert isinstance(provider, OnnxDepth) and provider.source == "tiny" and not provider.is_open
    assert open_depth_model(cards / "mean.yaml").card == provider.card
    with pytest.raises(ConfigError, match=r"chan0\.onnx has no model card: write .*chan0\.yaml"):
        open_depth_model(cards / "chan0.onnx")
    with pytest.raises(ConfigError, match=r"depth model .*missing\.onnx not found"):
        open_depth_model(cards / "missing.onnx")
    with pytest.raises(ConfigError, match=r"expected a model card \(\.yaml / \.yml\) or an \.onnx"):
        open_depth_model(cards / "model.pt")


# --------------------------------------------------------------------------------------------------
# OnnxDepth end to end
# --------------------------------------------------------------------------------------------------

# A uniform frame, B = 10, G = 20, R = 30: the channel mean is 20 whatever the colour order.
UNIFORM = (10, 20, 30)


def test_metric(cards):
    metres = run(load_card(write_card(cards)), blank(16, 24, UNIFORM))
    np.testing.assert_allclose(metres, 20.0, rtol=1e-6)


def test_metric_max_depth_cut(cards):
    metres = run(load_card(write_card(cards, max_depth_m=15)), blank(16, 24, UNIFORM))
    assert np.isnan(metres).all()


def test_normalized(cards):
    # out = 0.01 * 20 = 0.2; metres = 0.2 * 10 = 2.0
    card = load_card(write_card(cards, kind="normalized", scale=0.01, max_depth_m=10))
    with OnnxDepth(card) as provider:
        depth = provider(blank(16, 24, UNIFORM))
    assert depth.kind == "metric" and depth.source == "tiny"
    np.testing.assert_allclose(depth.metres, 2.0, rtol=1e-6)


def test_relative_depth_calibrated(cards):
    # metres = 0.5 * 20 + 1 = 11.0
    card = load_card(write_card(cards, kind="relative-depth", calibration={"scale": 0.5, "shift": 1.0}))
    with OnnxDepth(card) as provider:
        depth = provider(blank(16, 24, UNIFORM))
    assert depth.kind == "relative+calibrated"
    np.testing.assert_allclose(depth.metres, 11.0, rtol=1e-6)


def test_relative_inverse_calibrated(cards):
    # 1 / metres = 0.01 * 20 + 0.05 = 0.25 -> 4.0 m
    card = load_card(write_card(cards, kind="relative-inverse", calibration={"scale": 0.01, "shift": 0.05}))
    metres = run(card, blank(16, 24, UNIFORM))
    np.testing.assert_allclose(metres, 4.0, rtol=1e-6)


@pytest.mark.parametrize("kind", ["relative-inverse", "relative-depth"])
def test_uncalibrated_relative_is_a_depth_error(cards, kind):
    path = write_card(cards, stem="m", name="midas", kind=kind)
    with pytest.raises(DepthError, match=rf"depth model 'midas' \(card .*m\.yaml\) gives {kind} depth and has no "
                                         r"calibration: metres, and so --closer-than/--further-than, need "
                                         r"'calibration: \{scale: \.\.\., shift: \.\.\.\}' in the card"):
        open_depth_model(path)


def test_runtime_calibration_by_replace(cards):
    card = load_card(write_card(cards, kind="relative-inverse"))
    metres = run(dataclasses.replace(card, calibration=Calibration(0.02, 0.1)), blank(8, 8, UNIFORM))
    np.testing.assert_allclose(metres, 1 / (0.02 * 20 + 0.1), rtol=1e-6)


def test_mean_std_normalisation(cards):
    # BGR channels (10, 20, 30): (10 - 0) / 1 = 10, (20 - 10) / 2 = 5, (30 - 20) / 5 = 2 -> mean 17 / 3
    card = load_card(write_card(cards, mean=[0, 10, 20], std=[1, 2, 5]))
    np.testing.assert_allclose(run(card, blank(16, 24, UNIFORM)), 17 / 3, rtol=1e-6)


@pytest.mark.parametrize(("colour", "expected"), [("rgb", 30.0), ("bgr", 10.0)])
def test_colour_order(cards, colour, expected):
    card = load_card(write_card(cards, model="chan0.onnx", colour=colour))
    np.testing.assert_allclose(run(card, blank(8, 8, UNIFORM)), expected)


def test_nhwc_layout_and_3d_output(cards):
    card = load_card(write_card(cards, model="mean_nhwc.onnx", layout="nhwc", output_layout="hw"))
    np.testing.assert_allclose(run(card, blank(12, 20, UNIFORM)), 20.0, rtol=1e-6)


def test_non_positive_output_is_nan_and_resized_to_frame(cards):
    # 16 x 32 frame: left half black, right half 100. The network sees 8 x 8 (left 4 columns 0, right 4 100);
    # mean 1 makes the left output -1 (invalid) and the right 99.
    img = np.zeros((16, 32, 3), np.uint8)
    img[:, 16:] = 100
    card = load_card(write_card(cards, mean=[1, 1, 1]))
    metres = run(card, make_frame(img))
    assert metres.shape == (16, 32)
    assert np.isnan(metres[:, :16]).all()
    # Invalid neighbours do not pull the valid depths at the edge towards 0.
    np.testing.assert_allclose(metres[:, 16:], 99.0, rtol=1e-6)


def test_zero_output_is_nan(cards):
    card = load_card(write_card(cards, mean=[10, 20, 30]))
    assert np.isnan(run(card, blank(8, 8, UNIFORM))).all()


def test_output_is_not_min_max_normalised(cards):
    card = load_card(write_card(cards))
    dark = run(card, blank(8, 8, (2, 2, 2)))
    bright = run(card, blank(8, 8, (200, 200, 200)))
    np.testing.assert_allclose(dark, 2.0)
    np.testing.assert_allclose(bright, 200.0)


def test_open_checks_names_and_shape(cards):
    with pytest.raises(ConfigError, match=r"input 'image' is not an input of mean\.onnx; the model's inputs are: x"):
        OnnxDepth(load_card(write_card(cards, input="image"))).open()
    with pytest.raises(ConfigError, match=r"output 'disp' is not an output of mean\.onnx; the model's outputs are: depth"):
        OnnxDepth(load_card(write_card(cards, output="disp"))).open()
    with pytest.raises(ConfigError, match=r"size \[16, 16\] with layout nchw gives input shape \(1, 3, 16, 16\), but "
                                          r"the model's input 'x' has shape \(1, 3, 8, 8\)"):
        OnnxDepth(load_card(write_card(cards, size=[16, 16]))).open()
    with pytest.raises(ConfigError, match=r"layout nhwc gives input shape \(1, 8, 8, 3\)"):
        OnnxDepth(load_card(write_card(cards, layout="nhwc"))).open()


def test_call_before_open_and_close_twice(cards):
    provider = OnnxDepth(load_card(write_card(cards)))
    with pytest.raises(EngineError, match=r"depth model 'tiny' is not open: call open\(\)"):
        provider(blank(8, 8))
    provider.open()
    provider.open()
    assert provider.is_open
    provider.close()
    provider.close()
    assert not provider.is_open


def test_threads_validated():
    """depth.threads is checked when the config loads; the provider gets at least 1 (the thread plan)."""
    with pytest.raises(ConfigError, match=r"^depth\.threads: got -1, expected an integer in 0..256 \(0 = a share of pipeline.threads\)$"):
        load_config(sets=["depth.threads=-1"])


@pytest.mark.parametrize("kind", ["metric", "normalized"])
def test_results_do_not_alias_engine_buffers(cards, monkeypatch, kind):
    """The Engine contract lets a backend reuse its output arrays on the next infer (TensorRT's host buffers do;
    ONNX Runtime returns new ones, so it cannot show the bug): a depth map handed out must not change after it."""
    from engines import factory
    from engines.ort import OrtEngine

    class ReusingEngine(OrtEngine):
        """ONNX Runtime's results copied into one array per output, the same array every call, as TensorRT does."""

        def _infer(self, feeds):
            out = super()._infer(feeds)
            self.reused = getattr(self, "reused", {})
            for name, value in out.items():
                self.reused.setdefault(name, np.empty_like(value))[...] = value
            return dict(self.reused)

    monkeypatch.setattr(factory, "create_engine", lambda path, options, **kw: ReusingEngine(path, threads=kw.get("threads", 1)))
    card = load_card(write_card(cards, kind=kind, **({"max_depth_m": 10} if kind == "normalized" else {})))
    with OnnxDepth(card) as provider:
        assert isinstance(provider.engine, ReusingEngine)
        a = provider(blank(8, 8, (5, 5, 5)))
        first = a.metres.copy()
        second = provider(blank(8, 8, (50, 50, 50))).metres.copy()
    assert not np.array_equal(first, second)  # the second frame's map differs: aliasing would show
    np.testing.assert_array_equal(a.metres, first)


def test_pitch_sign_convention():
    # Pitch +20 deg (looking down), vfov 40 deg on 100 rows: f = 50 / tan 20 = 137.3739 px. Row 50: v - cy = 0.5,
    # 0.9396926 * 0.5 / 137.3739 + 0.3420201 = 0.3454403 -> z = 2 / 0.3454403 = 5.78971 m.
    down = camera(2.0, 20.0, (100, 4), vfov_deg=40.0)(blank(100, 4)).metres
    assert down[50, 0] == pytest.approx(5.78971, abs=1e-3)
    # Pitch -20 deg (looking up) with a half field of view of 20 deg: the whole image is at/above the horizon.
    up = camera(2.0, -20.0, (100, 4), vfov_deg=40.0)(blank(100, 4)).metres
    assert np.isnan(up).all()
