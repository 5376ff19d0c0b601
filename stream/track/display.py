"""What the overlay writes for a tracked box (a hook for ``stream.overlay``): its track id before the label,
the filtered distance in place of the raw one, and its motion after it while it is known, e.g.
``#7 person 0.87 12.3 m -1.4 m/s ttc 8.6±1.2 s`` (the time to contact only while the approach speed is at least
twice its standard deviation, as for the ``approaching`` event)."""

from __future__ import annotations

import math

import numpy as np

from depthstream.types import Detections

from .events import APPROACH_SIGMAS


def shown_depth(dets: Detections) -> np.ndarray:
    """(N,) metres to print per box: the track's filtered distance, the raw one for an untracked box."""
    return np.where(np.isfinite(dets.depth_filtered_m), dets.depth_filtered_m, dets.depth_m)


def track_affixes(dets: Detections, i: int) -> tuple[str, str]:
    """(prefix, suffix) around box ``i``'s label: ``"#7 "`` and ``" -1.4 m/s ttc 8.6±1.2 s"``."""
    tid = int(dets.track_id[i])
    if tid < 0:
        return "", ""
    suffix = ""
    speed = float(dets.speed_mps[i])
    if math.isfinite(speed):
        suffix = f" {speed:+.1f} m/s"
        ttc, ttc_sd = float(dets.ttc_s[i]), float(dets.ttc_std_s[i])
        # A time to contact only for an approach the filter is sure of (as the approaching event requires).
        if math.isfinite(ttc) and speed + APPROACH_SIGMAS * float(dets.speed_std_mps[i]) < 0:
            suffix += f" ttc {ttc:.1f}" + (f"±{ttc_sd:.1f}" if math.isfinite(ttc_sd) else "") + " s"
    return f"#{tid} ", suffix
