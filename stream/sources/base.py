"""The source interface (:class:`Source`), what every source reports (:class:`Outage`) and credential redaction.

Every source has the same small interface, so the pipeline (and tests, with a fake) can inject any
producer: ``open()``, ``read() -> Frame | None`` (None: the source has ended), ``close()``, and the
facts the sinks need (``fps``, ``live``, ``frame_count``). ``read()`` stamps ``captured_ns`` with when the
frame arrived (a network stream: when the packet that carried it came in; otherwise right after decoding);
every latency and frame age is measured from it.

Threads: ``read()`` is called by one thread (the pipeline's reader); ``close()`` may be called from any
thread at any time. A source that holds a decoder (FFmpeg, OpenCV) must never free it under a read in
progress, so a ``close()`` that arrives during a read is deferred to the end of that read
(:meth:`Source._reading`). Reads of live sources are bounded by timeouts (the config section ``source``),
so a deferred close always happens. Credentials never leave the sources unredacted: ``source_id`` and
every message use :func:`~depthstream.redact.redact` (re-exported here).
"""

from __future__ import annotations

import abc
import contextlib
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator

import numpy as np

from depthstream.redact import redact
from depthstream.types import Frame

__all__ = ["IMAGE_EXTS", "Outage", "Source", "redact"]

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


@dataclass(frozen=True)
class Outage:
    """A live feed lost and (maybe) regained: when, for how long, how many reopen attempts."""

    lost_at_s: float  # time.monotonic() when the loss was noticed
    duration_s: float  # until the first frame after reconnecting (or until the run ended)
    attempts: int
    reason: str  # what the source reported, credentials redacted
    recovered: bool


class Source(abc.ABC):
    live: bool = False
    stills: bool = False  # True: the frames are unrelated pictures (photos), not one scene over time

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.source_id = redact(uri)
        self._index = 0
        self._state = threading.Lock()
        self._in_read = False
        self._close_pending = False

    @property
    def fps(self) -> Fraction | None:
        """Frames per second of the media, None where the source has none (images)."""
        return None

    @property
    def frame_count(self) -> int | None:
        return None

    @property
    def outages(self) -> list[Outage]:
        """Losses of a live feed so far (only :class:`ReconnectingSource` has any)."""
        return []

    def frame_name(self, index: int) -> str | None:
        """A file name for frame ``index`` when the output is a folder of images (the source image's own
        name for image sources; None: the writer numbers the frames)."""
        return None

    def frame_file(self, index: int) -> str | None:
        """The file frame ``index`` was read from, as matched (image sources; None for a video or a feed)."""
        return None

    def open(self) -> "Source":
        return self

    def close(self) -> None:
        """Release the source (idempotent; any thread). During a read in another thread the release
        waits for that read to end, so a decoder is never freed under it."""
        with self._state:
            if self._in_read:
                self._close_pending = True
                return
        self._release()

    def _release(self) -> None:
        """Free what ``open()`` took (subclasses with resources override this, not ``close``)."""
        return None

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """Wraps the body of ``read()`` of a source that holds a decoder (see ``close``)."""
        with self._state:
            self._in_read = True
        try:
            yield
        finally:
            with self._state:
                self._in_read = False
                pending, self._close_pending = self._close_pending, False
            if pending:
                self._release()

    def __enter__(self) -> "Source":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    def _frame(self, image: np.ndarray, pts_s: float | None, captured_ns: int | None = None) -> Frame:
        """The next Frame; ``captured_ns``: when its data arrived (default: now)."""
        frame = Frame(np.ascontiguousarray(image), self._index, pts_s, captured_ns or time.monotonic_ns(), self.source_id)
        self._index += 1
        return frame

    @abc.abstractmethod
    def read(self) -> Frame | None:
        """The next frame, or None when the source has ended."""


