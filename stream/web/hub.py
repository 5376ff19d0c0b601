"""From the pipeline to the viewers: the newest frame only, one JPEG encode per frame, no queue per viewer.

:class:`FrameHub` is the frame-publishing sink of a served run: the run's consumer thread calls
:meth:`FrameHub.publish` with each written frame; it keeps a reference to the newest one (no copy, no encode,
a few microseconds under a lock) and the last events, and wakes the server's event loop. It never waits on a
viewer: the pipeline's speed cannot depend on who watches.

:class:`JpegFeed` lives on the server's event loop. A viewer asks for the first frame newer than the one it
last sent; the first viewer to ask for a new frame encodes it (in a worker thread: OpenCV releases the GIL),
every other viewer waiting for it gets the same bytes. So N viewers cost one encode per frame, no viewer costs
an encode of a frame nobody asks for, and a slow viewer just skips to the newest frame when it is ready for the
next one: nothing piles up for it. Encodes are at least ``1 / max_fps`` apart (``serve.video_max_fps``): a pipeline
faster than that shows every second or third frame in the video, and the video's cost stays bounded.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Callable
from dataclasses import dataclass

import cv2

from ..control import LiveFrame

EVENTS_KEPT = 20  # the page's "last events"


class FrameHub:
    """The newest :class:`LiveFrame` of a run, its sequence number, the last events and the run's state."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frame: LiveFrame | None = None
        self._seq = 0  # frames published so far; the newest frame's number
        self._events: collections.deque[dict] = collections.deque(maxlen=EVENTS_KEPT)
        self._listeners: list[Callable[[], None]] = []
        self.state = "starting"  # starting | running | ended | failed
        self.detail = ""  # why the run ended or failed, in words (credentials redacted by the caller)

    def publish(self, frame: LiveFrame) -> None:
        """The run's newest frame (called by the consumer thread; never blocks on a viewer)."""
        with self._lock:
            self._frame = frame
            self._seq += 1
            self._events.extend(frame.events)
            self.state = "running"
            listeners = list(self._listeners)
        for wake in listeners:
            wake()

    def newest(self) -> tuple[int, LiveFrame | None]:
        with self._lock:
            return self._seq, self._frame

    @property
    def seq(self) -> int:
        return self._seq

    def events(self) -> list[dict]:
        """The last events, newest first."""
        with self._lock:
            return list(reversed(self._events))

    def finish(self, state: str, detail: str = "") -> None:
        """The run is over (``ended``) or failed (``failed``); the last frame stays."""
        with self._lock:
            self.state, self.detail = state, detail
            listeners = list(self._listeners)
        for wake in listeners:
            wake()

    def listen(self, wake: Callable[[], None]) -> Callable[[], None]:
        """Call ``wake()`` (from the publishing thread) after every frame; returns the function that stops it."""
        with self._lock:
            self._listeners.append(wake)

        def stop() -> None:
            with self._lock:
                if wake in self._listeners:
                    self._listeners.remove(wake)

        return stop


class FeedClosed(Exception):
    """The server is shutting down: viewers end their streams."""


@dataclass
class FeedStats:
    encodes: int = 0  # JPEG encodes, whatever the number of viewers
    frames_sent: int = 0  # JPEG parts written to viewers, all together
    viewers: int = 0  # live video connections now
    viewers_total: int = 0
    dropped_viewers: int = 0  # viewers dropped because they took no data for the viewer timeout
    refused_viewers: int = 0  # turned away at max_viewers


def encode_jpeg(image, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"JPEG encoding of a {image.shape} frame failed")
    return buf.tobytes()


class JpegFeed:
    """The newest frame of a :class:`FrameHub` as JPEG, encoded once, for every viewer (event-loop side)."""

    def __init__(self, hub: FrameHub, quality: int, max_fps: float) -> None:
        self.hub = hub
        self.quality = quality
        self.interval_s = 1.0 / max_fps
        self._encoded_at = float("-inf")  # event-loop time of the last encode
        self.stats = FeedStats()
        self._seq = 0  # the frame number of _jpeg
        self._jpeg = b""
        self._lock: asyncio.Lock | None = None
        self._new: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unlisten: Callable[[], None] | None = None
        self._closed = False

    def start(self) -> None:
        """On the server's event loop: follow the hub."""
        self._loop = asyncio.get_running_loop()
        self._lock = asyncio.Lock()
        self._new = asyncio.Event()
        self._unlisten = self.hub.listen(self._wake_threadsafe)

    def _wake_threadsafe(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._pulse)
            except RuntimeError:  # the loop closed between the check and the call: nobody waits any more
                pass

    def _pulse(self) -> None:
        """Wake every waiting viewer (each holds the event that was current when it started waiting)."""
        self._new.set()
        self._new = asyncio.Event()

    def close(self) -> None:
        """On the event loop: end every viewer's stream."""
        self._closed = True
        if self._unlisten is not None:
            self._unlisten()
        if self._new is not None:
            self._pulse()

    async def wait_newer(self, after: int) -> int:
        """Wait until the hub has a frame newer than ``after``; returns its number. Raises FeedClosed."""
        while True:
            if self._closed:
                raise FeedClosed
            seq = self.hub.seq
            if seq > after:
                return seq
            await self._new.wait()

    async def next(self, after: int) -> tuple[int, bytes]:
        """The newest frame's number and JPEG, once there is a frame newer than ``after``."""
        await self.wait_newer(after)
        async with self._lock:
            if self.hub.seq > self._seq:
                loop = asyncio.get_running_loop()
                wait = self._encoded_at + self.interval_s - loop.time()
                if wait > 0:  # too soon after the last encode: wait, then take what is newest then
                    await asyncio.sleep(wait)
                seq, frame = self.hub.newest()
                self._encoded_at = loop.time()
                self._jpeg = await loop.run_in_executor(None, encode_jpeg, frame.image, self.quality)
                self._seq = seq
                self.stats.encodes += 1
            return self._seq, self._jpeg
