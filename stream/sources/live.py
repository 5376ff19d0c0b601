"""Live feeds that come back: :class:`ReconnectingSource` reopens a lost camera or stream with backoff."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from fractions import Fraction

from depthstream.errors import SourceError
from depthstream.schema.config import SourceConfig
from depthstream.types import Frame

from .base import Outage, Source, redact

log = logging.getLogger("stream.sources")


class ReconnectingSource(Source):
    """A live source that is reopened when it is lost, with exponential backoff.

    Lost: ``read()`` raised ``SourceError`` (timeout, connection reset, camera unplugged, nothing decodable)
    or the feed ended (a live feed has no end). The first ``open()`` does not retry, nor does a feed that
    never gave a frame: a wrong URL fails at once. An outage lasts until a frame comes: a reopen that succeeds
    and then gives no frame (a server sending garbage) is one more failed attempt of the same outage, so such a
    feed cannot loop forever. Each outage waits ``backoff_s``, then twice that, ... up to ``backoff_max_s``,
    for at most ``attempts`` reopen attempts, then raises ``SourceError``. ``close()`` (from any thread) ends
    a wait at once. No frame is invented for the gap: the next frame's index jumps by the number of frames the
    feed would have delivered meanwhile (outage seconds x fps, at least 1), and its ``pts_s`` continues
    the media clock by the outage's length, so the gap shows in the JSONL.
    """

    def __init__(self, inner: Source, options: SourceConfig) -> None:
        super().__init__(inner.uri)
        self.inner = inner
        self.source_id = inner.source_id
        self.options = options
        self._closed = threading.Event()
        self._outages: list[Outage] = []
        self._lost: tuple[float, int, str] | None = None  # (monotonic, attempts, reason) during an outage
        self._fps: Fraction | None = None
        self._last: Frame | None = None  # the last frame handed out
        self._last_timed: Frame | None = None  # the last one with a media time
        self._rebase_pts = False  # after an outage: the next frame with a media time sets _pts_offset
        self._index_offset = 0
        self._pts_offset = 0.0

    @property
    def fps(self) -> Fraction | None:
        return self._fps

    @property
    def live(self) -> bool:
        """As the feed says once open (a file served over HTTP is not live: it ends, and is not reopened)."""
        return self.inner.live

    @property
    def frame_count(self) -> int | None:
        return None if self.inner.live else self.inner.frame_count

    @property
    def outages(self) -> list[Outage]:
        ongoing = []
        if self._lost is not None:
            lost_at, attempts, reason = self._lost
            ongoing = [Outage(lost_at, time.monotonic() - lost_at, attempts, reason, False)]
        return self._outages + ongoing

    def open(self) -> "ReconnectingSource":
        self._closed.clear()
        self.inner.open()
        self._fps = self.inner.fps
        return self

    def close(self) -> None:
        self._closed.set()
        self.inner.close()

    def read(self) -> Frame | None:
        if not self.inner.live:
            return self.inner.read()
        while not self._closed.is_set():
            try:
                frame = self.inner.read()
                reason = "the feed ended"
            except SourceError as exc:
                frame, reason = None, redact(str(exc))
            if frame is not None:
                return self._renumber(frame)
            if self._closed.is_set():
                return None
            if self._last is None and self._lost is None:
                raise SourceError(f"connected to {self.source_id}, but no frame came from it ({reason}); check that "
                                  f"the URL gives a video stream")
            self._reconnect(reason)
        return None

    def _reconnect(self, reason: str) -> None:
        opts = self.options
        if opts.reconnect_attempts == 0:
            raise SourceError(f"lost {self.source_id}: {reason} (reconnecting is off: source.reconnect_attempts is 0)")
        self.inner.close()
        if self._lost is None:  # a new outage
            lost_at, done = time.monotonic(), 0
            log.warning("lost %s: %s; reconnecting (%d attempts at most)", self.source_id, reason, opts.reconnect_attempts)
        else:  # reopened, and no frame came: the same outage goes on
            lost_at, done, _ = self._lost
            log.warning("reopened %s but no frame came (%s); attempt %d of %d failed", self.source_id, reason, done,
                        opts.reconnect_attempts)
        wait = min(opts.reconnect_backoff_s * 2 ** done, opts.reconnect_backoff_max_s)
        for attempt in range(done + 1, opts.reconnect_attempts + 1):
            self._lost = (lost_at, attempt, reason)
            if self._closed.wait(wait):
                return
            try:
                self.inner.open()
            except SourceError as exc:
                reason = redact(str(exc))
                wait = min(wait * 2, opts.reconnect_backoff_max_s)
                if attempt < opts.reconnect_attempts:
                    log.warning("reconnect attempt %d of %d failed (%s); next in %.1f s", attempt, opts.reconnect_attempts, reason, wait)
                continue
            if self._closed.is_set():  # closed while it was reopening: nobody will read it any more
                self.inner.close()
            return
        self._outages.append(Outage(lost_at, time.monotonic() - lost_at, opts.reconnect_attempts, reason, False))
        self._lost = None
        raise SourceError(
            f"lost {self.source_id} and could not reconnect: {opts.reconnect_attempts} attempts in "
            f"{time.monotonic() - lost_at:.1f} s failed (last: {reason}); check the camera or server, "
            f"or raise source.reconnect_attempts"
        )

    def _renumber(self, frame: Frame) -> Frame:
        if self._lost is not None:
            lost_at, attempts, reason = self._lost
            self._lost = None
            self._outages.append(Outage(lost_at, time.monotonic() - lost_at, attempts, reason, True))
            log.warning("reconnected to %s after %.1f s", self.source_id, time.monotonic() - lost_at)
            last = self._last
            if last is not None:
                gap_s = (frame.captured_ns - last.captured_ns) / 1e9
                fps = float(self._fps) if self._fps else 0.0
                self._index_offset = last.index + max(1, round(gap_s * fps)) - frame.index
                self._rebase_pts = self._last_timed is not None
        if self._rebase_pts and frame.pts_s is not None:
            # The reopened feed's clock starts again (RTSP: at 0): continue ours by the wall time that passed.
            prev = self._last_timed
            self._pts_offset = prev.pts_s + (frame.captured_ns - prev.captured_ns) / 1e9 - frame.pts_s
            self._rebase_pts = False
        pts = frame.pts_s + self._pts_offset if frame.pts_s is not None and not self._rebase_pts else None
        frame = dataclasses.replace(frame, index=frame.index + self._index_offset, pts_s=pts, source_id=self.source_id)
        self._last = frame
        if pts is not None:
            self._last_timed = frame
        return frame


