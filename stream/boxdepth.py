"""Per-box depth: one distance in metres for each detected box, from the frame's depth map.

Stage order: depth map (H, W) float32 metres + detections (boxes in frame pixels) -> for each box:
clip to the map -> pick the sampled pixels by the statistic -> drop invalid pixels (NaN, <= 0) -> the
statistic over the valid ones. Results go into ``Detections.with_depth``:

- ``depth_m``          (N,) float32 metres along the optical axis (NaN: no valid pixel, or degenerate box);
- ``depth_valid_frac`` (N,) float32 in [0, 1], valid pixels / sampled pixels (0 when none);
- ``depth_spread_m``   (N,) float32 metres, interquartile range (p75 - p25) of the valid sampled depths.

Statistics (config key ``depth.box_stat``, validated there; ``auto`` is resolved by the caller):

- ``center_mean``: mean over the central ``roi`` fraction of the box's width and height (``roi`` 0.4:
  the central 40 % x 40 %, at least 1 pixel), as in the report this product comes from;
- ``median``: median over the whole box;
- ``percentile:P``: P-th percentile over the whole box (0 <= P <= 100; a low P is the nearest surface);
- ``bottom``: median of the ground-contact strip, the bottom ``max(1, round(5 % of the box height))`` rows
  across the central ``roi`` fraction of the width -- the statistic for ground-plane depth, where the
  pixels of an upright object show the ground far behind it and only its foot touches the ground.

Pixel convention: pixel (row i, column j) covers [j, j+1) x [i, i+1) and is sampled when its centre
lies inside the (clipped) box; a box of positive area smaller than a pixel samples the pixel under its centre.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from depthstream.types import DepthMap, Detections

__all__ = ["BoxStat", "parse_box_stat", "assign_box_depth"]

BOTTOM_STRIP_FRAC = 0.05


class BoxStat(NamedTuple):
    """A ``depth.box_stat``: ``name`` in center_mean / median / percentile / bottom; ``percentile`` is P in
    [0, 100] for ``percentile:P``, else None."""

    name: str
    percentile: float | None = None


def parse_box_stat(spec: str) -> BoxStat:
    """``center_mean`` | ``median`` | ``bottom`` | ``percentile:P`` (validated by the config schema) -> BoxStat."""
    name, _, p = spec.strip().partition(":")
    return BoxStat(name, float(p) if name == "percentile" else None)


def _pixel_range(lo: float, hi: float) -> tuple[int, int]:
    """Half-open pixel index range [a, b) of the pixels whose centres lie in [lo, hi); at least one pixel."""
    a = math.ceil(lo - 0.5)
    b = math.ceil(hi - 0.5)
    if b <= a:
        a = math.floor((lo + hi) / 2.0)
        b = a + 1
    return a, b


def _central(lo: float, hi: float, frac: float) -> tuple[int, int]:
    mid = (lo + hi) / 2.0
    half = (hi - lo) * frac / 2.0
    return _pixel_range(mid - half, mid + half)


def _sample(metres: np.ndarray, box: np.ndarray, stat: BoxStat, roi: float) -> np.ndarray | None:
    """The sampled depth pixels of one box, or None when the box has no area inside the map."""
    h, w = metres.shape
    x1, y1, x2, y2 = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        return None
    x1, x2 = min(max(x1, 0.0), w), min(max(x2, 0.0), w)
    y1, y2 = min(max(y1, 0.0), h), min(max(y2, 0.0), h)
    if x2 <= x1 or y2 <= y1:
        return None
    if stat.name == "center_mean":
        c0, c1 = _central(x1, x2, roi)
        r0, r1 = _central(y1, y2, roi)
    elif stat.name == "bottom":
        c0, c1 = _central(x1, x2, roi)
        r0, r1 = _pixel_range(y1, y2)
        rows = max(1, math.floor(BOTTOM_STRIP_FRAC * (r1 - r0) + 0.5))
        r0 = r1 - rows
    else:
        c0, c1 = _pixel_range(x1, x2)
        r0, r1 = _pixel_range(y1, y2)
    return metres[max(r0, 0):min(r1, h), max(c0, 0):min(c1, w)]


def assign_box_depth(dets: Detections, depth: DepthMap, stat: str, roi: float = 0.4) -> Detections:
    """``dets`` with ``depth_m``, ``depth_valid_frac`` and ``depth_spread_m`` filled from ``depth``.

    dets:  N boxes, xyxy float32 in the pixels of the frame ``depth`` was computed for.
    depth: (H, W) float32 metres, NaN / <= 0 = invalid.
    stat:  ``center_mean`` | ``median`` | ``percentile:P`` | ``bottom`` (see the module docstring).
    roi:   (config key ``depth.roi``) central fraction (0, 1] of the box's width and height sampled by
           ``center_mean`` (and of the width by ``bottom``).
    Both come validated from the config.
    Returns a new Detections; (N,) float32 columns, NaN / 0 / NaN for a box with no valid pixel.
    """
    parsed = parse_box_stat(stat)
    n = len(dets)
    depth_m = np.full((n,), np.nan, dtype=np.float32)
    valid_frac = np.zeros((n,), dtype=np.float32)
    spread_m = np.full((n,), np.nan, dtype=np.float32)
    metres = depth.metres
    for i in range(n):
        patch = _sample(metres, dets.xyxy[i], parsed, float(roi))
        if patch is None or patch.size == 0:
            continue
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(patch) & (patch > 0)
        values = patch[ok].astype(np.float64)
        valid_frac[i] = values.size / patch.size
        if values.size == 0:
            continue
        if parsed.name == "center_mean":
            p25, p75 = np.percentile(values, (25.0, 75.0))
            depth_m[i] = values.mean()
        else:
            q = parsed.percentile if parsed.name == "percentile" else 50.0
            p25, p75, stat_value = np.percentile(values, (25.0, 75.0, q))
            depth_m[i] = stat_value
        spread_m[i] = p75 - p25
    return dets.with_depth(depth_m, valid_frac, spread_m)
