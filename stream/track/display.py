"""What the overlay writes for a tracked box (a hook for ``stream.overlay``'s ``Overlay.label_texts``): its
track id before the label, the filtered distance in place of the raw one, and, while the filter is sure the
object approaches, its speed and time to contact after it, e.g. ``#7 person 12.3 m -1.4 m/s ttc 8.6±1.2 s``
(sure: the approach speed is at least twice its standard deviation, as for the ``approaching`` event). A speed
the filter cannot tell from standing still is left out of the label (the JSONL has it): it would only lengthen
every label, and longer labels cover more of the picture (``python -m bench overlay``)."""

from __future__ import annotations

import math

import numpy as np

from depthstream.types import Detections

from .events import APPROACH_SIGMAS


def shown_depth(dets: Detections) -> np.ndarray:
    """(N,) metres to print per box: the track's filtered distance, the raw one for an untracked box."""
    return np.where(np.isfinite(dets.depth_filtered_m), dets.depth_filtered_m, dets.depth_m)


def track_affixes(dets: Detections, i: int) -> tuple[str, str]:
    """(prefix, suffix) around box ``i``'s label: ``"#7 "`` and ``" -1.4 m/s ttc 8.6±1.2 s"`` (or ``""``)."""
    tid = int(dets.track_id[i])
    if tid < 0:
        return "", ""
    suffix = ""
    speed, ttc, ttc_sd = float(dets.speed_mps[i]), float(dets.ttc_s[i]), float(dets.ttc_std_s[i])
    # Motion only for an approach the filter is sure of (as the approaching event requires).
    if math.isfinite(speed) and math.isfinite(ttc) and speed + APPROACH_SIGMAS * float(dets.speed_std_mps[i]) < 0:
        suffix = f" {speed:+.1f} m/s ttc {ttc:.1f}" + (f"±{ttc_sd:.1f}" if math.isfinite(ttc_sd) else "") + " s"
    return f"#{tid} ", suffix
