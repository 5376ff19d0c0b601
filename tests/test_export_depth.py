"""Depth exporters beyond the U-Net: tiny Depth Anything V2 (relative and metric) and MiDaS DPT built with
transformers, saved as Hugging Face folders and exported by our exporter; any nn.Module; the families whose
packages are missing say which package they need."""

from __future__ import annotations

import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import DOG  # noqa: E402
from export.common import ExportError  # noqa: E402
from export.depth import FAMILIES, export_depth  # noqa: E402
from depthstream.schema.card import load_card  # noqa: E402
from stream.depth import open_depth_model  # noqa: E402
from depthstream.errors import ConfigError, DepthError  # noqa: E402

PHOTO = [DOG]


def _tiny_depth_anything(folder, kind: str, max_depth: int = 20):
    transformers = pytest.importorskip("transformers")
    backbone = transformers.Dinov2Config(
        image_size=56, patch_size=14, hidden_size=32, num_hidden_layers=4, num_attention_heads=2,
        intermediate_size=64, out_features=["stage1", "stage2", "stage3", "stage4"], reshape_hidden_states=False)
    config = transformers.DepthAnythingConfig(
        backbone_config=backbone, reassemble_hidden_size=32, neck_hidden_sizes=[8, 16, 32, 32], fusion_hidden_size=16,
        head_hidden_size=8, patch_size=14, depth_estimation_type=kind, max_depth=max_depth)
    torch.manual_seed(0)
    transformers.DepthAnythingForDepthEstimation(config).eval().save_pretrained(folder)
    return folder


def test_depth_anything_v2_relative_from_a_hugging_face_folder(tmp_path):
    folder = _tiny_depth_anything(tmp_path / "da2-small-hf", "relative")
    res = export_depth("depth-anything-v2-small", weights=folder, size=(56, 56), output=tmp_path / "da2.onnx",
                       images=PHOTO)
    assert max(r.max_abs_diff for r in res.parity) < 1e-4
    card = load_card(res.card)
    assert (card.kind, card.colour, card.size) == ("relative-inverse", "rgb", (56, 56))
    assert card.mean == pytest.approx((0.485, 0.456, 0.406)) and card.std == pytest.approx((0.229, 0.224, 0.225))
    assert res.checks == ["depth stage: relative-inverse card loads; metres need a calibration in the card"]
    assert "calibration: {scale: S, shift: T}" in res.card.read_text()
    with pytest.raises(DepthError, match=r"has no calibration"):
        open_depth_model(res.card)


def test_depth_anything_v2_metric_indoor_gives_metres(tmp_path):
    folder = _tiny_depth_anything(tmp_path / "da2-indoor-hf", "metric", max_depth=20)
    res = export_depth("depth-anything-v2-metric-indoor", weights=folder, size=(56, 56),
                       output=tmp_path / "indoor.onnx", images=PHOTO)
    card = load_card(res.card)
    assert (card.kind, card.max_depth_m) == ("metric", 20.0)
    assert res.checks[0].startswith("depth stage on dog.jpg: 768x576 map, median")
    import cv2

    from depthstream.types import Frame

    with open_depth_model(res.card) as depth:
        dm = depth(Frame(cv2.imread(str(PHOTO[0])), 0, None, 0, "t"))
    valid = np.isfinite(dm.metres)
    assert valid.any() and float(np.nanmax(dm.metres)) <= 20.0


@pytest.mark.parametrize("family, kind, max_depth, message", [
    ("depth-anything-v2-metric-indoor", "relative", 20, r"holds a relative Depth Anything model .* use --model depth-anything-v2-small"),
    ("depth-anything-v2-small", "metric", 20, r"holds a metric Depth Anything model"),
    ("depth-anything-v2-metric-outdoor", "metric", 20, r"was trained for max_depth 20 m, the family expects 80 m"),
    ("midas-dpt", "relative", 20, r"config.json has model_type 'depth_anything', expected 'dpt'"),
])
def test_a_folder_of_the_wrong_variant_is_named(tmp_path, family, kind, max_depth, message):
    folder = _tiny_depth_anything(tmp_path / "hf", kind, max_depth)
    with pytest.raises(ConfigError, match=message):
        export_depth(family, weights=folder, size=(56, 56) if family != "midas-dpt" else (64, 64),
                     output=tmp_path / "x.onnx", images=PHOTO)


def test_midas_dpt_from_a_hugging_face_folder(tmp_path):
    transformers = pytest.importorskip("transformers")
    config = transformers.DPTConfig(
        image_size=64, patch_size=16, hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64,
        backbone_out_indices=[0, 1, 2, 3], neck_hidden_sizes=[8, 16, 32, 32], fusion_hidden_size=16, is_hybrid=False)
    torch.manual_seed(0)
    transformers.DPTForDepthEstimation(config).eval().save_pretrained(tmp_path / "dpt-hf")
    res = export_depth("midas-dpt", weights=tmp_path / "dpt-hf", size=(64, 64), output=tmp_path / "dpt.onnx",
                       images=PHOTO)
    assert max(r.max_abs_diff / max(1.0, r.max_abs_ref) for r in res.parity) < 1e-4
    card = load_card(res.card)
    assert (card.kind, card.mean, card.std, card.size) == ("relative-inverse", (0.5,) * 3, (0.5,) * 3, (64, 64))


def tiny_metric_net():
    """A stand-in metric depth network for the generic ``module`` family: 1 + softplus of a conv."""
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 1, 3, padding=1)

        def forward(self, x):
            return 1.0 + torch.nn.functional.softplus(self.conv(x))

    torch.manual_seed(0)
    return Net()


def test_any_module_with_the_card_the_user_gives(tmp_path):
    res = export_depth("module", module="test_export_depth:tiny_metric_net", size=(32, 48), kind="metric",
                       colour="bgr", scale=1.0, mean=(0, 0, 0), std=(255, 255, 255), max_depth_m=50.0,
                       domain="outdoor", output=tmp_path / "m.onnx", images=PHOTO)
    card = load_card(res.card)
    assert (card.kind, card.colour, card.scale, card.std, card.size) == ("metric", "bgr", 1.0, (255.0,) * 3, (32, 48))
    # the fields a real model needs, written from what was exported: the output's layout read from the ONNX
    assert (card.input_dtype, card.output_layout, card.resize, card.domain) == ("float32", "nchw", "stretch", "outdoor")
    assert card.valid_range == (0.0, 50.0)
    assert "median" in res.checks[0]
    with pytest.raises(ConfigError, match=r"--model module needs --size H W, --kind .*, --domain \(indoor"):
        export_depth("module", module="test_export_depth:tiny_metric_net", size=(32, 48), kind="metric",
                     output=tmp_path / "m.onnx")


@pytest.mark.parametrize("family, weights, message", [
    ("midas-small", "midas_v21_small_256.pt", r"needs the Python package 'the MiDaS repository \(not on PyPI"),
    ("depth-anything-v2-small", "depth_anything_v2_vits.pth", r"needs the Python package 'jkp-depth-anything-v2 --no-deps'"),
    ("depth-anything-v2-metric-indoor", "depth_anything_v2_metric_hypersim_vits.pth", r"metric_depth folder on PYTHONPATH"),
    ("yolo-depth", "yolo26n-depth.pt", r"needs the Python package 'ultralytics'"),
])
def test_families_whose_package_is_missing_say_which(tmp_path, monkeypatch, family, weights, message):
    for mod in ("midas", "midas.midas_net_custom", "depth_anything_v2", "depth_anything_v2.dpt", "ultralytics"):
        monkeypatch.setitem(sys.modules, mod, None)  # as if not installed
    path = tmp_path / weights
    path.write_bytes(b"weights")
    with pytest.raises(ExportError, match=message):
        export_depth(family, weights=path, output=tmp_path / "x.onnx", images=PHOTO)


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "nope"}, r"unknown depth model 'nope'; expected one of unet, depth-anything-v2-small"),
    ({"name": "depth-anything-v2-small"}, r"depth-anything-v2-small needs --weights \(depth_anything_v2_vits.pth, or a Hugging Face folder"),
    ({"name": "depth-anything-v2-small", "random_init": True}, r"--random-init is only for --model unet"),
    ({"name": "depth-anything-v2-small", "size": (500, 518)}, r"input size must be two positive multiples of 14, got 500x518"),
    ({"name": "depth-anything-v2-small", "weights": "missing-folder"}, r"weights missing-folder not found"),
    ({"name": "midas-dpt", "weights": "."}, r"midas-dpt: --weights must be a Hugging Face folder with config.json"),
    ({"name": "unet", "random_init": True, "kind": "normalized", "max_depth_m": None, "size": (64, 64)}, None),
])
def test_depth_usage_errors(tmp_path, kwargs, message):
    name = kwargs.pop("name")
    if message is None:  # the family's own max_depth stays when none is given
        assert export_depth(name, output=tmp_path / "u.onnx", base_channels=2, images=PHOTO, **kwargs).card.is_file()
        return
    with pytest.raises(ConfigError, match=message):
        export_depth(name, output=tmp_path / "x.onnx", images=PHOTO, **kwargs)


def test_every_family_is_listed_with_its_card_defaults():
    assert list(FAMILIES) == ["unet", "depth-anything-v2-small", "depth-anything-v2-metric-indoor",
                              "depth-anything-v2-metric-outdoor", "midas-small", "midas-dpt", "yolo-depth", "module"]
    assert FAMILIES["depth-anything-v2-metric-outdoor"].max_depth_m == 80.0
    assert FAMILIES["midas-small"].size == (256, 256) and FAMILIES["yolo-depth"].kind == "metric"
    assert {f.name: f.domain for f in FAMILIES.values() if f.name.startswith(("unet", "depth-anything"))} == {
        "unet": "indoor", "depth-anything-v2-small": "any", "depth-anything-v2-metric-indoor": "indoor",
        "depth-anything-v2-metric-outdoor": "outdoor"}
