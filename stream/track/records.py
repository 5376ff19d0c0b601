"""The record of one track event: in its frame's JSONL line (``"events": [...]``), and delivered as it is.

.. code-block:: text

    {
      "event": "entered",               # entered | left | approaching
      "reason": "lost",                 # only on a left whose track ended inside the band
      "track_id": 7,                    # as the boxes' track_id in the frame records
      "class_id": 0, "class": "person", # its latest box's class
      "index": 42,                      # the frame on which it was decided
      "pts_s": 4.2,                     # that frame's media time (null for cameras / images)
      "time_s": 4.2,                    # that frame's time on the track clock, seconds
      "depth_m": 1.83,                  # the track's filtered distance, metres, and its standard deviation
      "depth_std_m": 0.05,
      "speed_mps": -1.2,                # rate of change of the distance (negative = approaching) and its std
      "speed_std_mps": 0.1,
      "ttc_s": 1.5,                     # time to contact while approaching, else null; and its std
      "ttc_std_s": 0.2,
      "depth_reliable": true,           # false: the depth source flagged the distance as an estimate
      "band": "closer than 2 m",        # the asked band in words, null when none
      "depth": {"source": "ground-plane", "kind": "geometric", "unit": "m", "filtered": true},
      "source": "demo"
    }

Unknown values are ``null``; metres and seconds are rounded to 3 decimals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from depthstream.types import Frame, TrackEvent


def _num(value: float, digits: int = 3) -> float | None:
    v = float(value)
    return round(v, digits) if math.isfinite(v) else None


def class_name(class_id: int, names: Sequence[str]) -> str:
    return str(names[class_id]) if 0 <= class_id < len(names) else f"class {class_id}"


def event_record(event: TrackEvent, frame: Frame, names: Sequence[str], *, depth_source: str, depth_kind: str,
                 band_text: str | None) -> dict[str, Any]:
    record: dict[str, Any] = {"event": event.kind}
    if event.reason:
        record["reason"] = event.reason
    record.update({
        "track_id": int(event.track_id),
        "class_id": int(event.class_id),
        "class": class_name(event.class_id, names),
        "index": int(event.frame_index),
        "pts_s": None if frame.pts_s is None else _num(frame.pts_s, 6),
        "time_s": _num(event.time_s, 6),
        "depth_m": _num(event.depth_m),
        "depth_std_m": _num(event.depth_std_m),
        "speed_mps": _num(event.speed_mps),
        "speed_std_mps": _num(event.speed_std_mps),
        "ttc_s": _num(event.ttc_s),
        "ttc_std_s": _num(event.ttc_std_s),
        "depth_reliable": bool(event.reliable),
        "band": band_text,
        "depth": {"source": depth_source, "kind": depth_kind, "unit": "m", "filtered": True},
        "source": frame.source_id,
    })
    return record
