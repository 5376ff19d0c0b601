"""A sink's writes on a thread of their own: the MP4's encoder, so that encoding a frame (libx264, several ms a frame)
runs beside the stages and the next frame's overlay instead of holding up the thread that hands out the results.

:class:`WriterThread` calls ``write(*args)`` in order, behind a short bounded queue. ``write`` returns as soon as
the queue has room; while it is full it waits (timed waits that notice a stopped thread), so an encoder slower than
the pipeline slows the run instead of piling up frames: memory stays bounded. The first exception a write raises
stops the thread (nothing more is written) and is raised by the caller's next ``write``, else by ``close``.
``close`` writes what is still queued, then joins the thread: the sink holds every frame given to ``write`` (after
Ctrl-C and SIGTERM too, which stop a run between two frames), unless a write failed.
"""

from __future__ import annotations

import logging
import queue
import threading
from types import TracebackType
from typing import Any, Callable

log = logging.getLogger("stream.pipeline")

_END = object()  # queued by close(): the thread ends after the writes before it


class WriterThread:
    """name: the thread's name (``stream-NAME``); write: the sink's write; maxsize: writes queued at most (each
    holds its arguments, e.g. one frame); timeout_s: how often a wait checks the thread."""

    def __init__(self, name: str, write: Callable[..., Any], *, maxsize: int = 2, timeout_s: float = 0.1) -> None:
        self.name = name
        self._write = write
        self._q: queue.Queue = queue.Queue(maxsize)
        self._timeout = timeout_s
        self._error: Exception | None = None
        self._raised = False
        self._closed = False
        self._thread = threading.Thread(target=self._work, name=f"stream-{name}")
        self._thread.start()

    def _work(self) -> None:
        while True:
            args = self._q.get()  # close() always queues _END while the thread lives
            if args is _END:
                return
            try:
                self._write(*args)
            except Exception as exc:  # noqa: BLE001 - raised in the caller's thread by its next write or close
                self._error = exc
                return

    def _raise_error(self) -> None:
        if self._error is not None and not self._raised:
            self._raised = True
            raise self._error

    def _put(self, item: object) -> bool:
        """Queue ``item``; False when the thread has stopped (after a failed write)."""
        while self._thread.is_alive():
            try:
                self._q.put(item, timeout=self._timeout)
                return True
            except queue.Full:
                continue
        return False

    def write(self, *args: Any) -> None:
        """Queue one write; raises the exception of an earlier write that failed (once)."""
        if self._closed:
            raise RuntimeError(f"{self.name}: write after close")
        self._raise_error()
        if not self._put(args):
            self._raise_error()
            raise RuntimeError(f"{self.name}: its thread stopped after a failed write")

    def close(self, *, raise_error: bool = True) -> None:
        """Write what is queued, join the thread (idempotent); then raise a failed write's exception not yet raised
        (``raise_error`` False: only log it)."""
        if self._closed:
            return
        self._closed = True
        self._put(_END)
        while self._thread.is_alive():
            self._thread.join(self._timeout)
        if raise_error:
            self._raise_error()
        elif self._error is not None and not self._raised:
            log.debug("%s: %s", self.name, self._error)

    def __enter__(self) -> "WriterThread":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        # with an exception on its way (it says what went wrong), a failed write is only logged
        self.close(raise_error=exc_type is None)
