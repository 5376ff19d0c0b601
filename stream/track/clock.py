"""The track clock: one time in seconds per frame, increasing, from what the frame carries.

Motion (speeds, times to contact, lost-track timeouts, event durations) is measured on it, never in frames:
with the ``latest`` policy frames are dropped and the survivors are unevenly spaced.

- Media time (``Frame.pts_s``) when the source gives one (files, RTSP): the video's own clock, so a file
  processed faster or slower than real time still has its real speeds.
- Otherwise capture time (``Frame.captured_ns``) for live feeds (cameras), continuing from the last media time
  when a feed that had one skips it on a frame.
- Otherwise (a folder of images) ``index / fps``: the rate the images are taken to be a video at.
"""

from __future__ import annotations

from depthstream.types import Frame

_MIN_STEP_S = 1e-6  # two frames with the same time (a duplicated timestamp) are kept apart by this much


class TrackClock:
    def __init__(self, *, live: bool, fps: float) -> None:
        if not fps > 0:
            raise ValueError(f"TrackClock needs a frame rate > 0 for sources without timestamps, got {fps!r}")
        self.live = live
        self.fps = float(fps)
        self._last: tuple[float, int] | None = None  # (time_s, captured_ns) of the previous frame

    def __call__(self, frame: Frame) -> float:
        if frame.pts_s is not None:
            t = float(frame.pts_s)
        elif self.live and self._last is not None:
            t = self._last[0] + (frame.captured_ns - self._last[1]) / 1e9
        elif self.live:
            t = frame.captured_ns / 1e9
        else:
            t = frame.index / self.fps
        if self._last is not None and t < self._last[0] + _MIN_STEP_S:
            t = self._last[0] + _MIN_STEP_S
        self._last = (t, frame.captured_ns)
        return t
