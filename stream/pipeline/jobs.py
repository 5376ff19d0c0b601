"""One low-priority worker thread for work that must never slow the pipeline: the browser view's uploads.

:class:`JobWorker` runs callables one at a time, in order, behind a bounded queue: ``submit`` never blocks
(a full queue is :class:`Busy`, which the caller turns into "try again"). The thread lowers its own scheduling
priority (``nice``) when it starts, on Linux, where the threads it then creates (the ONNX Runtime sessions'
thread pools, a run's pipeline threads) inherit it: the live pipeline's threads get the cores first, an upload
takes what they leave. The queue's waits are timed and check the stop event; ``close`` cancels what waits and
joins the thread after the job in hand (which its own caller may cancel).
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import queue
import threading
from typing import Any, Callable

log = logging.getLogger("stream.pipeline")

JOB_NICE = 10  # how much lower than the pipeline's threads the worker runs (Linux nice increment)


class Busy(Exception):
    """The worker's queue is full."""


class JobWorker:
    def __init__(self, name: str, *, maxsize: int, timeout_s: float = 0.1, nice: int = JOB_NICE) -> None:
        self.name = name
        self._q: queue.Queue = queue.Queue(maxsize)
        self._stop = threading.Event()
        self._timeout = timeout_s
        self._nice = nice
        self._thread: threading.Thread | None = None

    def start(self) -> "JobWorker":
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name=f"stream-{self.name}")
            self._thread.start()
        return self

    def submit(self, fn: Callable[[], Any]) -> concurrent.futures.Future:
        """Queue ``fn`` (never blocks); its Future gives its result or its exception. Raises Busy when full."""
        if self._stop.is_set():
            raise Busy(f"{self.name} is closed")
        future: concurrent.futures.Future = concurrent.futures.Future()
        try:
            self._q.put_nowait((fn, future))
        except queue.Full:
            raise Busy(f"{self.name} has {self._q.maxsize} jobs waiting") from None
        return future

    def _lower_priority(self) -> None:
        if self._nice and hasattr(os, "setpriority"):
            try:  # Linux: a thread's id names it alone, so only this thread (and what it starts) is lowered
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0) + self._nice)
            except OSError as exc:
                log.info("%s: could not lower its priority (%s); it runs at the pipeline's", self.name, exc)

    def _work(self) -> None:
        self._lower_priority()
        while not self._stop.is_set():
            try:
                fn, future = self._q.get(timeout=self._timeout)
            except queue.Empty:
                continue
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
                future.set_exception(exc)

    def close(self, timeout_s: float = 30.0) -> None:
        """Cancel the jobs that wait, stop the worker after the job in hand (joined for ``timeout_s``)."""
        self._stop.set()
        while True:
            try:
                _, future = self._q.get_nowait()
            except queue.Empty:
                break
            future.cancel()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("%s still runs a job %.0f s after close", self.name, timeout_s)

    def __enter__(self) -> "JobWorker":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
