"""Which box distances we cannot stand behind, and why: ``Detections.depth_reliable`` and ``depth_note``.

Run right after the per-box depth (:func:`stream.boxdepth.assign_box_depth`), before the band filter: a
flagged distance is kept and shown (greyed on the overlay, ``depth_reliable: false`` with its note in the
JSONL, counted in the summary), never hidden and never trusted. A box gets every note that applies, joined
with ``"; "``; flags already set by an earlier stage are kept.

- no valid depth pixel in the box: ``no depth in the box``;
- fewer than :data:`MIN_VALID_FRAC` of its sampled pixels valid: the statistic describes a minority;
- outside the depth map's ``valid_range_m`` (a network's trained range, a ground plane's farthest depth):
  ``beyond fastdepth-224-nyu's range 0.5-10 m`` / ``nearer than ...``;
- the depth source's ``domain_note`` (a network out of its domain on this camera, e.g. an indoor network on
  a camera whose profile says ``scene: outdoor``): every box;
- the ground-contact statistic (``bottom``) on a box cut by the frame's bottom edge: its foot is not seen,
  so the ground under its lowest visible row is farther than the object.

The notes are fixed texts per run (no per-box numbers), so the summary can count them.
"""

from __future__ import annotations

import numpy as np

from depthstream.types import DepthMap, Detections

__all__ = ["MIN_VALID_FRAC", "flag_boxes", "range_text"]

MIN_VALID_FRAC = 0.5
"""Below this share of valid sampled pixels a box's statistic describes the minority of its pixels."""

BOTTOM_EDGE_PX = 1.0  # a box whose bottom is within this of the frame's bottom edge is cut by it


def range_text(valid_range: tuple[float, float]) -> str:
    near, far = valid_range
    return f"{near:g}-{far:g} m"


def flag_boxes(dets: Detections, depth: DepthMap, *, domain_note: str | None = None, stat: str = "",
               frame_height: int | None = None) -> Detections:
    """``dets`` with ``depth_reliable`` / ``depth_note`` set by the rules of the module docstring.

    dets: boxes with ``depth_m`` and ``depth_valid_frac`` assigned from ``depth``; stat: the box statistic
    used (``bottom`` enables the frame-edge rule); frame_height: the frame's rows (default: the map's).
    """
    n = len(dets)
    if n == 0:
        return dets
    notes: list[list[str]] = [[str(t)] if t else [] for t in dets.depth_note]
    d = dets.depth_m
    with np.errstate(invalid="ignore"):
        none = ~np.isfinite(d)
        few = ~none & (dets.depth_valid_frac < MIN_VALID_FRAC)
        near = far = np.zeros(n, bool)
        if depth.valid_range_m is not None:
            lo, hi = depth.valid_range_m
            near, far = ~none & (d < lo), ~none & (d > hi)
    rows = frame_height if frame_height is not None else depth.metres.shape[0]
    cut = (dets.xyxy[:, 3] >= rows - BOTTOM_EDGE_PX) if stat == "bottom" else np.zeros(n, bool)
    where = f"{depth.source}'s range {range_text(depth.valid_range_m)}" if depth.valid_range_m is not None else ""
    rules = (
        (none, "no depth in the box"),
        (few, f"fewer than {MIN_VALID_FRAC:.0%} of the box's depth pixels valid"),
        (near, f"nearer than {where}"),
        (far, f"beyond {where}"),
        (cut, "box cut by the frame's bottom edge: its ground contact is not seen"),
    )
    for mask, text in rules:
        for i in np.flatnonzero(mask):
            notes[i].append(text)
    if domain_note:
        for i in range(n):
            notes[i].append(domain_note)
    reliable = dets.depth_reliable & np.array([not t for t in notes])
    return dets.with_trust(reliable, np.array(["; ".join(t) for t in notes], dtype=object))
