"""The distance band and filling the pixels outside it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from depthstream.errors import ConfigError
from stream.mask import DistanceBand, band_mask, fill_outside
from depthstream.types import DepthMap

DEPTHS = np.array([np.nan, -1.0, 0.0, 1.0, 2.0, 3.0, 5.0, 8.0, np.inf], np.float32)


def test_closer_than():
    band = DistanceBand(closer_than=2)
    assert band.active and band.closer_than == 2.0 and isinstance(band.closer_than, float)
    np.testing.assert_array_equal(band.contains(DEPTHS), [False, False, False, True, False, False, False, False, False])
    assert band.describe() == "closer than 2 m"


def test_further_than():
    band = DistanceBand(further_than=3)
    np.testing.assert_array_equal(band.contains(DEPTHS), [False, False, False, False, False, False, True, True, False])
    assert band.describe() == "further than 3 m"


def test_between():
    band = DistanceBand(closer_than=8, further_than=2.5)
    np.testing.assert_array_equal(band.contains(DEPTHS), [False, False, False, False, False, True, True, False, False])
    assert band.describe() == "between 2.5 m and 8 m"


def test_inactive_band_keeps_every_valid_depth():
    band = DistanceBand()
    assert not band.active and band.describe() == "all distances"
    np.testing.assert_array_equal(band.contains(DEPTHS), [False, False, False, True, True, True, True, True, False])


def test_band_mask_invalid_depth_is_outside():
    metres = np.array([[1.0, np.nan], [0.5, 4.0]], np.float32)
    mask = band_mask(DepthMap(metres, "test", "metric"), DistanceBand(closer_than=2))
    assert mask.dtype == np.bool_ and mask.shape == (2, 2)
    np.testing.assert_array_equal(mask, [[True, False], [True, False]])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(closer_than=-2), r"--closer-than must be a positive number of metres, got -2$"),
        (dict(closer_than=0), r"--closer-than must be a positive number of metres, got 0$"),
        (dict(further_than=float("nan")), r"--further-than must be a positive number of metres, got nan"),
        (dict(further_than=float("inf")), r"--further-than must be a positive number of metres, got inf"),
        (dict(closer_than="2"), r"--closer-than must be a positive number of metres, got '2'"),
        (dict(closer_than=True), r"--closer-than must be a positive number of metres, got True"),
        (dict(closer_than=3, further_than=5), r"--further-than 5 and --closer-than 3 leave no distance: the band is "
                                              r"further than 5 m and closer than 3 m"),
        (dict(closer_than=4, further_than=4), r"--further-than 4 and --closer-than 4 leave no distance"),
    ],
)
def test_band_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        DistanceBand(**kwargs)


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
    out = fill_outside(image, mask, mode)
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
    out = fill_outside(image, mask, "blur", blur_ksize=5)
    np.testing.assert_array_equal(image, before)
    blurred = cv2.GaussianBlur(image, (5, 5), 0)
    np.testing.assert_array_equal(out[~mask], blurred[~mask])
    np.testing.assert_array_equal(out[mask], image[mask])


def test_fill_all_inside_is_a_copy(scene):
    image, _ = scene
    out = fill_outside(image, np.ones(image.shape[:2], bool), "black")
    np.testing.assert_array_equal(out, image)
    assert not np.shares_memory(out, image)


def test_fill_errors(scene):
    image, mask = scene
    with pytest.raises(ConfigError, match=r"mask\.fill must be one of black\|grey\|blur, got 'white'"):
        fill_outside(image, mask, "white")
    with pytest.raises(ConfigError, match=r"mask\.blur_ksize must be an odd positive integer .*got 4"):
        fill_outside(image, mask, "blur", blur_ksize=4)
    with pytest.raises(ValueError, match=r"\(H, W\) bool mask matching the image \(24, 32\)"):
        fill_outside(image, mask[:10], "grey")
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8 BGR image"):
        fill_outside(image.astype(np.float32), mask, "grey")
