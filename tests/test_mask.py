"""The distance band (config section ``band``, validated by the schema) and filling the pixels outside it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from depthstream.errors import ConfigError
from depthstream.schema.config import BandConfig, MaskConfig, load_config
from depthstream.types import DepthMap
from stream.mask import grow_mask, serial_mask, band_mask, fill_outside, in_band

DEPTHS = np.array([np.nan, -1.0, 0.0, 1.0, 2.0, 3.0, 5.0, 8.0, np.inf], np.float32)


def test_closer_than():
    band = BandConfig(closer_than=2)
    assert band.active and band.closer_than == 2.0 and isinstance(band.closer_than, float)
    np.testing.assert_array_equal(in_band(DEPTHS, band), [False, False, False, True, False, False, False, False, False])
    assert band.describe() == "closer than 2 m"


def test_further_than():
    band = BandConfig(further_than=3)
    np.testing.assert_array_equal(in_band(DEPTHS, band), [False, False, False, False, False, False, True, True, False])
    assert band.describe() == "further than 3 m"


def test_between():
    band = BandConfig(closer_than=8, further_than=2.5)
    np.testing.assert_array_equal(in_band(DEPTHS, band), [False, False, False, False, False, True, True, False, False])
    assert band.describe() == "between 2.5 m and 8 m"


def test_inactive_band_keeps_every_valid_depth():
    band = BandConfig()
    assert not band.active and band.describe() == "all distances"
    np.testing.assert_array_equal(in_band(DEPTHS, band), [False, False, False, True, True, True, True, True, False])


def test_band_mask_invalid_depth_is_outside():
    metres = np.array([[1.0, np.nan], [0.5, 4.0]], np.float32)
    mask = band_mask(DepthMap(metres, "test", "metric"), BandConfig(closer_than=2))
    assert mask.dtype == np.bool_ and mask.shape == (2, 2)
    np.testing.assert_array_equal(mask, [[True, False], [True, False]])


@pytest.mark.parametrize(
    ("given", "match"),
    [
        ({"band.closer_than": -2}, r"^band.closer_than: got -2, expected a positive number of metres \(at most 10000\) or null$"),
        ({"band.closer_than": 0}, r"^band.closer_than: got 0, expected a positive number of metres"),
        ({"band.further_than": float("nan")}, r"^band.further_than: got nan, expected a positive number of metres"),
        ({"band.further_than": float("inf")}, r"^band.further_than: got inf, expected a positive number of metres"),
        ({"band.closer_than": "2"}, r"^band.closer_than: got '2', expected a positive number of metres"),
        ({"band.closer_than": True}, r"^band.closer_than: got True, expected a positive number of metres"),
        ({"band.closer_than": 3, "band.further_than": 5}, r"^band: further_than 5 and closer_than 3 leave no distance: the "
                                                          r"band is further than 5 m and closer than 3 m$"),
        ({"band.closer_than": 4, "band.further_than": 4}, r"^band: further_than 4 and closer_than 4 leave no distance"),
    ],
)
def test_band_errors(given, match):
    with pytest.raises(ConfigError, match=match):
        load_config(overrides=given)


@pytest.fixture()
def scene():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    mask = np.zeros((24, 32), bool)
    mask[5:15, 8:20] = True
    return image, mask


@pytest.mark.parametrize(("mode", "value"), [("black", 0), ("grey", 114)])
def test_fill_constant(scene, mode, value):
    image, mask = scene
    before = image.copy()
    out = fill_outside(image, mask, MaskConfig(fill=mode))
    np.testing.assert_array_equal(image, before)
    assert out is not image and out.dtype == np.uint8 and out.shape == image.shape
    assert (out[~mask] == value).all()
    np.testing.assert_array_equal(out[mask], image[mask])


def test_fill_default_is_blur(scene):
    """Blur draws no outline: the grey and black fills' outlines made kites, birds and airplanes (README, 'Layouts').
    The 31-px blur is computed at half the resolution: the pixels it hides look as under the full-resolution blur."""
    image, mask = scene
    out = fill_outside(image, mask)
    np.testing.assert_array_equal(out[mask], image[mask])
    blurred = cv2.GaussianBlur(image, (31, 31), 0).astype(np.int16)
    diff = np.abs(out[~mask].astype(np.int16) - blurred[~mask])
    assert diff.mean() < 1.0 and np.percentile(diff, 99) <= 4


def test_fill_blur_at_half_resolution_on_real_frames(demo_frames):
    """On the bundled clip's frames (real textures, sharp edges) the half-resolution blur differs from the
    full-resolution one by less than a grey level on average, and by a few levels at most in nearly every pixel."""
    everything_hidden = np.zeros(demo_frames[0].shape[:2], bool)
    for image in demo_frames[::30]:
        out = fill_outside(image, everything_hidden).astype(np.int16)
        diff = np.abs(out - cv2.GaussianBlur(image, (31, 31), 0).astype(np.int16))
        assert diff.mean() < 1.0 and np.percentile(diff, 99.9) <= 6, (diff.mean(), np.percentile(diff, 99.9))


def test_grow_mask_by_rows_and_columns():
    mask = np.zeros((40, 40), bool)
    mask[20:22, 18:20] = True
    grown = grow_mask(mask, 5, 2, 1)
    rows, cols = np.nonzero(grown)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (15, 22, 16, 21)
    assert grow_mask(mask, 0, 0, 0) is mask


def _profile_depth(fy: float):
    from depthstream.schema.camera import CameraProfile
    from stream.depth import GroundPlaneDepth

    return GroundPlaneDepth(CameraProfile(name="c", intrinsics={"width": 400, "height": 300, "fy": fy,
                                                                "source": {"method": "manual"}},
                                          mounting={"height_m": 5.0, "pitch_deg": 20.0, "source": {"method": "manual"}}))


def test_serial_mask_grows_by_the_object_at_the_band_edge():
    mask = np.zeros((300, 400), bool)
    mask[200:, :] = True  # the ground nearer than the band's edge
    cfg = load_config(sets=["band.closer_than=10", "mask.grow_height_m=2", "mask.grow_around=0.1"])
    # ground plane, fy 500: a 2 m object at 10 m is 100 px tall: the whole height upward, 10 px every other way
    grown = serial_mask(mask, cfg, _profile_depth(500.0))
    assert np.flatnonzero(grown[:, 200]).min() == 100
    # a network (no mounting) with no profile: the assumed 50 deg field of view, fy = 150 / tan 25 deg = 321.7 px,
    # so 64.3 px tall and 6 px every way
    class Net:
        kind, camera = "metric", None

    grown = serial_mask(mask, cfg, Net())
    assert np.flatnonzero(grown[:, 200]).min() == 200 - 6
    assert serial_mask(mask, load_config(sets=["band.closer_than=10", "mask.grow_height_m=0"]), Net()) is mask


def test_fill_blur(scene):
    image, mask = scene
    before = image.copy()
    out = fill_outside(image, mask, MaskConfig(fill="blur", blur_ksize=5))
    np.testing.assert_array_equal(image, before)
    blurred = cv2.GaussianBlur(image, (5, 5), 0)
    np.testing.assert_array_equal(out[~mask], blurred[~mask])
    np.testing.assert_array_equal(out[mask], image[mask])


def test_fill_all_inside_is_a_copy(scene):
    image, _ = scene
    out = fill_outside(image, np.ones(image.shape[:2], bool), MaskConfig(fill="black"))
    np.testing.assert_array_equal(out, image)
    assert not np.shares_memory(out, image)


def test_fill_errors(scene):
    image, mask = scene
    with pytest.raises(ConfigError, match=r"^mask\.fill: got 'white', expected black \| grey \| blur$"):
        load_config(sets=["mask.fill=white"])
    with pytest.raises(ConfigError, match=r"^mask\.blur_ksize: got 4, expected an odd integer in 3..99$"):
        load_config(sets=["mask.fill=blur", "mask.blur_ksize=4"])
    with pytest.raises(ValueError, match=r"\(H, W\) bool mask matching the image \(24, 32\)"):
        fill_outside(image, mask[:10])
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8 BGR image"):
        fill_outside(image.astype(np.float32), mask)
