"""Tracks, steady distances and approach events: the ``track`` stage.

``TrackStage`` is a plain synchronous callable (Result -> Result) run once per frame, in frame order, right
after each box got its raw distance and before the band filter (``stream.app.make_stages``):

1. ``ByteTrackAdapter`` gives every box a ``track_id`` (``bytetrack.py``: the library and why);
2. one ``DistanceFilter`` per track turns the raw distances into a filtered distance, an approach speed and a
   time to contact, each with its standard deviation (``distance.py``);
3. ``TrackEvents`` decides ``entered`` / ``left`` / ``approaching`` (``events.py``), returned in ``Result.events``.

A frame whose depth map was computed from an earlier frame (``depth.every``: the map is reused) gives its
boxes distances that are not new measurements: each box keeps its raw ``depth_m`` (read off the older map),
but the track filters are not fed it; they predict across such frames from the last fresh distances, and
only a frame's own map corrects them.

All of it runs on the track clock (``clock.py``): seconds from the frames' own times, so frames dropped by the
``latest`` policy are predicted across by the time that really passed. The stage keeps state across frames
(tracks) but starts no thread and does no I/O; delivering events is ``deliver.py`` on the pipeline's
``Dispatcher``.
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from depthstream.schema.config import BandConfig, EventsConfig, TrackConfig
from depthstream.types import Detections, Result, TrackEvent

from .bytetrack import ByteTrackAdapter
from .clock import TrackClock
from .display import shown_depth
from .distance import DistanceFilter, TrackEstimate
from .events import TrackEvents

__all__ = ["TrackStage", "TrackStats", "TrackClock", "band_metres"]


@dataclasses.dataclass
class TrackStats:
    """Counts over a run, for the summary."""

    tracks: int = 0  # track ids handed out
    measured: int = 0  # raw distances offered to the per-track filters
    rejected: int = 0  # of those, rejected as outliers
    filled_steps: int = 0  # empty tracker updates made for frames missing in gaps
    predicted: int = 0  # distances of tracked boxes read off a reused (older) depth map: predicted across, not used


class TrackStage:
    """The stage, from the validated config sections ``track``, ``events`` and ``band``. ``live`` and ``fps``
    describe the source, for the track clock and for filling gaps (``fps``: its frame rate, or the rate a folder
    of images is taken to be a video at)."""

    def __init__(self, track: TrackConfig, events: EventsConfig, band: BandConfig, *, live: bool, fps: float) -> None:
        self.tracker = ByteTrackAdapter(track, fps=fps)
        self.distance = track
        self.events = TrackEvents(band, events)
        self.clock = TrackClock(live=live, fps=fps)
        self.filters: dict[int, DistanceFilter] = {}
        self.stats = TrackStats()

    def use_band(self, band: BandConfig) -> None:
        """The band the events of the next frames are decided on (the browser view may change it while the run
        goes on)."""
        self.events.band = band

    def __call__(self, res: Result) -> Result:
        t0 = time.perf_counter()
        dets = res.detections if res.detections is not None else Detections.empty()
        now = self.clock(res.frame)
        ids, ended = self.tracker(dets, now)
        n = len(dets)
        cols = {name: np.full(n, np.nan, np.float32) for name in
                ("depth_filtered_m", "depth_filtered_std_m", "speed_mps", "speed_std_mps", "ttc_s", "ttc_std_s")}
        events: list[TrackEvent] = []
        index = res.frame.index
        dm = res.depth
        fresh = dm is None or dm.frame_index is None or dm.frame_index == index
        for i in np.flatnonzero(ids >= 0):
            tid = int(ids[i])
            f = self.filters.get(tid)
            if f is None:
                f = self.filters[tid] = DistanceFilter(self.distance)
            raw = float(dets.depth_m[i]) if fresh else math.nan
            if not fresh:
                self.stats.predicted += 1
            est = f.update(now, raw, float(dets.depth_spread_m[i]), bool(dets.depth_reliable[i]))
            if math.isfinite(raw) and raw > 0:
                self.stats.measured += 1
                self.stats.rejected += est.outlier
            _put(cols, i, est)
            events += self.events.update(tid, int(dets.class_id[i]), index, now, est, bool(dets.depth_reliable[i]))
        for tid in ended:
            self.filters.pop(tid, None)
            events += self.events.end(tid, index, now)
        self.stats.tracks = self.tracker.tracks_started
        self.stats.filled_steps = self.tracker.filled_steps
        out = dataclasses.replace(dets, track_id=ids, **cols)
        return res.timed("track", (time.perf_counter() - t0) * 1e3, detections=out, events=res.events + tuple(events))


def _put(cols: dict[str, np.ndarray], i: int, est: TrackEstimate) -> None:
    cols["depth_filtered_m"][i] = est.depth_m
    cols["depth_filtered_std_m"][i] = est.depth_std_m
    cols["speed_mps"][i] = est.speed_mps
    cols["speed_std_mps"][i] = est.speed_std_mps
    cols["ttc_s"][i] = est.ttc_s
    cols["ttc_std_s"][i] = est.ttc_std_s


def band_metres(dets: Detections) -> np.ndarray:
    """The distance the band decision uses: the track's filtered one, the raw one for a box without it (the
    metres the overlay prints)."""
    return shown_depth(dets)
