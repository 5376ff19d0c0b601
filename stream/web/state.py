"""``GET /api/state``: what the page shows beside the video, as JSON, from the newest published frame.

.. code-block:: text

    {
      "state": "running",                 # starting | running | ended | failed
      "detail": "",                       # why it ended or failed
      "source": "rtsp://***@cam/1",       # credentials redacted
      "frame": {"index": 42, "age_ms": 81.2, "fps": 9.8, "dropped": 3},   # null before the first frame
      "layout": "parallel",               # of the frame shown; "wanted" is the one asked for now
      "wanted": {"layout": "parallel", "closer_than": 30.0, "further_than": null},
      "layouts": ["serial", "parallel"],  # the layouts this run may switch to
      "band": {"closer_than": 30.0, "further_than": null, "text": "closer than 30 m"},   # of the frame shown
      "depth": {"source": "ground-plane", "kind": "geometric", "state": "", "unit": "m"},
      "objects": [                        # the boxes in the band on the frame shown, nearest first
        {"class": "person", "class_id": 0, "score": 0.87, "track_id": 7,       # track_id null: untracked
         "distance_m": 12.3, "distance_std_m": 0.4,   # the track's filtered distance (raw for an untracked box)
         "filtered": true, "reliable": true,          # reliable false: the depth source flags it as an estimate
         "speed_mps": -1.2, "speed_std_mps": 0.2,     # null until known; negative speed = approaching
         "ttc_s": 8.6}                  # time to contact, only for an approach the filter is sure of (as the overlay)
      ],
      "events": [...],                    # the last events, newest first (stream/track/records.py)
      "viewers": 2, "dropped_viewers": 0, "encodes": 420   # live video connections now, viewers dropped for
                                          # taking no data, JPEG encodes so far
    }

Numbers that are not known are ``null``. Nothing here holds a secret: the source is the run's ``source_id``,
redacted by the sources, and passed through :func:`redact` again.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from depthstream.redact import redact

from ..control import LiveFrame, RuntimeControl, Settings
from ..track.display import shown_depth
from ..track.events import APPROACH_SIGMAS
from ..track.records import class_name
from .hub import FeedStats, FrameHub


def _num(value: float, digits: int = 2) -> float | None:
    v = float(value)
    return round(v, digits) if math.isfinite(v) else None


def band_json(settings: Settings) -> dict[str, Any]:
    band = settings.band
    return {"closer_than": band.closer_than, "further_than": band.further_than, "text": settings.band_text}


def objects_json(frame: LiveFrame) -> list[dict[str, Any]]:
    """The frame's boxes (in the band: the band filter ran before), nearest first."""
    dets = frame.result.detections
    if dets is None or len(dets) == 0:
        return []
    shown = shown_depth(dets)
    filtered = np.isfinite(dets.depth_filtered_m)
    std = np.where(filtered, dets.depth_filtered_std_m, np.nan)
    with np.errstate(invalid="ignore"):
        sure = np.isfinite(dets.ttc_s) & (dets.speed_mps + APPROACH_SIGMAS * dets.speed_std_mps < 0)
    rows = []
    for i in np.lexsort((-dets.confidence, np.where(np.isfinite(shown), shown, np.inf))):
        tid = int(dets.track_id[i])
        rows.append({
            "class": class_name(int(dets.class_id[i]), frame.names),
            "class_id": int(dets.class_id[i]),
            "score": _num(dets.confidence[i], 3),
            "track_id": tid if tid >= 0 else None,
            "distance_m": _num(shown[i]),
            "distance_std_m": _num(std[i]),
            "filtered": bool(filtered[i]),
            "reliable": bool(dets.depth_reliable[i]),
            "speed_mps": _num(dets.speed_mps[i]),
            "speed_std_mps": _num(dets.speed_std_mps[i]),
            "ttc_s": _num(dets.ttc_s[i], 1) if sure[i] else None,
        })
    return rows


def state_json(hub: FrameHub, control: RuntimeControl, feed: FeedStats) -> dict[str, Any]:
    wanted = control.settings
    seq, frame = hub.newest()
    out: dict[str, Any] = {
        "state": hub.state,
        "detail": redact(hub.detail),
        "source": None,
        "frame": None,
        "layout": wanted.layout,
        "wanted": {"layout": wanted.layout, "closer_than": wanted.band.closer_than,
                   "further_than": wanted.band.further_than},
        "layouts": list(control.layouts),
        "band": band_json(wanted),
        "depth": None,
        "objects": [],
        "events": hub.events(),
        "viewers": feed.viewers,
        "dropped_viewers": feed.dropped_viewers,
        "encodes": feed.encodes,
    }
    if frame is None:
        return out
    res = frame.result
    out["source"] = redact(res.frame.source_id)
    out["frame"] = {"index": int(res.frame.index), "seq": seq,
                    "age_ms": _num((time.monotonic_ns() - res.frame.captured_ns) / 1e6, 1),
                    "fps": None if frame.fps is None else _num(frame.fps, 1), "dropped": int(frame.dropped)}
    out["layout"] = frame.settings.layout
    out["band"] = band_json(frame.settings)
    if res.depth is not None:
        out["depth"] = {"source": res.depth.source, "kind": res.depth.kind, "state": res.depth.state, "unit": "m"}
    out["objects"] = objects_json(frame)
    return out
