"""Track events: ``entered`` / ``left`` the distance band and ``approaching``, each decided once.

Per track, on its filtered distance (never the raw one):

- ``entered``: the distance has been inside the band for ``min_duration_s``.
- ``left``: after ``entered``, the distance has been outside the band *by more than* ``margin_m`` for
  ``min_duration_s`` (hysteresis: a distance wobbling around the band's edge gives no events), or the track
  ended while inside (``reason: lost``: not seen for the tracker's ``lost_s``).
- ``approaching``: the time to contact has been below ``approach_ttc_s`` for ``min_duration_s``, with an
  approach speed at least twice its own standard deviation; once per approach (again only after it stopped
  for ``min_duration_s``). With or without a band.

Durations are measured on the track clock (frame times), so dropped frames do not stretch or shorten them.
"""

from __future__ import annotations

import math

from depthstream.schema.config import BandConfig, EventsConfig
from depthstream.types import TrackEvent

from ..mask import in_band
from .distance import TrackEstimate

APPROACH_SIGMAS = 2.0  # an approach counts when its speed is at least this many standard deviations below 0


class _Switch:
    """A boolean that flips only after the opposite condition held for ``hold_s`` seconds."""

    def __init__(self) -> None:
        self.on = False
        self.since: float | None = None

    def step(self, time_s: float, want_on: bool | None, hold_s: float) -> bool:
        """``want_on``: the condition now (None: no evidence either way, keep waiting). True when it flipped."""
        if want_on is None:
            return False
        if want_on == self.on:
            self.since = None
            return False
        if self.since is None:
            self.since = time_s
        if time_s - self.since >= hold_s:
            self.on, self.since = want_on, None
            return True
        return False


class TrackEvents:
    """``events.update(track_id, class_id, frame_index, time_s, estimate, reliable)`` per tracked box and
    ``events.end(track_id, ...)`` when a track ends; both return the events decided (a list, often empty).
    ``band`` and ``options`` are the validated config sections ``band`` and ``events``."""

    def __init__(self, band: BandConfig, options: EventsConfig) -> None:
        self.band = band
        self.o = options
        self._band: dict[int, _Switch] = {}
        self._approach: dict[int, _Switch] = {}
        self._last: dict[int, tuple[int, TrackEstimate, bool]] = {}  # class, estimate, reliable

    def _inside(self, d: float) -> bool | None:
        if not math.isfinite(d):
            return None
        return bool(in_band(d, self.band))

    def _beyond_margin(self, d: float) -> bool | None:
        if not math.isfinite(d):
            return None
        b, m = self.band, self.o.margin_m
        return (b.closer_than is not None and d > b.closer_than + m) or (b.further_than is not None and d < b.further_than - m)

    def update(self, track_id: int, class_id: int, frame_index: int, time_s: float, est: TrackEstimate, reliable: bool) -> list[TrackEvent]:
        out: list[TrackEvent] = []
        self._last[track_id] = (class_id, est, reliable)
        hold = self.o.min_duration_s
        if self.band.active:
            sw = self._band.setdefault(track_id, _Switch())
            want = (not self._beyond_margin(est.depth_m)) if sw.on else self._inside(est.depth_m)
            if math.isnan(est.depth_m):
                want = None
            if sw.step(time_s, want, hold):
                out.append(self._event("entered" if sw.on else "left", track_id, class_id, frame_index, time_s, est, reliable))
        sw = self._approach.setdefault(track_id, _Switch())
        approaching = None
        if math.isfinite(est.speed_mps):
            approaching = (math.isfinite(est.ttc_s) and est.ttc_s < self.o.approach_ttc_s
                           and est.speed_mps + APPROACH_SIGMAS * est.speed_std_mps < 0)
        if sw.step(time_s, approaching, hold) and sw.on:
            out.append(self._event("approaching", track_id, class_id, frame_index, time_s, est, reliable))
        return out

    def end(self, track_id: int, frame_index: int, time_s: float) -> list[TrackEvent]:
        """The track ended: ``left`` (reason ``lost``) when it was inside the band; its state is dropped."""
        sw = self._band.pop(track_id, None)
        self._approach.pop(track_id, None)
        last = self._last.pop(track_id, None)
        if sw is None or not sw.on or last is None:
            return []
        class_id, est, reliable = last
        return [self._event("left", track_id, class_id, frame_index, time_s, est, reliable, reason="lost")]

    @staticmethod
    def _event(kind, track_id, class_id, frame_index, time_s, est: TrackEstimate, reliable, reason: str = "") -> TrackEvent:
        return TrackEvent(kind, int(track_id), int(class_id), int(frame_index), float(time_s), est.depth_m, est.depth_std_m,
                          est.speed_mps, est.speed_std_mps, est.ttc_s, est.ttc_std_s, bool(reliable), reason)
