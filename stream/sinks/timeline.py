"""When each frame written to the MP4 is shown: the video plays at the speed the scene happened.

- a **file**: its media time (the container's presentation times), so a video with a variable frame rate keeps it;
- a **live feed**: the capture time (``Frame.captured_ns``), so dropped frames and outages take the time they took
  (the last frame stays on screen through an outage) instead of vanishing;
- **pictures** (a folder of images, no time at all): one every 1 / ``fps`` s.

Times count from the first frame written and strictly increase: a frame whose time is not after the previous one
(a container whose times go backwards, a frame without one) is shown one nominal frame (1 / ``fps``) after it,
and the next frame with a good time puts the video back on the source's clock.
"""

from __future__ import annotations

import logging
from fractions import Fraction

from depthstream.types import Frame

log = logging.getLogger(__name__)


class Timeline:
    def __init__(self, *, live: bool, fps: Fraction | float, stills: bool = False) -> None:
        if not fps or fps <= 0:
            raise ValueError(f"Timeline needs a positive nominal frame rate, got {fps!r}")
        self.live, self.stills = live, stills
        self.step_s = float(1 / Fraction(fps).limit_denominator(1001))
        self.repaired = 0  # frames whose time was not after the previous one's
        self._origin: float | None = None
        self._last: float | None = None

    def clock(self, frame: Frame) -> float | None:
        """The frame's time on the source's clock, in seconds (None: it has none)."""
        if self.live:
            return frame.captured_ns / 1e9
        if self.stills:
            return None
        return frame.pts_s

    def seconds(self, frame: Frame) -> float:
        """When ``frame`` is shown, in seconds after the first frame given here."""
        t = self.clock(frame)
        if t is not None and self._origin is None:
            self._origin = t - (0.0 if self._last is None else self._last + self.step_s)
        shown = None if t is None else t - self._origin
        if self._last is None and shown is None:
            shown = 0.0
        elif shown is None or (self._last is not None and shown <= self._last):
            if t is not None:
                self.repaired += 1
                if self.repaired == 1:
                    log.info("frame %d's media time %.3f s is not after the previous frame's: it is shown one frame "
                             "later (the container's times go backwards; later frames follow its clock again)",
                             frame.index, t)
            shown = self._last + self.step_s
        self._last = shown
        return shown
