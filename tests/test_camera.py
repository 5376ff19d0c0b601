"""Camera profiles (depthstream/schema/camera.py): schema, scaling to a frame's size, commented YAML, one-line errors."""

from __future__ import annotations

import math

import pytest
import yaml

from depthstream.schema.camera import CameraProfile, DepthCalibration, load_profile, save_profile
from depthstream.errors import ConfigError

from conftest import ROOT

PETS = ROOT / "data" / "vtest_pets2009.camera.yaml"


def _profile(**intrinsics) -> CameraProfile:
    return CameraProfile(name="cam", intrinsics={"width": 640, "height": 480, "source": {"method": "datasheet"},
                                                  **intrinsics})


def test_bundled_clip_profile_is_the_published_pets_calibration():
    p = load_profile(PETS)
    assert p.name == "pets2009-view001" and p.scene == "outdoor"
    assert (p.intrinsics.width, p.intrinsics.height) == (768, 576)
    intr = p.intrinsics_for(768, 576)
    assert intr.fy == 1194.6 and intr.cy == 282.6  # View_001.xml's Tsai calibration
    assert intr.fx == intr.fy and intr.cx == (768 - 1) / 2 and intr.scale == 1.0
    assert (p.mounting.height_m, p.mounting.pitch_deg, p.mounting.roll_deg) == (7.07, 16.5, 0.0)
    assert p.intrinsics.source.method == "published" and "View_001" in p.intrinsics.source.detail


def test_intrinsics_scale_with_the_frame():
    p = load_profile(PETS)
    double = p.intrinsics_for(1536, 1152)
    assert (double.fx, double.fy, double.scale) == (2389.2, 2389.2, 2.0)
    # pixel centres at integer coordinates: x -> (x + 0.5) * s - 0.5
    assert double.cx == pytest.approx(767.5) and double.cy == pytest.approx((282.6 + 0.5) * 2 - 0.5)
    half = p.intrinsics_for(384, 288)
    assert half.fy == pytest.approx(597.3) and half.cy == pytest.approx(141.05)  # (282.6 + 0.5) / 2 - 0.5
    assert half.vfov_deg == pytest.approx(2 * math.degrees(math.atan(288 / (2 * 597.3))))


def test_rounded_resize_is_still_a_scale():
    p = CameraProfile(name="hd", intrinsics={"width": 1920, "height": 1080, "fx": 1000.0, "source": {"method": "manual"}})
    small = p.intrinsics_for(854, 480)  # 1920x1080 -> 480 rows gives 853.33 columns, rounded
    assert small.fx == pytest.approx(1000 * 854 / 1920) and small.fy == pytest.approx(1000 * 480 / 1080)


def test_another_aspect_ratio_is_refused_with_what_to_do():
    p = load_profile(PETS)
    with pytest.raises(ConfigError, match=r"frame 1280x720 has another aspect ratio than the 768x576 .* not a scale: "
                                          r"calibrate the camera at 1280x720 \(python -m stream calibrate chessboard"):
        p.intrinsics_for(1280, 720)


def test_field_of_view_forms():
    assert _profile(hfov_deg=90).intrinsics_for(640, 480).fx == pytest.approx(320.0)  # (640 / 2) / tan(45 deg)
    v = _profile(vfov_deg=90).intrinsics_for(640, 480)
    assert v.fy == pytest.approx(240.0) and v.fx == pytest.approx(240.0)
    assert _profile(dfov_deg=90).intrinsics_for(640, 480).fx == pytest.approx(400.0)  # diagonal 800 px
    lone = _profile(fx=500.0).intrinsics_for(320, 240)
    assert (lone.fx, lone.fy, lone.cx, lone.cy) == (250.0, 250.0, 159.5, 119.5)


def test_no_intrinsics_is_a_clear_error():
    with pytest.raises(ConfigError, match="has no intrinsics: add them"):
        CameraProfile(name="cam").intrinsics_for(640, 480)


def test_depth_calibration_to_metres_and_replacement():
    metric = DepthCalibration(model="m", output="metric", fit="scale", scale=0.5, samples=1, range_m=(1, 2),
                              source={"method": "known-distance"})
    assert metric.to_metres(4.0) == 2.0
    inverse = DepthCalibration(model="m", output="relative-inverse", fit="scale-shift", scale=0.5, shift=0.1,
                               samples=4, residual_abs_rel=0.02, range_m=(1, 5), source={"method": "rgbd"})
    assert inverse.to_metres(1.8) == pytest.approx(1.0)  # 1 / (0.5 * 1.8 + 0.1)
    p = CameraProfile(name="cam").with_depth_calibration(metric).with_depth_calibration(inverse)
    assert p.depth_calibrations == (inverse,) and p.depth_calibration_for("m") is inverse
    assert p.depth_calibration_for("other") is None


def test_save_load_round_trip_with_comments(tmp_path):
    p = load_profile(PETS).with_depth_calibration(DepthCalibration(
        model="fastdepth-224", output="metric", fit="scale", scale=0.114, samples=2, residual_abs_rel=0.03,
        range_m=(0.3, 0.4), source={"method": "known-distance", "detail": "left01.jpg box: 0.383 m"}))
    out = save_profile(p, tmp_path / "cam.yaml", header="a header line")
    text = out.read_text()
    assert "# a header line" in text and "fy: 1194.6  # vertical focal length, pixels" in text
    assert "range_m: [0.3, 0.4]  # nearest and farthest true distance" in text
    assert load_profile(out) == p
    assert "hfov_deg" not in text  # only the focal form in use is written


def test_save_never_overwrites_unless_forced(tmp_path):
    path = tmp_path / "cam.yaml"
    path.write_text("keep me\n")
    with pytest.raises(ConfigError, match=r"cam.yaml already exists; choose another file or pass --force"):
        save_profile(CameraProfile(name="cam"), path)
    assert path.read_text() == "keep me\n"
    save_profile(CameraProfile(name="cam"), path, force=True)
    assert load_profile(path).name == "cam"
    with pytest.raises(ConfigError, match="is a folder"):
        save_profile(CameraProfile(name="cam"), tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        save_profile(CameraProfile(name="cam"), tmp_path / "no" / "cam.yaml")


BAD = [
    ({"name": "x", "intrinsics": {"width": 640, "height": 480, "fxx": 500, "source": {"method": "chessboard"}}},
     r"unknown key 'intrinsics.fxx' \(did you mean 'intrinsics.fx'\?\)"),
    ({"nam": "x"}, r"unknown key 'nam' \(did you mean 'name'\?\)"),
    ({"name": "x", "intrinsics": {"width": 640, "height": 480, "fx": -3, "source": {"method": "chessboard"}}},
     r"intrinsics.fx: got -3, expected pixels > 0"),
    ({"name": "x", "intrinsics": {"width": 640, "height": 480, "fx": 500, "hfov_deg": 60,
                                  "source": {"method": "chessboard"}}},
     r"intrinsics: give a focal length in pixels \(fx and/or fy\) or exactly one field of view .* got hfov_deg, fx"),
    ({"name": "x", "intrinsics": {"width": 640, "height": 480, "source": {"method": "chessboard"}}},
     r"intrinsics: give a focal length .* got none"),
    ({"name": "x", "intrinsics": {"width": 640, "height": 480, "hfov_deg": 180, "source": {"method": "datasheet"}}},
     r"intrinsics.hfov_deg: got 180, expected degrees in \(0, 180\)"),
    ({"name": "x", "intrinsics": {"width": 640, "height": 480, "fx": 5, "source": {"method": "chessbord"}}},
     r"intrinsics.source.method: got 'chessbord', expected chessboard \| datasheet \| .* \(did you mean 'chessboard'\?\)"),
    ({"name": "x", "intrinsics": {"width": 640, "height": 480, "fx": 5, "distortion": [0.1, 0.2],
                                  "source": {"method": "chessboard"}}},
     r"intrinsics.distortion: got \[0.1, 0.2\], expected 4, 5, 8, 12 or 14 coefficients in OpenCV's order"),
    ({"name": "x", "intrinsics": {"width": 640.5, "height": 480, "fx": 5, "source": {"method": "chessboard"}}},
     r"intrinsics.width: got 640.5, expected a positive integer of pixels"),
    ({"name": "x", "intrinsics": {"width": 640, "height": 480, "fx": 5}}, r"missing required key intrinsics.source \(required: intrinsics.width, intrinsics.height, intrinsics.source\)"),
    ({"name": "x", "mounting": {"height_m": 3, "pitch_deg": 95, "source": {"method": "manual"}}},
     r"mounting.pitch_deg: got 95, expected degrees in \(-90, 90\)"),
    ({"name": "x", "mounting": {"height_m": float("nan"), "pitch_deg": 5, "source": {"method": "manual"}}},
     r"mounting.height_m: got nan, expected metres > 0"),
    ({"name": "x", "depth_calibrations": [{"model": "m", "output": "metric", "fit": "scale", "scale": 0, "samples": 1,
                                           "range_m": [1, 2], "source": {"method": "rgbd"}}]},
     r"depth_calibrations\[0\].scale: got 0, expected a non-zero number"),
    ({"name": "x", "depth_calibrations": [{"model": "m", "output": "metric", "fit": "scale", "scale": 1, "shift": 2,
                                           "samples": 1, "range_m": [1, 2], "source": {"method": "rgbd"}}]},
     r"fit 'scale' has no shift, got shift 2 \(use fit: scale-shift\)"),
    ({"name": "x", "depth_calibrations": [{"model": "m", "output": "metrik", "fit": "scale", "scale": 1, "samples": 1,
                                           "range_m": [1, 2], "source": {"method": "rgbd"}}]},
     r"depth_calibrations\[0\].output: got 'metrik', expected metric \| relative-depth \| relative-inverse "
     r"\(did you mean 'metric'\?\)"),
    ({"name": "x", "depth_calibrations": [{"model": "m", "output": "metric", "fit": "scale", "scale": 1, "samples": 1,
                                           "range_m": [1, 2], "source": {"method": "rgbd"}}] * 2},
     r"more than one entry for model m; keep one"),
    ({"name": "x", "depth_calibrations": [{"model": "m", "outpt": "metric"}]},
     r"unknown key 'depth_calibrations\[0\]\.outpt' \(did you mean 'depth_calibrations\[0\]\.output'\?\)"),
    ({"name": "x", "depth_calibrations": [3]},
     r"depth_calibrations\[0\]: got 3, expected a mapping of keys \(model, output, fit, scale, shift, samples"),
    ({"name": ""}, r"name: got '', expected a non-empty string"),
    ({"name": "x", "version": 2}, r"version: got 2, expected 1"),
]


@pytest.mark.parametrize("data, message", BAD)
def test_bad_profiles_are_one_line_errors_naming_key_value_and_what_is_allowed(tmp_path, data, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=message) as info:
        load_profile(path)
    assert str(info.value).startswith(f"camera profile {path}: ") and "\n" not in str(info.value)


def test_unreadable_profiles(tmp_path):
    with pytest.raises(ConfigError, match=r"missing.yaml: file not found \(write one with python -m stream calibrate"):
        load_profile(tmp_path / "missing.yaml")
    (tmp_path / "a.yaml").write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_profile(tmp_path / "a.yaml")
    (tmp_path / "b.yaml").write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="must be a mapping of keys, got list"):
        load_profile(tmp_path / "b.yaml")
    (tmp_path / "c.yaml").write_bytes(b"\xff\xfe name: x\n")
    with pytest.raises(ConfigError, match=r"^camera profile .*c.yaml: not UTF-8 text \(byte 0xff on line 1\); save it as UTF-8$"):
        load_profile(tmp_path / "c.yaml")
