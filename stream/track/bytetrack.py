"""Track ids for boxes: an adapter around ByteTrack as packaged by ``edgefirst-tracker``.

Why that package (checked on PyPI when this was written; see README "Tracks and events"): it is ByteTrack
(two-pass IoU association, a constant-velocity Kalman filter per box, LAPJV assignment) compiled from Rust,
Apache-2.0, released with the EdgeFirst HAL (frequent releases, wheels for Linux x86_64 and aarch64, i.e.
Jetson too), and it requires nothing but numpy. The usual Python trackers could not be used here: supervision
up to 0.29 and Roboflow's ``trackers`` (from 2.2) require ``opencv-python`` (a second OpenCV beside our headless
one), supervision 0.30 keeps ByteTrack only as deprecated and 0.31 removed it, norfair 2.3 pins numpy < 2, motpy
pulls filterpy, boxmot pulls torch.

What this adapter adds to the library, and nothing more:

- our ``Detections`` in, one ``int64`` track id per box out (the library names tracks by UUID strings; ids here
  count up from 1 per run and are never reused);
- **gaps**: the library's Kalman filter moves a box one step per ``update`` call while it expires tracks by
  timestamp. A frame that comes after a gap (frames dropped by the ``latest`` policy, a reconnect) is preceded
  by one empty update per missing frame period, at interpolated times, so a box is predicted as far as it
  really moved and a track lives ``lost_s`` seconds whatever the frame rate. The frame period is the source's
  own (``fps``) or, without one, the median spacing seen so far.
"""

from __future__ import annotations

import math
import statistics
from collections import deque

import numpy as np

from depthstream.errors import ConfigError
from depthstream.schema.config import TrackConfig
from depthstream.types import Detections

_NS = 1_000_000_000
_EMPTY_BOXES = np.zeros((0, 4), np.float32)
_EMPTY_SCORES = np.zeros((0,), np.float32)
_EMPTY_LABELS = np.zeros((0,), np.uint64)


class ByteTrackAdapter:
    """``adapter(dets, time_s) -> (track_ids, ended)``: ids for the boxes of one frame, and the ids of the
    tracks that ended (went unmatched for ``lost_s``) on this frame. Call it once per frame, in time order,
    also with empty Detections (unmatched tracks age and end on those too).

    From the config section ``track``: high_conf: a box at or above this score starts a track and is matched
    first (ByteTrack's first pass); lower boxes only continue tracks. iou: least overlap of a box with a track's
    predicted box for a match. lost_s: a track unmatched this many seconds ends (short misses survive).
    kalman_gain: the library's update factor, the share of each innovation its box filter takes (1 = a standard
    Kalman update; its default 0.25, made for 30 fps, lags a walking person at 10 fps so far that the track is
    lost every few frames). ``fps``: the source's frame rate, None when it has none (then the spacing of the
    frames seen is used)."""

    def __init__(self, options: TrackConfig, *, fps: float | None) -> None:
        try:
            from edgefirst.tracker import ByteTrack
        except ImportError as exc:  # a broken install; the package is a dependency of the product
            raise ConfigError(f"tracking needs the edgefirst-tracker package ({exc}); pip install edgefirst-tracker, or set track.enabled: false") from exc
        self.options = options
        self.fps = fps
        self._tracker = ByteTrack(high_conf=float(options.high_conf), iou=float(options.iou),
                                  update=float(options.kalman_gain), lifespan_ns=int(round(options.lost_s * _NS)))
        self._ids: dict[str, int] = {}
        self._next_id = 1
        self._last_t: float | None = None
        self._origin: float | None = None  # the first frame's time: the library's clock starts there (unsigned ns)
        self._spacings: deque[float] = deque(maxlen=32)
        self.filled_steps = 0  # empty updates made for missing frames so far

    @property
    def tracks_started(self) -> int:
        return self._next_id - 1

    def period_s(self) -> float | None:
        """The frame period used to fill gaps: the source's, else the median spacing seen so far."""
        if self.fps:
            return 1.0 / self.fps
        return statistics.median(self._spacings) if self._spacings else None

    def __call__(self, dets: Detections, time_s: float) -> tuple[np.ndarray, list[int]]:
        if self._last_t is not None and time_s <= self._last_t:
            raise ValueError(f"tracker: frame time {time_s:.6f} s is not after the previous one ({self._last_t:.6f} s); frames must come in time order")
        before = set(self._ids)
        if self._last_t is not None:
            self._fill_gap(self._last_t, time_s)
        # Boxes without a finite, positive area would not match anything; they stay untracked.
        xyxy = dets.xyxy
        ok = np.isfinite(xyxy).all(axis=1) & (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
        ids = np.full(len(dets), -1, np.int64)
        infos = self._tracker.update(
            np.ascontiguousarray(xyxy[ok], np.float32), np.ascontiguousarray(dets.confidence[ok], np.float32),
            dets.class_id[ok].astype(np.uint64), self._ns(time_s))
        for row, info in zip(np.flatnonzero(ok), infos):
            if info is not None:
                ids[row] = self._id(info.uuid)
        alive = {t.info.uuid for t in self._tracker.get_active_tracks()}
        ended = sorted(self._ids.pop(u) for u in before - alive)
        self._last_t = time_s
        return ids, ended

    def _id(self, uuid: str) -> int:
        tid = self._ids.get(uuid)
        if tid is None:
            tid = self._ids[uuid] = self._next_id
            self._next_id += 1
        return tid

    def _fill_gap(self, t0: float, t1: float) -> None:
        period = self.period_s()
        if period is None:
            self._spacings.append(t1 - t0)
            return
        steps = int(round((t1 - t0) / period))
        if steps < 2:
            self._spacings.append(t1 - t0)
            return
        # Past lost_s every unmatched track has ended anyway: no need to predict further than that.
        fill = min(steps - 1, int(math.ceil(self.options.lost_s / period)) + 1)
        for k in range(1, fill + 1):
            self._tracker.update(_EMPTY_BOXES, _EMPTY_SCORES, _EMPTY_LABELS, self._ns(t0 + (t1 - t0) * k / steps))
        self.filled_steps += fill

    def _ns(self, time_s: float) -> int:
        if self._origin is None:
            self._origin = time_s
        return _NS + int(round((time_s - self._origin) * _NS))
