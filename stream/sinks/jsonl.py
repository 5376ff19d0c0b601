"""One JSON line per frame: :class:`JsonlSink` writes the records :func:`frame_record` builds.

JSONL schema
------------
One JSON object per line, one line per processed frame, written by ``JsonlSink`` from ``frame_record``.
Strict JSON: NaN and infinities are written as ``null``. Distances are metres along the camera's
optical axis; times are milliseconds unless the key ends in ``_s``.

.. code-block:: text

    {
      "index": 42,                      # frame index from the source (int, monotonic; gaps = dropped frames)
      "pts_s": 1.4,                     # media time in seconds (float), null for cameras / images
      "source": "data/clip.mp4",        # the source as given, credentials redacted
      "file": "photos/a/img_001.jpg",   # image sources only: the file this line is about, as the glob/folder matched it
      "depth": {"source": "fastdepth-224-nyu",   # what produced the depth map: a model card's name | "ground-plane" | "size-prior"
                "kind": "metric",       # "metric" | "relative+calibrated" | "relative+autoscaled" | "geometric" | "size-prior"
                "unit": "m",
                "state": "indoor, metric",   # how far it can be trusted, in words ("geometric, <profile>" for a ground plane)
                "valid_range_m": [0.5, 10.0],   # [near, far] it can measure (null: not stated); outside = flagged
                "camera": null,         # the camera profile used (its name), null: none
                "selected": "auto: no camera profile, so the bundled depth network",   # why this source
                "map_index": 40,        # the frame the depth map was computed from (depth.every: an earlier one) ...
                "age_frames": 2,        # ... how many frames older than this one it is (0: this frame's own map)
                "age_ms": 200.0},       # ... and how much older in ms (media time, else capture time); null: unknown
                "size_prior": {"focal_px": 548.4, "focal_assumed": true,    # the focal length the size priors used,
                               "focal_from": "assumed: hfov 70 deg",        # whether it was assumed, where it came from,
                               "pitch_deg": 0.0, "references": 3},          # the pitch, the reference boxes in this frame
                "scale": {"fit": "scale", "scale": 9.93, "shift": 0.0,      # networks: the automatic scale (metres =
                          "spread": 0.08, "references": 5.6,                # scale * y + shift, 1/metres for inverse depth),
                          "outliers": 0.05, "state": "calibrated",          # its relative 1-sigma spread, references per
                          "applied": true, "frames": 30},                   # frame, calibrated | uncalibrated, in force?
                "crosscheck": {"verdict": "out of domain", "ratio": 0.1,    # unknown | agrees | out of domain | disagrees;
                               "spread": 0.07, "references": 164,           # source / prior distance over the window
                               "frames": 30}},          # (size_prior, scale, crosscheck: README "Size priors and automatic scale")
      "band": "closer than 2 m",        # the asked distance band in words, null when none was asked
      "detections": [                   # one object per box, possibly empty
        {"box": [x1, y1, x2, y2],       # frame pixels, rounded to 0.1 px, x1 < x2, y1 < y2
         "class_id": 0,                 # index into the detector's class names
         "class": "person",             # class name ("class N" when the id has no name)
         "score": 0.873,                # detector confidence 0..1, 3 decimals
         "depth_m": 1.734,              # the box's distance in metres (3 decimals), null: no valid depth
         "depth_valid_frac": 0.962,     # share of the sampled pixels with valid depth (3 decimals) or null
         "depth_spread_m": 0.211,       # interquartile range of the sampled depths, metres, or null
         "depth_reliable": true,        # false: a distance we cannot stand behind (shown, never trusted) ...
         "depth_note": null,            # ... and why (e.g. "beyond fastdepth-224-nyu's range 0.5-10 m"), null when reliable
         "track_id": 7,                 # the box's track (stable across frames), null when untracked
         "depth_filtered_m": 1.702,     # the track's distance after outlier rejection and smoothing (the band
         "depth_filtered_std_m": 0.04,  #   decision uses it), and its standard deviation; null when untracked
         "speed_mps": -1.21,            # rate of change of the distance, m/s, negative = approaching, and its
         "speed_std_mps": 0.09,         #   standard deviation; null until the track has track.window distances
         "ttc_s": 1.41,                 # time to contact while approaching (else null), s, and its std
         "ttc_std_s": 0.12}
      ],
      "timings_ms": {"depth": 3.12, "detect": 11.95},   # stage -> milliseconds (0.01 ms), in stage order
      "age_ms": 35.27,                  # capture-to-output latency of this frame in ms (0.01), or null
      "backend": "ort-cpu",             # the inference backend that ran the detector (python -m stream writes it)
      "events": [...]                   # while tracking: the track events decided on this frame (entered, left,
    }                                   #   approaching), each as stream/track/records.py describes; often []
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from depthstream.errors import SinkError
from depthstream.types import Result

from .paths import SYNC_S, disk_hint, prepare_output_path


def _jsonable(value: Any, where: str) -> Any:
    """Convert a record to plain JSON types: numpy scalars/arrays to Python, NaN/inf to None."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, np.bool_):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist(), where)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"JSONL record field {where} has type {type(value).__name__}, which has no JSON form; convert it to a number, string, list or dict")


class JsonlSink:
    """Append one strict-JSON line per ``write(record)`` to a file, each line written to the file at once.

    A killed run leaves every finished line valid, and a write that fails (a full disk) takes back what it wrote
    of its line, so the file never ends in half a line. The file is synced to the disk at most every
    :data:`SYNC_S` s (a power loss keeps all but about the last second). Records may hold numpy scalars and arrays;
    NaN and infinities become ``null``. The file is created (truncated if it exists) by ``open()``.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None
        self._closed = False
        self._lines = 0
        self._size = 0
        self._synced_at = 0.0

    @property
    def lines_written(self) -> int:
        return self._lines

    def open(self) -> "JsonlSink":
        """Check the path, create its folders and open the file (idempotent). Raises SinkError."""
        self._open_file()
        return self

    def _open_file(self) -> int:
        if self._closed:
            raise SinkError(f"JSONL {self.path} is already closed; create a new JsonlSink to write another file")
        if self._fd is None:
            self.path = prepare_output_path(self.path, "JSONL")
            try:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            except OSError as exc:
                raise SinkError(f"cannot open JSONL {self.path} for writing: {exc.strerror or exc}{disk_hint(exc, self.path)}") from exc
            self._synced_at = time.monotonic()
        return self._fd

    def write(self, record: Mapping[str, Any]) -> None:
        """Write ``record`` (a dict) as one JSON line."""
        if not isinstance(record, Mapping):
            raise TypeError(f"JsonlSink.write expects a dict record, got {type(record).__name__}")
        line = json.dumps(_jsonable(record, "record"), allow_nan=False, ensure_ascii=False, separators=(",", ":"))
        data = (line + "\n").encode("utf-8")
        fd = self._open_file()
        done = 0
        try:
            while done < len(data):
                done += os.write(fd, data[done:])
        except OSError as exc:
            if done:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, self._size)  # take back the part of the line that was written
            raise SinkError(f"writing line {self._lines + 1} of JSONL {self.path} failed: {exc.strerror or exc}"
                            f"{disk_hint(exc, self.path)}") from exc
        self._size += len(data)
        self._lines += 1
        if time.monotonic() - self._synced_at >= SYNC_S:
            self._sync(fd)

    def _sync(self, fd: int) -> None:
        self._synced_at = time.monotonic()
        with contextlib.suppress(OSError):
            os.fsync(fd)

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._closed:
            return
        self._closed = True
        fd, self._fd = self._fd, None
        if fd is not None:
            self._sync(fd)
            try:
                os.close(fd)
            except OSError as exc:
                raise SinkError(f"closing JSONL {self.path} failed: {exc.strerror or exc}") from exc

    def __enter__(self) -> "JsonlSink":
        return self.open()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _round_or_none(value: float, digits: int) -> float | None:
    v = float(value)
    return round(v, digits) if math.isfinite(v) else None


def _depth_block(result: Result, source: str, kind: str, camera: str | None, selected: str | None) -> dict[str, Any]:
    dm = result.depth
    block: dict[str, Any] = {"source": source, "kind": kind, "unit": "m"}
    block["state"] = dm.state if dm is not None and dm.state else None
    block["valid_range_m"] = list(dm.valid_range_m) if dm is not None and dm.valid_range_m is not None else None
    block["camera"] = camera
    if selected is not None:
        block["selected"] = selected
    age = dm.age(result.frame) if dm is not None else None
    block["map_index"] = dm.frame_index if dm is not None else None
    block["age_frames"] = age[0] if age is not None else None
    block["age_ms"] = _round_or_none(age[1], 2) if age is not None else None
    if dm is not None:
        block.update(dm.details)  # the size priors' focal length, the automatic scale, the cross-check
    return block


def frame_record(
    result: Result,
    class_names: Sequence[str],
    *,
    depth_source: str,
    depth_kind: str,
    band_text: str | None,
    age_ms: float | None,
    extra_timings: dict[str, float] | None = None,
    backend: str | None = None,
    events: Sequence[dict[str, Any]] | None = None,
    camera: str | None = None,
    selected: str | None = None,
    file: str | None = None,
) -> dict[str, Any]:
    """One frame's JSONL record (schema in this module's docstring); plain Python types only.

    extra_timings: stages timed outside ``result.timings_ms`` (e.g. overlay, encode), merged after them.
    backend: the inference backend that ran the detector (``ort-cpu``, ``trt``, ...); the key is left
    out when None. camera: the camera profile's name (None: none); selected: why this depth source.
    The depth map's state and valid range come from ``result.depth``.
    events: the event records of this frame (``stream.track.records.event_record``); the key is left out
    when None (tracking off).
    file: the image file of this frame (image sources); the key is left out when None.
    """
    frame = result.frame
    detections: list[dict[str, Any]] = []
    dets = result.detections
    if dets is not None:
        for i in range(len(dets)):
            cid = int(dets.class_id[i])
            detections.append(
                {
                    "box": [round(float(v), 1) for v in dets.xyxy[i]],
                    "class_id": cid,
                    "class": str(class_names[cid]) if 0 <= cid < len(class_names) else f"class {cid}",
                    "score": _round_or_none(dets.confidence[i], 3),
                    "depth_m": _round_or_none(dets.depth_m[i], 3),
                    "depth_valid_frac": _round_or_none(dets.depth_valid_frac[i], 3),
                    "depth_spread_m": _round_or_none(dets.depth_spread_m[i], 3),
                    "depth_reliable": bool(dets.depth_reliable[i]),
                    "depth_note": str(dets.depth_note[i]) or None,
                    "track_id": int(dets.track_id[i]) if dets.track_id[i] >= 0 else None,
                    "depth_filtered_m": _round_or_none(dets.depth_filtered_m[i], 3),
                    "depth_filtered_std_m": _round_or_none(dets.depth_filtered_std_m[i], 3),
                    "speed_mps": _round_or_none(dets.speed_mps[i], 3),
                    "speed_std_mps": _round_or_none(dets.speed_std_mps[i], 3),
                    "ttc_s": _round_or_none(dets.ttc_s[i], 3),
                    "ttc_std_s": _round_or_none(dets.ttc_std_s[i], 3),
                }
            )
    timings = {**result.timings_ms, **(extra_timings or {})}
    record = {
        "index": int(frame.index),
        "pts_s": None if frame.pts_s is None else _round_or_none(frame.pts_s, 6),
        "source": frame.source_id,
        **({"file": file} if file is not None else {}),
        "depth": _depth_block(result, depth_source, depth_kind, camera, selected),
        "band": band_text,
        "detections": detections,
        "timings_ms": {str(stage): _round_or_none(ms, 2) for stage, ms in timings.items()},
        "age_ms": None if age_ms is None else _round_or_none(age_ms, 2),
    }
    if backend is not None:
        record["backend"] = backend
    if events is not None:
        record["events"] = list(events)
    return record
