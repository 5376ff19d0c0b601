"""Depth at its own rate (config ``depth.every``): on which frames the depth network runs, the others reusing
its last map.

``every: N`` runs the network on every Nth frame the pipeline processes (the first one, then N later, ...);
the frames between get the last map as it is. A map carries the frame it was computed from
(:meth:`depthstream.types.DepthMap.stamped`), so every frame's JSONL line says how old its map is, and the
track filter takes a reused map's distances for what they are: not a new measurement (it predicts across
them, :mod:`stream.track`).

``every: auto`` starts at every frame and lowers the depth rate only while a live source outruns the
pipeline: the share of the source's frames the pipeline dropped (gaps in the frame indices; the ``latest``
policy drops what it cannot process) is measured over windows of :data:`WINDOW_S` seconds of capture time.
A window that dropped more than :data:`DROP_TOLERANCE` of the frames makes N one larger (at most
``every_max``); after :data:`HOLD_WINDOWS` windows in a row without drops N is made one smaller again, to
see whether the pipeline keeps up at the higher depth rate. If that try drops frames, N goes back up and
the next try waits twice as long (up to :data:`MAX_HOLD_WINDOWS` windows), so a pipeline that cannot keep
up at the higher rate does not drop frames every few seconds by trying. On a file (not live) every frame
is processed whatever the rate and the source waits for the pipeline: ``auto`` runs the network on every
frame.

A lower depth rate helps only where depth is what the pipeline waits for: on a CPU whose cores the
depth network shares with the detector, or where the depth network is the slower model. When something else
holds the pipeline back, ``auto`` climbs to ``every_max`` without keeping up; the run's summary shows the
rates it used.
"""

from __future__ import annotations

import collections
import logging

from depthstream.types import DepthMap, Frame

log = logging.getLogger(__name__)

__all__ = ["DepthRate", "WINDOW_S", "DROP_TOLERANCE", "HOLD_WINDOWS", "MAX_HOLD_WINDOWS"]

WINDOW_S = 2.0
"""Seconds of capture time over which ``auto`` measures the share of dropped frames: long enough to hold
tens of frames at a camera's rate, short enough to react within a few seconds."""
DROP_TOLERANCE = 0.05
"""``auto``: a window that dropped more than this share of the source's frames did not keep up. Not zero: a
pipeline that keeps up on average still drops a frame now and then when one frame takes longer than usual."""
HOLD_WINDOWS = 3
"""``auto``: windows in a row without drops before the depth rate is raised again."""
MAX_HOLD_WINDOWS = 48
"""``auto``: the longest wait (windows) between two tries of a higher depth rate after tries that failed."""


class DepthRate:
    """Decides, frame by frame in the depth stage's thread, whether the depth network runs.

    every: an integer >= 1, or ``"auto"``; every_max: the largest N ``auto`` uses; live: the source is live
    (``auto`` adapts only then); stills: the frames are unrelated pictures (every one gets its own map).
    Counters for the run's summary: ``runs`` (network calls), ``reused`` (frames given an older map),
    ``frames_at`` (N -> frames processed while it was in force). window_s: see :data:`WINDOW_S`.
    """

    def __init__(self, every: int | str = 1, every_max: int = 4, *, live: bool = False, stills: bool = False,
                 window_s: float = WINDOW_S) -> None:
        self.window_s = window_s
        self.auto = every == "auto"
        self.adaptive = self.auto and live and not stills
        self.every = 1 if self.auto or stills else int(every)
        self.every_max = max(1, int(every_max))
        self.runs = 0
        self.reused = 0
        self.frames_at: collections.Counter[int] = collections.Counter()
        self._since_run = 0  # frames processed since the network last ran
        self._window: tuple[int, int] | None = None  # (frame index, captured_ns) the current window starts at
        self._window_frames = 0
        self._calm = 0  # windows in a row without drops
        self._hold = HOLD_WINDOWS
        self._trying = False  # N was just lowered: the next window says whether the pipeline keeps up

    def describe(self) -> str:
        """The setting in words for the summary: ``every frame``, ``every 3rd frame``, ``auto (every 1st-4th frame)``."""
        if self.auto:
            return f"auto (live: every frame up to every {_nth(self.every_max)} frame)" if self.adaptive else \
                "auto (every frame: the source is not live)"
        return "every frame" if self.every == 1 else f"every {_nth(self.every)} frame"

    def due(self, frame: Frame, last: DepthMap | None) -> bool:
        """True when the network must run on ``frame``: no map yet, a map of another size, or N frames
        processed since the last run (``auto``: first updates N from the drops, see the module docstring)."""
        if self.adaptive:
            self._observe(frame)
        self.frames_at[self.every] += 1
        if last is None or last.metres.shape != (frame.height, frame.width) or self._since_run + 1 >= self.every:
            self._since_run = 0
            self.runs += 1
            return True
        self._since_run += 1
        self.reused += 1
        return False

    def _observe(self, frame: Frame) -> None:
        if self._window is None:
            self._window, self._window_frames = (frame.index, frame.captured_ns), 0
            return
        self._window_frames += 1
        start_index, start_ns = self._window
        if (frame.captured_ns - start_ns) / 1e9 < self.window_s:
            return
        produced = frame.index - start_index
        dropped = 1.0 - self._window_frames / produced if produced > 0 else 0.0
        self._window, self._window_frames = (frame.index, frame.captured_ns), 0
        if dropped > DROP_TOLERANCE:
            if self._trying:
                self._hold = min(2 * self._hold, MAX_HOLD_WINDOWS)
            self._trying, self._calm = False, 0
            if self.every < self.every_max:
                self.every += 1
                log.debug("depth.every auto: every %s frame (%.0f %% of the frames dropped over %.1f s)",
                          _nth(self.every), 100 * dropped, self.window_s)
            return
        if self._trying:
            self._trying, self._hold = False, HOLD_WINDOWS
        self._calm += 1
        if self.every > 1 and self._calm >= self._hold:
            self.every -= 1
            self._trying, self._calm = True, 0
            log.debug("depth.every auto: trying every %s frame", _nth(self.every))


def _nth(n: int) -> str:
    if n % 100 in (11, 12, 13):
        return f"{n}th"
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"
