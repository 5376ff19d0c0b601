"""Masking by the distance band the user asks for (``--closer-than`` / ``--further-than``, metres).

Serial layout: depth map -> :func:`band_mask` ((H, W) bool, True inside the band) -> :func:`serial_mask` (grown
by the size of an object at the band's edge) -> :func:`fill_outside` (pixels outside it blurred or blanked) ->
the detector sees what lies in the band, with its objects whole. Invalid depth (NaN,
<= 0) is always outside the band: nothing says it is inside. The band and the fill are the validated
config sections ``band`` (:class:`~depthstream.schema.config.BandConfig`) and ``mask``.
"""

from __future__ import annotations

import cv2
import numpy as np

from depthstream.schema.config import BandConfig, MaskConfig
from depthstream.types import DepthMap

from .depth.sizeprior import camera_geometry

__all__ = ["in_band", "band_mask", "grow_mask", "object_height_px", "fill_outside", "GREY_FILL"]

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


def object_height_px(height_m: float, distance_m: float, fy: float) -> float:
    """Pixels an upright object ``height_m`` tall spans at ``distance_m`` under a vertical focal length ``fy``."""
    return fy * height_m / distance_m


def grow_mask(mask: np.ndarray, up_px: int, side_px: int, down_px: int) -> np.ndarray:
    """(H, W) bool ``mask`` grown by ``up_px`` rows upward, ``down_px`` downward and ``side_px`` columns each way
    (a rectangular dilation, OpenCV's separable one)."""
    up, side, down = max(0, int(up_px)), max(0, int(side_px)), max(0, int(down_px))
    if up == side == down == 0:
        return mask
    kernel = np.ones((up + down + 1, 2 * side + 1), np.uint8)
    # dst(y) = max over kernel rows i of src(y + i - down): rows up to `up` below a pixel lift it, `down` above lower it
    grown = cv2.dilate(np.ascontiguousarray(mask).view(np.uint8), kernel, anchor=(side, down))
    return grown.astype(bool)


def fill_outside(image: np.ndarray, mask: np.ndarray, options: MaskConfig = MaskConfig()) -> np.ndarray:
    """A new (H, W, 3) uint8 BGR image: ``image`` where ``mask`` is True, filled where it is False.

    image: (H, W, 3) uint8 BGR, never modified. mask: (H, W) bool.
    options.fill: ``black`` (0), ``grey`` (114, the detector's letterbox pad value) or ``blur`` (Gaussian
    blur of ``image`` with an ``options.blur_ksize`` x ``options.blur_ksize`` kernel, sigma from ksize).

    A kernel of :data:`HALF_RES_KSIZE` or more is applied at half the resolution: the image halved (area
    average), blurred with half the kernel, doubled back (bilinear). What it hides looks the same -- on the
    bundled clip's frames the pixels differ from the full-resolution blur by 0.4 grey levels on average --
    for a quarter of the work (31 px on 768x576: 1.1 ms instead of 4.8 on one thread of this 2-core CPU).
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
        out = _blur(image, options.blur_ksize)
    else:
        out = np.full_like(image, 0 if options.fill == "black" else GREY_FILL)
    return cv2.copyTo(image, keep, out)


HALF_RES_KSIZE = 9
"""fill_outside: blur kernels from this size on are applied at half the resolution (smaller ones as they are)."""


def _blur(image: np.ndarray, ksize: int) -> np.ndarray:
    h, w = image.shape[:2]
    if ksize < HALF_RES_KSIZE or min(h, w) < 2 * ksize:
        return cv2.GaussianBlur(image, (ksize, ksize), 0)
    half = cv2.resize(image, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA)
    k = (ksize // 2) | 1
    return cv2.resize(cv2.GaussianBlur(half, (k, k), 0), (w, h), interpolation=cv2.INTER_LINEAR)


def _focal(depth, width: int, height: int, cfg) -> float:
    """The vertical focal length of the frames a depth provider sees: its camera profile's intrinsics scaled to the
    frame (a ground plane always has them), else the one the size priors assume (``depth.size_prior.assumed_hfov_deg``):
    one assumed camera for the whole product."""
    profile = getattr(depth, "profile", None) or getattr(depth, "camera", None)
    if profile is not None and profile.intrinsics is None:
        profile = None
    return camera_geometry(width, height, cfg.depth.size_prior, profile).fy


def serial_mask(mask: np.ndarray, cfg, depth, band: BandConfig | None = None) -> np.ndarray:
    """The band mask the serial layout blanks by (config ``mask``, validated): ``mask`` grown by the size of an
    object ``grow_height_m`` tall at the band's edge (``closer_than``, else ``further_than``), whose height in
    pixels is ``fy * grow_height_m / edge`` with the camera's focal length (:func:`_focal`):

    - every way by ``grow_around`` of that height (a depth map's edges are blurred: the rim of an object in the
      band falls outside it);
    - with a ground plane (kind ``geometric``), upward by the whole height: the map is the ground's, and an
      upright object standing on ground in the band rises over ground that lies farther, outside it.

    Measured (``python -m bench layouts-agree``, README 'Layouts'): without the growth the serial layout loses
    objects cut by the mask and invents others from the mask's shapes. ``band``: the frame's band when it differs
    from the config's (changed while the run goes on), else ``cfg.band``.
    """
    m = cfg.mask
    band = band or cfg.band
    edge = band.closer_than if band.closer_than is not None else band.further_than
    if m.grow_height_m <= 0 or edge is None:
        return mask
    h, w = mask.shape
    px = object_height_px(m.grow_height_m, edge, _focal(depth, w, h, cfg))
    around = round(m.grow_around * px)
    up = round(px) if getattr(depth, "kind", "") == "geometric" else around
    return grow_mask(mask, up, around, around)
