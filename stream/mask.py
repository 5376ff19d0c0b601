"""The distance band the user asks for (``--closer-than`` / ``--further-than``, metres) and masking by it.

Serial layout: depth map -> :func:`band_mask` ((H, W) bool, True inside the band) -> :func:`fill_outside`
(pixels outside the band blanked) -> the detector sees only what lies in the band. Invalid depth (NaN,
<= 0) is always outside the band: nothing says it is inside.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from depthstream.errors import ConfigError
from depthstream.types import DepthMap

__all__ = ["DistanceBand", "band_mask", "fill_outside", "FILL_MODES", "GREY_FILL"]

FILL_MODES = ("black", "grey", "blur")
GREY_FILL = 114
"""The grey of the detector's letterbox padding, so a blanked region looks like padding to it."""


def _fmt(value: object) -> str:
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
        return f"{float(value):g}"
    return repr(value)


def _check_bound(value: object, flag: str) -> float | None:
    if value is None:
        return None
    ok = (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
          and math.isfinite(float(value)) and float(value) > 0)
    if not ok:
        raise ConfigError(f"{flag} must be a positive number of metres, got {_fmt(value)}")
    return float(value)


@dataclass(frozen=True)
class DistanceBand:
    """Distances kept, in metres along the optical axis: ``further_than < d < closer_than``.

    closer_than:  upper bound in metres (``--closer-than``), finite > 0, or None for no upper bound.
    further_than: lower bound in metres (``--further-than``), finite > 0, or None for no lower bound.
    Both given: ``further_than < closer_than``. Values are stored as float.
    """

    closer_than: float | None = None
    further_than: float | None = None

    def __post_init__(self) -> None:
        closer = _check_bound(self.closer_than, "--closer-than")
        further = _check_bound(self.further_than, "--further-than")
        if closer is not None and further is not None and not further < closer:
            raise ConfigError(f"--further-than {further:g} and --closer-than {closer:g} leave no distance: the band "
                              f"is further than {further:g} m and closer than {closer:g} m")
        object.__setattr__(self, "closer_than", closer)
        object.__setattr__(self, "further_than", further)

    @property
    def active(self) -> bool:
        """True when at least one bound is set."""
        return self.closer_than is not None or self.further_than is not None

    def contains(self, metres: np.ndarray) -> np.ndarray:
        """Bool array of ``metres``' shape: True where the depth is valid (finite, > 0) and inside the band."""
        d = np.asarray(metres)
        with np.errstate(invalid="ignore"):
            inside = np.isfinite(d) & (d > 0)
            if self.closer_than is not None:
                inside &= d < self.closer_than
            if self.further_than is not None:
                inside &= d > self.further_than
        return inside

    def describe(self) -> str:
        """Human-readable band, e.g. ``closer than 2 m``, ``between 3 m and 8 m``, ``all distances``."""
        if self.closer_than is not None and self.further_than is not None:
            return f"between {self.further_than:g} m and {self.closer_than:g} m"
        if self.closer_than is not None:
            return f"closer than {self.closer_than:g} m"
        if self.further_than is not None:
            return f"further than {self.further_than:g} m"
        return "all distances"


def band_mask(depth: DepthMap, band: DistanceBand) -> np.ndarray:
    """(H, W) bool: True where ``depth`` (metres) is valid and inside ``band``; invalid depth is False."""
    return band.contains(depth.metres)


def fill_outside(image: np.ndarray, mask: np.ndarray, mode: str = "grey", blur_ksize: int = 31) -> np.ndarray:
    """A new (H, W, 3) uint8 BGR image: ``image`` where ``mask`` is True, filled where it is False.

    image: (H, W, 3) uint8 BGR, never modified. mask: (H, W) bool.
    mode (config key ``mask.fill``): ``black`` (0), ``grey`` (114, the detector's letterbox pad value) or
    ``blur`` (Gaussian blur of ``image`` with an odd ``blur_ksize`` x ``blur_ksize`` kernel, sigma from ksize).
    """
    if mode not in FILL_MODES:
        raise ConfigError(f"mask.fill must be one of {'|'.join(FILL_MODES)}, got {mode!r}")
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3):
        raise ValueError(f"fill_outside needs a (H, W, 3) uint8 BGR image, got "
                         f"{getattr(image, 'dtype', type(image).__name__)} {getattr(image, 'shape', '')}")
    mask = np.asarray(mask)
    if mask.dtype != np.bool_ or mask.shape != image.shape[:2]:
        raise ValueError(f"fill_outside needs a (H, W) bool mask matching the image {image.shape[:2]}, "
                         f"got {mask.dtype} {mask.shape}")
    keep = np.ascontiguousarray(mask).view(np.uint8)
    if mode == "blur":
        if isinstance(blur_ksize, bool) or not isinstance(blur_ksize, (int, np.integer)) or blur_ksize < 1 \
                or blur_ksize % 2 == 0:
            raise ConfigError(f"mask.blur_ksize must be an odd positive integer of pixels (e.g. 31), got {blur_ksize!r}")
        out = cv2.GaussianBlur(image, (int(blur_ksize), int(blur_ksize)), 0)
    else:
        out = np.full_like(image, 0 if mode == "black" else GREY_FILL)
    return cv2.copyTo(image, keep, out)
