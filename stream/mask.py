"""Masking by the distance band the user asks for (``--closer-than`` / ``--further-than``, metres).

Serial layout: depth map -> :func:`band_mask` ((H, W) bool, True inside the band) -> :func:`fill_outside`
(pixels outside the band blanked) -> the detector sees only what lies in the band. Invalid depth (NaN,
<= 0) is always outside the band: nothing says it is inside. The band and the fill are the validated
config sections ``band`` (:class:`~depthstream.schema.config.BandConfig`) and ``mask``.
"""

from __future__ import annotations

import cv2
import numpy as np

from depthstream.schema.config import BandConfig, MaskConfig
from depthstream.types import DepthMap

__all__ = ["in_band", "band_mask", "fill_outside", "GREY_FILL"]

GREY_FILL = 114
"""The grey of the detector's letterbox padding, so a blanked region looks like padding to it."""


def in_band(metres: np.ndarray, band: BandConfig) -> np.ndarray:
    """Bool array of ``metres``' shape: True where the depth is valid (finite, > 0) and inside the band."""
    d = np.asarray(metres)
    with np.errstate(invalid="ignore"):
        inside = np.isfinite(d) & (d > 0)
        if band.closer_than is not None:
            inside &= d < band.closer_than
        if band.further_than is not None:
            inside &= d > band.further_than
    return inside


def band_mask(depth: DepthMap, band: BandConfig) -> np.ndarray:
    """(H, W) bool: True where ``depth`` (metres) is valid and inside ``band``; invalid depth is False."""
    return in_band(depth.metres, band)


def fill_outside(image: np.ndarray, mask: np.ndarray, options: MaskConfig = MaskConfig()) -> np.ndarray:
    """A new (H, W, 3) uint8 BGR image: ``image`` where ``mask`` is True, filled where it is False.

    image: (H, W, 3) uint8 BGR, never modified. mask: (H, W) bool.
    options.fill: ``black`` (0), ``grey`` (114, the detector's letterbox pad value) or ``blur`` (Gaussian
    blur of ``image`` with an ``options.blur_ksize`` x ``options.blur_ksize`` kernel, sigma from ksize).
    """
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3):
        raise ValueError(f"fill_outside needs a (H, W, 3) uint8 BGR image, got "
                         f"{getattr(image, 'dtype', type(image).__name__)} {getattr(image, 'shape', '')}")
    mask = np.asarray(mask)
    if mask.dtype != np.bool_ or mask.shape != image.shape[:2]:
        raise ValueError(f"fill_outside needs a (H, W) bool mask matching the image {image.shape[:2]}, "
                         f"got {mask.dtype} {mask.shape}")
    keep = np.ascontiguousarray(mask).view(np.uint8)
    if options.fill == "blur":
        out = cv2.GaussianBlur(image, (options.blur_ksize, options.blur_ksize), 0)
    else:
        out = np.full_like(image, 0 if options.fill == "black" else GREY_FILL)
    return cv2.copyTo(image, keep, out)
