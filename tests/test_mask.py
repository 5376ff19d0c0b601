"""The distance band (config section ``band``, validated by the schema) and filling the pixels outside it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from depthstream.errors import ConfigError
from depthstream.schema.config import BandConfig, MaskConfig, load_config
from depthstream.types import DepthMap
from stream.mask import band_mask, fill_outside, in_band

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


def test_fill_default_is_grey(scene):
    image, mask = scene
    assert (fill_outside(image, mask)[~mask] == 114).all()


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
