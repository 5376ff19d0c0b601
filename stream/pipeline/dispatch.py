"""The event-delivery worker: :class:`Dispatcher`, one thread behind a bounded queue that never blocks its
caller, which delivers track events to the user's command or HTTP endpoint (``--on-event``,
:mod:`stream.track.deliver`) off the pipeline's threads, so a slow or dead target costs the video nothing."""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from typing import Callable

log = logging.getLogger("stream.pipeline")


@dataclass
class DispatchStats:
    submitted: int = 0
    delivered: int = 0
    failed: int = 0  # the deliver callable raised (its message is logged)
    dropped: int = 0  # the queue was full: never handed to the worker
    abandoned: int = 0  # still queued when close() gave up waiting


class Dispatcher:
    """Hands items to a slow callable (event delivery) on one worker thread, so the caller never waits.

    ``submit(item)`` never blocks: when ``maxsize`` items already wait, the new one is dropped and counted.
    The worker calls ``deliver(item)`` for each item in order; the callable must bound its own time (a
    timeout per delivery). An exception it raises is counted in ``stats.failed`` and logged, never
    re-raised: a target that is down must not stop the video. ``close(drain_s)`` stops accepting items,
    gives the worker ``drain_s`` seconds to deliver what is queued, then stops it (the item in hand is
    finished, bounded by the callable's timeout) and counts the rest as abandoned. Every queue wait is
    timed and checks the stop event. A context manager: ``with Dispatcher(...) as d:`` starts and closes it.
    """

    def __init__(self, name: str, deliver: Callable[[object], None], *, maxsize: int, drain_s: float,
                 timeout_s: float = 0.1) -> None:
        if maxsize < 1:
            raise ValueError(f"Dispatcher maxsize must be >= 1, got {maxsize}")
        self.name = name
        self.stats = DispatchStats()
        self._deliver = deliver
        self._drain_s = drain_s
        self._q: queue.Queue = queue.Queue(maxsize)
        self._stop = threading.Event()
        self._timeout = timeout_s
        self._thread: threading.Thread | None = None
        self._closed = False
        self._logged_failures = 0

    def start(self) -> "Dispatcher":
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name=f"stream-{self.name}")
            self._thread.start()
        return self

    def submit(self, item: object) -> bool:
        """Queue ``item`` for delivery; False (and counted as dropped) when the queue is full or closed."""
        self.stats.submitted += 1
        if self._closed:
            self.stats.dropped += 1
            return False
        try:
            self._q.put_nowait(item)
        except queue.Full:
            self.stats.dropped += 1
            return False
        return True

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._q.get(timeout=self._timeout)
            except queue.Empty:
                if self._closed:
                    return
                continue
            try:
                self._deliver(item)
            except Exception as exc:  # noqa: BLE001 - any failure of a delivery is counted, not fatal
                self.stats.failed += 1
                self._log_failure(exc)
            else:
                self.stats.delivered += 1

    def _log_failure(self, exc: Exception) -> None:
        # The first few failures are logged each; the rest are counted in the summary.
        self._logged_failures += 1
        if self._logged_failures <= 3:
            log.warning("%s: %s%s", self.name, exc, "" if self._logged_failures < 3 else " (further failures are only counted)")

    def close(self) -> None:
        """Stop accepting items, let the worker deliver what is queued for at most ``drain_s``, then stop it."""
        if self._closed:
            return
        self._closed = True
        thread = self._thread
        if thread is not None:
            thread.join(self._drain_s)
            self._stop.set()
            thread.join()
        self.stats.abandoned = self._q.qsize()

    def __enter__(self) -> "Dispatcher":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
