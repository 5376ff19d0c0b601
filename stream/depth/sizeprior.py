"""Size-prior ranging: each box's distance from its class's typical real size and the camera's focal length.

For an object of real height H metres whose box spans rows v1 (top) to v2 (bottom), a camera with vertical focal
length f pixels, level (pitch 0), sees it at z-depth ``Z = f * H / (v2 - v1)``; the same with the width, the
horizontal focal length and the box's width. Priors (class -> typical size with its spread, sources cited) are in
:mod:`stream.depth.priors`.

Camera. The focal length comes from the camera profile (:meth:`~depthstream.schema.camera.CameraProfile.intrinsics_for`
scales it to the frame's size), else from an **assumed** horizontal field of view (``depth.size_prior.assumed_hfov_deg``),
whose error (``assumed_focal_spread``) is added to every box's spread and stated in the output. A profile with a
``mounting`` gives the camera's pitch: the height then spans ``t(v2) - t(v1)`` of the object's horizontal distance
D, with ``t(v) = (y cos p + sin p) / (cos p - y sin p)`` the tangent of the ray's angle below the horizon at
``y = (v - cy) / f``, so ``D = H / (t(v2) - t(v1))`` and the z-depth of the box's centre row is
``D / (cos p - y_c sin p)`` (pitch 0 gives ``f * H / h`` again). Without a mounting the camera is taken as level.

Per box, in this order:

1. A class without a prior gets no distance (``basis`` ``no prior``).
2. A box edge within ``border_margin_px`` of the frame's edge is **cut**: that dimension gives no distance (a box
   cut at the bottom says nothing of the object's height).
3. The class's primary dimension gives the distance when it is not cut -- and, for a height, when the object is
   seen whole: a person's box must be upright (height / width >= ``person_min_aspect``), and no box's bottom edge
   may end inside another box (:func:`hidden_below`: standing behind a car, a table, another person). Such a
   distance is a **reference** for the scale fit and the cross-check when its own spread is at most
   ``reference_max_spread``.
4. If the primary dimension is cut, the secondary one (a person's width), when the class has one and it is
   whole.
5. A shortened height (a person sitting or bending, or hidden below) only bounds the distance from above: the
   box is shorter than the object, so the height-based distance is too far. The distance is then the **nearest**
   of the estimates there are (occlusion only ever shrinks a box), ``basis`` ``bound``, flagged unreliable.
6. Else none (``cut``).

Spread. A box's own relative spread (1 sigma, about the standard deviation of log Z) combines the prior's spread
with the box's pixel error (``box_error_px`` on each of its two edges: ``sqrt(2) * e / size_px``); a spread
shared by every box of the frame (the assumed focal length's) is kept apart, since averaging many boxes does not
reduce it. A distance whose total spread exceeds ``max_spread`` is flagged unreliable, and so is every distance
under an assumed focal length (it may be off by any factor: the bundled clip's camera has 36 degrees, not 70;
such boxes still serve as references, with the focal length's spread counted). ``depth_spread_m`` in the
output is the interquartile range of the distance, ``Z * (exp(0.674 s) - exp(-0.674 s))`` for total spread s, the
same statistic the depth map's boxes report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from depthstream.schema.camera import CameraProfile
from depthstream.schema.config import SizePriorConfig
from depthstream.types import DepthKind, DepthMap, Detections, Frame

from .base import DepthProvider
from .priors import ClassPrior, prior_for

__all__ = ["CameraGeometry", "BoxRanges", "SizePriorRanger", "SizePriorDepth", "camera_geometry", "height_distance",
           "hidden_below", "IQR_Z",
           "NOTES"]

IQR_Z = 0.6744897501960817
"""The normal distribution's quartiles lie this many standard deviations from its median."""

SOURCE = "size-prior"

NOTES = {
    "no prior": "size prior: none for this class",
    "cut": "size prior: cut by the frame's border",
    "bound": "size prior: box shortened (sitting, bending or hidden below), only a bound",
    "spread": "size prior: too uncertain for this class",
    "assumed": "size prior: focal length assumed (no camera profile with intrinsics)",
}
"""Why a size-prior distance is not reliable (``depth_note``): fixed texts, so the summary can count them."""


@dataclass(frozen=True)
class CameraGeometry:
    """What ranging needs of the camera at one frame size: focal lengths and principal row in pixels, the pitch
    in degrees (positive = looking down), where they came from (``origin``, in words), whether the focal length
    was assumed, and the relative 1-sigma error of the focal length shared by every box (0 from a profile)."""

    width: int
    height: int
    fx: float
    fy: float
    cy: float
    pitch_deg: float
    origin: str
    assumed: bool
    focal_spread: float

    def describe(self) -> str:
        """``f 548 px (assumed: hfov 70 deg)`` or ``f 1195 px (camera profile 'x'), pitch 16.5 deg``."""
        pitch = f", pitch {self.pitch_deg:g} deg" if self.pitch_deg else ""
        return f"f {self.fy:.0f} px ({self.origin}){pitch}"

    def details(self) -> dict:
        """The JSONL's account of the focal length and pitch used."""
        return {"focal_px": round(self.fy, 1), "focal_assumed": self.assumed, "focal_from": self.origin,
                "pitch_deg": self.pitch_deg}


def camera_geometry(width: int, height: int, options: SizePriorConfig,
                    profile: CameraProfile | None = None) -> CameraGeometry:
    """The geometry at a ``width`` x ``height`` frame: from ``profile`` (its intrinsics scaled to the frame, its
    mounting's pitch), else a level camera with the assumed horizontal field of view and the image centre.
    ConfigError (from the profile) for a profile without intrinsics or of another aspect ratio."""
    if profile is not None:
        intr = profile.intrinsics_for(width, height)
        pitch = profile.mounting.pitch_deg if profile.mounting is not None else 0.0
        return CameraGeometry(width, height, intr.fx, intr.fy, intr.cy, pitch, f"camera profile '{profile.name}'",
                              False, 0.0)
    f = (width / 2.0) / math.tan(math.radians(options.assumed_hfov_deg) / 2.0)
    return CameraGeometry(width, height, f, f, (height - 1) / 2.0, 0.0,
                          f"assumed: hfov {options.assumed_hfov_deg:g} deg", True, options.assumed_focal_spread)


@dataclass(frozen=True, eq=False)
class BoxRanges:
    """The size priors' distances of one frame's N boxes (struct of arrays).

    distance_m: (N,) float64 z-depth of the box's centre in metres, NaN where the box got none.
    spread:     (N,) float64 the box's own relative 1-sigma spread (prior + pixel error), NaN where none.
    common_spread: relative 1-sigma spread shared by every box (an assumed focal length), 0 from a profile.
    basis:      (N,) str, what gave the distance: ``height`` or ``width`` (seen whole), ``bound`` (the nearest
                estimate when the height is shortened; flagged), or the reason for none: ``no prior``, ``cut``.
    reference:  (N,) bool, usable as a reference for the scale fit and the cross-check.
    reliable:   (N,) bool, a whole distance whose total spread is at most ``max_spread``, from a known focal length.
    notes:      (N,) str, why a distance is not reliable (fixed texts, :data:`NOTES`; "" when it is).
    geometry:   the camera geometry used.
    """

    distance_m: np.ndarray
    spread: np.ndarray
    common_spread: float
    basis: np.ndarray
    reference: np.ndarray
    reliable: np.ndarray
    notes: np.ndarray
    geometry: CameraGeometry

    def __len__(self) -> int:
        return int(self.distance_m.shape[0])

    @property
    def total_spread(self) -> np.ndarray:
        """(N,) relative 1-sigma spread of each distance, the shared part included."""
        return np.hypot(self.spread, self.common_spread)

    @property
    def spread_m(self) -> np.ndarray:
        """(N,) interquartile range of each distance in metres (NaN where none)."""
        s = self.total_spread
        return self.distance_m * (np.exp(IQR_Z * s) - np.exp(-IQR_Z * s))

    def apply_to(self, dets: Detections) -> Detections:
        """``dets`` with these distances as their depth: depth_m, depth_spread_m (IQR), depth_reliable and
        depth_note; the valid fraction is NaN (no pixels were sampled)."""
        boxed = dets.with_depth(self.distance_m.astype(np.float32), np.full(len(dets), np.nan, np.float32),
                                self.spread_m.astype(np.float32))
        return boxed.with_trust(self.reliable & np.isfinite(self.distance_m), self.notes.copy())


class SizePriorRanger:
    """Distances of a frame's boxes from the size priors (see the module docstring for the rules).

    ``options`` is the validated ``depth.size_prior`` section; ``class_names`` are the detector's names (a box's
    class id indexes them); ``profile`` the camera's profile, None for the assumed field of view. Call with a
    frame's detections and its size; a plain computation, cached per frame size.
    """

    def __init__(self, options: SizePriorConfig, class_names: Sequence[str], profile: CameraProfile | None = None) -> None:
        self.options = options
        self.profile = profile
        self._priors: list[ClassPrior | None] = [prior_for(str(n)) for n in class_names]
        self._geometry: dict[tuple[int, int], CameraGeometry] = {}

    def geometry(self, width: int, height: int) -> CameraGeometry:
        key = (int(width), int(height))
        geo = self._geometry.get(key)
        if geo is None:
            geo = self._geometry[key] = camera_geometry(key[0], key[1], self.options, self.profile)
        return geo

    def __call__(self, dets: Detections, width: int, height: int) -> BoxRanges:
        geo = self.geometry(width, height)
        n = len(dets)
        distance = np.full(n, np.nan)
        spread = np.full(n, np.nan)
        basis = np.full(n, "no prior", dtype=object)
        whole = np.zeros(n, bool)
        boxes = dets.xyxy.astype(np.float64)
        hidden = hidden_below(boxes)
        for i in range(n):
            cid = int(dets.class_id[i])
            prior = self._priors[cid] if 0 <= cid < len(self._priors) else None
            if prior is not None:
                distance[i], spread[i], basis[i], whole[i] = self._one(prior, boxes[i], bool(hidden[i]), geo)
        total = np.hypot(spread, geo.focal_spread)
        with np.errstate(invalid="ignore"):
            too_wide = np.isfinite(distance) & (total > self.options.max_spread)
            usable = whole & np.isfinite(distance) & ~too_wide
            reference = usable & (spread <= self.options.reference_max_spread)
        notes = np.array([NOTES.get(b, "") for b in basis], dtype=object)
        notes[too_wide & (notes == "")] = NOTES["spread"]
        if geo.assumed:
            # A guess every distance inherits: usable as a reference (the spread says how much), never a distance
            # to stand behind.
            for i in np.flatnonzero(np.isfinite(distance)):
                notes[i] = f"{notes[i]}; {NOTES['assumed']}" if notes[i] else NOTES["assumed"]
        return BoxRanges(distance, spread, geo.focal_spread, basis, reference, usable & (not geo.assumed), notes, geo)

    def _one(self, prior: ClassPrior, box: np.ndarray, hidden: bool, geo: CameraGeometry) -> tuple[float, float, str, bool]:
        """(distance, own spread, basis, whole) of one box: ``whole`` when a dimension seen whole gave it."""
        o = self.options
        x1, y1, x2, y2 = box
        w_px, h_px = x2 - x1, y2 - y1
        if not (w_px > 0 and h_px > 0):
            return math.nan, math.nan, "cut", False
        m = o.border_margin_px
        cut = {"height": y1 <= m or y2 >= geo.height - m, "width": x1 <= m or x2 >= geo.width - m}
        estimates: dict[str, tuple[float, float]] = {}
        for dim, size_px in (("height", h_px), ("width", w_px)):
            p = prior.prior(dim)
            if p is None or cut[dim]:
                continue
            z = height_distance(p.metres, y1, y2, geo) if dim == "height" else geo.fx * p.metres / w_px
            if z > 0:
                estimates[dim] = (z, math.hypot(p.spread, math.sqrt(2) * o.box_error_px / size_px))
        # The height is shortened when the box is not upright (a person sitting or bending) or its bottom is
        # hidden behind another box: it then only bounds the distance from above.
        shortened = hidden or (prior.upright and h_px < o.person_min_aspect * w_px)
        primary = estimates.get(prior.primary)
        if primary is not None and not (prior.primary == "height" and shortened):
            return primary[0], primary[1], prior.primary, True
        other = estimates.get("width" if prior.primary == "height" else "height")
        if primary is None and other is not None and not (prior.primary == "width" and shortened):
            return other[0], other[1], "width" if prior.primary == "height" else "height", True
        found = [e for e in (primary, other) if e is not None]
        if not found:
            return math.nan, math.nan, "cut", False
        nearest = min(found)
        return nearest[0], nearest[1], "bound", False


def hidden_below(boxes: np.ndarray) -> np.ndarray:
    """(N,) bool: the box's bottom edge ends inside another box, above that box's bottom (by more than 5 % of its
    height), under the box's centre column -- the object may stand behind it, its lower part hidden.
    ``boxes``: (N, 4) xyxy. A person behind a car, a table or another person is caught; one in front of them
    is not (their feet are lower than the other box's bottom)."""
    n = len(boxes)
    if n < 2:
        return np.zeros(n, bool)
    cx = (boxes[:, 0] + boxes[:, 2]) / 2.0
    bottom = boxes[:, 3]
    x1, y1, x2, y2 = (boxes[:, k][None, :] for k in range(4))
    inside = (x1 < cx[:, None]) & (cx[:, None] < x2) & (y1 < bottom[:, None]) & (bottom[:, None] < y2 - 0.05 * (y2 - y1))
    np.fill_diagonal(inside, False)
    return inside.any(axis=1)


def height_distance(size_m: float, y1: float, y2: float, geo: CameraGeometry) -> float:
    """z-depth of the box's centre for an upright object ``size_m`` tall spanning rows y1..y2 (module docstring);
    NaN when the rows span no angle."""
    p = math.radians(geo.pitch_deg)
    cos_p, sin_p = math.cos(p), math.sin(p)

    def tan_below(v: float) -> float:
        y = (v - geo.cy) / geo.fy
        return (y * cos_p + sin_p) / (cos_p - y * sin_p)

    span = tan_below(y2) - tan_below(y1)
    if not span > 0:
        return math.nan
    yc = ((y1 + y2) / 2.0 - geo.cy) / geo.fy
    return (size_m / span) / (cos_p - yc * sin_p)


class SizePriorDepth(DepthProvider):
    """``depth.source: size-prior``: distances per box from the size priors, no depth map (parallel layout only).

    Each frame's DepthMap has no valid pixel (NaN everywhere, one shared read-only value: no memory per frame),
    kind ``size-prior``, a ``state`` for the HUD naming the focal length used and ``details`` for the JSONL. The
    boxes get their distances after detection (:meth:`SizePriorRanger.__call__`, applied by the pipeline's last
    stage).
    """

    source = SOURCE
    kind: DepthKind = "size-prior"
    reads_pixels = False  # no map to reuse: depth.every does not apply

    def __init__(self, options: SizePriorConfig, profile: CameraProfile | None = None) -> None:
        self.options = options
        self.profile = profile
        self._nan: dict[tuple[int, int], np.ndarray] = {}
        self._geometry: dict[tuple[int, int], CameraGeometry] = {}

    def geometry(self, width: int, height: int) -> CameraGeometry:
        key = (width, height)
        if key not in self._geometry:
            self._geometry[key] = camera_geometry(width, height, self.options, self.profile)
        return self._geometry[key]

    def __call__(self, frame: Frame) -> DepthMap:
        geo = self.geometry(frame.width, frame.height)
        size = (frame.height, frame.width)
        if size not in self._nan:
            self._nan[size] = np.broadcast_to(np.float32(np.nan), size)  # read-only, one float for every pixel
        return DepthMap(self._nan[size], self.source, self.kind,
                        state=f"per box from class sizes, {geo.describe()}", details={"size_prior": geo.details()})
