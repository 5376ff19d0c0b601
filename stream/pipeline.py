"""Threads and queues: the only module of the product that creates them.

Layouts (every arrow is a bounded queue; every box a thread running plain, synchronous stages):

    serial:    capture -> [depth + mask] -> [fill outside band, detect, per-box depth, band filter] -> caller
    parallel:  capture -> split -> [depth + mask]  \\
                                 -> [detect]        -> [join by index, per-box depth, band filter] -> caller

Both layouts pipeline across frames (frame n+1 can be in depth while frame n is detected); the
parallel one also runs depth and detection of the *same* frame at once, so a frame's latency tends to
max(depth, detect) instead of their sum.

Queue policies: ``block`` (files: every frame is processed, capture waits for room) and ``latest``
(live feeds: a frame nobody has taken yet is replaced by the newer one and counted as dropped; at most
``in_flight`` frames are between capture and the caller and every queue holds one frame, so the
pipeline never falls behind the camera and a frame's age stays at the pipeline's own latency). Every
put/get waits at most ``timeout_s`` before checking the stop event; a worker's exception stops every
thread and is re-raised in the caller's thread. Ctrl-C / SIGTERM (``interrupt_running``) stop the
pipeline and make ``results()`` raise :class:`Interrupted` between two frames.

Capture is two threads, so that ``stop()`` never waits on a read:

    reader (daemon) --one-frame handoff--> capture --policy queue--> ...

The **reader** is the one thread whose only blocking call is ``source.read()``, which can sit inside C
code (FFmpeg waiting on a socket, V4L2 waiting on a camera) where Python cannot interrupt it. It makes
no queue calls: it hands each frame to the capture thread through ``_Handoff`` (a Condition whose
every wait is timed and checks the stop event). ``stop()`` joins it for what is left of its one-second
budget; if it is still inside ``read()`` then, ``stop()`` closes the source (every source accepts a
``close()`` from another thread: a fake or a reconnect wait returns at once, FFmpeg and OpenCV finish
the read within their read timeout and then release the decoder) and returns anyway. Being a daemon, a
reader still blocked then cannot keep the process from exiting; it holds no lock and no frame anyone
waits for. Every other thread is a normal thread, joined before ``results()`` returns.

Besides the layouts: :class:`Dispatcher`, one worker thread behind a bounded, never-blocking queue, which
delivers track events to the user's command or HTTP endpoint (``--on-event``) off the pipeline's threads.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

from depthstream.errors import PipelineError, StreamError
from .sources import Source
from depthstream.types import Result

log = logging.getLogger(__name__)

EOS = object()  # end of stream marker, forwarded through every queue
STAGE_GRACE_S = 30.0  # after stop, how long results() waits for a worker to finish its stage call


class Stopped(Exception):
    """Raised inside a worker when the stop event is set while it waits on a queue."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM that arrived while a pipeline ran: ``results()`` raises it between two frames,
    after stopping every thread, so the caller never has a frame half written to its outputs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_running: list["Pipeline"] = []  # pipelines whose results() runs in the main thread, where signals arrive


def interrupt_running(signum: int) -> bool:
    """For a signal handler: ask the pipeline running in the main thread to stop at the next frame
    boundary (``results()`` then raises :class:`Interrupted`). False when none is running: the handler
    should then raise KeyboardInterrupt itself (e.g. while the models load)."""
    if not _running:
        return False
    _running[-1]._interrupt(signum)
    return True


class BoundedQueue:
    """A bounded queue with a named policy and stop-aware, timed put/get."""

    def __init__(self, name: str, maxsize: int, policy: str, stop: threading.Event, timeout_s: float) -> None:
        if policy not in ("block", "latest"):
            raise ValueError(f"queue policy must be 'block' or 'latest', got {policy!r}")
        self.name = name
        self.policy = policy
        self.dropped = 0
        self._q: queue.Queue = queue.Queue(maxsize)
        self._stop = stop
        self._timeout = timeout_s

    def put(self, item) -> None:
        if self.policy == "latest" and item is not EOS:
            # One producer per queue: after dropping the oldest there is room for our put.
            with self._q.mutex:
                if self._q.maxsize and len(self._q.queue) >= self._q.maxsize:
                    self._q.queue.popleft()
                    self.dropped += 1
                    self._q.not_full.notify()
        while True:
            if self._stop.is_set():
                raise Stopped
            try:
                self._q.put(item, timeout=self._timeout)
                return
            except queue.Full:
                continue

    def get(self):
        while True:
            if self._stop.is_set():
                raise Stopped
            try:
                return self._q.get(timeout=self._timeout)
            except queue.Empty:
                continue


_EMPTY = object()


class _Handoff:
    """One frame at a time from the reader thread to the capture thread.

    ``latest``: a frame the capture thread has not taken yet is replaced by a newer one (counted in
    ``dropped``), so the reader never waits. ``block``: the reader waits until the slot is free. Every
    wait is at most ``timeout_s`` and ends with ``Stopped`` once the stop event is set or the capture
    side has ``close()``d the handoff.
    """

    def __init__(self, policy: str, stop: threading.Event, timeout_s: float) -> None:
        self.policy = policy
        self.dropped = 0
        self._cond = threading.Condition()
        self._item = _EMPTY
        self._stop = stop
        self._closed = False
        self._timeout = timeout_s

    def _check(self) -> None:
        if self._stop.is_set() or self._closed:
            raise Stopped

    def offer(self, item) -> None:
        with self._cond:
            if self._item is not _EMPTY and self.policy == "latest" and item is not EOS:
                self._item = _EMPTY
                self.dropped += 1
            while self._item is not _EMPTY:
                self._check()
                self._cond.wait(self._timeout)
            self._check()
            self._item = item
            self._cond.notify_all()

    def take(self):
        with self._cond:
            while self._item is _EMPTY:
                self._check()
                self._cond.wait(self._timeout)
            item, self._item = self._item, _EMPTY
            self._cond.notify_all()
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


@dataclass
class Stages:
    """The layout's plain callables, each Result -> Result (built by ``stream.app`` from the config)."""

    depth: Callable[[Result], Result]  # frame -> depth map (+ band mask)
    detect: Callable[[Result], Result]  # detections on the frame (serial: on the masked frame)
    finish: Callable[[Result], Result]  # per-box depth, band filter


@dataclass
class RunStats:
    frames_in: int = 0
    dropped: int = 0
    joined_mismatch: int = 0
    stopped_by: str = "end of source"
    wall_s: float = 0.0
    extra: dict = field(default_factory=dict)


class Pipeline:
    """Runs a layout over a source; the caller consumes the results in its own thread.

    ``for result in pipeline.results(): ...`` yields finished Results in frame order. Leaving the loop
    (break, exception, Ctrl-C) stops and joins every worker thread. The source must already be open.
    """

    def __init__(
        self,
        source: Source,
        stages: Stages,
        *,
        layout: str,
        policy: str,
        queue_size: int = 4,
        timeout_s: float = 0.1,
        max_frames: int = 0,
        in_flight: int = 2,
    ) -> None:
        if layout not in ("serial", "parallel"):
            raise ValueError(f"layout must be 'serial' or 'parallel', got {layout!r}")
        self.source = source
        self.stages = stages
        self.layout = layout
        self.max_frames = max_frames
        self.stop_event = threading.Event()
        self.stats = RunStats()
        self._errors: list[tuple[str, BaseException]] = []
        self._threads: list[threading.Thread] = []
        self._reader: threading.Thread | None = None
        self._stopping = False  # set by stop(): failures after it (a read cut short by close) are not errors
        self._signum: int | None = None  # set by interrupt_running()
        # latest: every queue holds one frame, so a frame waits behind at most one other at each stage
        # and its age stays near the pipeline's own latency; deeper queues would only add old frames.
        size = 1 if policy == "latest" else queue_size

        def mk(name: str) -> BoundedQueue:
            # Only the first queue drops frames (policy); after it nothing is lost, so the branches of
            # the parallel layout always see the same frames.
            return BoundedQueue(name, size, "block", self.stop_event, timeout_s)

        self._handoff = _Handoff(policy, self.stop_event, timeout_s)
        # latest: at most ``in_flight`` frames between capture and the caller (one in the models, one
        # being drawn and written); the capture thread takes the newest frame only when one is done.
        self._tokens = threading.Semaphore(in_flight) if policy == "latest" else None
        self._timeout = timeout_s
        self._captured = BoundedQueue("captured", size, policy, self.stop_event, timeout_s)
        self._out = mk("results")
        if layout == "serial":
            self._depth_in = self._captured
            self._depth_out = mk("depth->detect")
        else:
            self._depth_in = mk("split->depth")
            self._detect_in = mk("split->detect")
            self._depth_out = mk("depth->join")
            self._detect_out = mk("detect->join")

    # -- workers ----------------------------------------------------------------------------------
    def _spawn(self, name: str, target: Callable[[], None], *, daemon: bool = False) -> threading.Thread:
        def run() -> None:
            try:
                target()
            except Stopped:
                pass
            except BaseException as exc:  # noqa: BLE001 - any failure in a worker must reach the caller
                if self._stopping:
                    log.debug("%s ended after stop: %s: %s", name, type(exc).__name__, exc)
                    return
                self._errors.append((name, exc))
                self.stop_event.set()

        # Only the reader is a daemon (see the module's docstring): it makes no queue calls.
        t = threading.Thread(target=run, name=f"stream-{name}", daemon=daemon)
        if not daemon:
            self._threads.append(t)
        t.start()
        return t

    def _read(self) -> None:
        """The reader thread: ``source.read()`` and nothing else that can block for long."""
        while not self.stop_event.is_set():
            t0 = time.perf_counter()
            frame = self.source.read()
            if frame is None:
                self._handoff.offer(EOS)
                return
            self._handoff.offer(Result(frame=frame, timings_ms={"decode": (time.perf_counter() - t0) * 1e3}))

    def _capture(self) -> None:
        try:
            while True:
                if self.max_frames and self.stats.frames_in >= self.max_frames:
                    self.stats.stopped_by = f"--max-frames {self.max_frames}"
                    break
                if self._tokens is not None:
                    while not self._tokens.acquire(timeout=self._timeout):
                        if self.stop_event.is_set():
                            raise Stopped
                item = self._handoff.take()
                if item is EOS:
                    break
                self.stats.frames_in += 1
                self._captured.put(item)
        finally:
            self._handoff.close()  # the reader stops at its next handoff
        self._captured.put(EOS)

    def _split(self) -> None:
        while True:
            item = self._captured.get()
            self._depth_in.put(item)
            self._detect_in.put(item)
            if item is EOS:
                return

    @staticmethod
    def _map(fn: Callable[[Result], Result], src: BoundedQueue, dst: BoundedQueue) -> Callable[[], None]:
        def loop() -> None:
            while True:
                item = src.get()
                if item is EOS:
                    dst.put(EOS)
                    return
                dst.put(fn(item))

        return loop

    def _serial_back(self) -> None:
        while True:
            item = self._depth_out.get()
            if item is EOS:
                self._out.put(EOS)
                return
            self._out.put(self.stages.finish(self.stages.detect(item)))

    def _join(self) -> None:
        """Pairs depth and detection results of the same frame index (both branches see the same frames
        in the same order, since frames are only dropped before the split)."""
        while True:
            a = self._depth_out.get()
            b = self._detect_out.get()
            if a is EOS or b is EOS:
                self._out.put(EOS)
                return
            if a.frame.index != b.frame.index:
                raise PipelineError(f"join: depth has frame {a.frame.index} but detection has frame {b.frame.index}")
            merged = Result(
                frame=a.frame,
                depth=a.depth,
                mask=a.mask,
                detections=b.detections,
                timings_ms={**b.timings_ms, **a.timings_ms},
            )
            self._out.put(self.stages.finish(merged))

    # -- caller side ------------------------------------------------------------------------------
    def _interrupt(self, signum: int) -> None:
        self._signum = signum
        self.stop_event.set()

    def results(self) -> Iterator[Result]:
        start = time.perf_counter()
        in_main = threading.current_thread() is threading.main_thread()
        if in_main:
            _running.append(self)
        self._reader = self._spawn("reader", self._read, daemon=True)
        self._spawn("capture", self._capture)
        if self.layout == "serial":
            self._spawn("depth", self._map(self.stages.depth, self._depth_in, self._depth_out))
            self._spawn("detect", self._serial_back)
        else:
            self._spawn("split", self._split)
            self._spawn("depth", self._map(self.stages.depth, self._depth_in, self._depth_out))
            self._spawn("detect", self._map(self.stages.detect, self._detect_in, self._detect_out))
            self._spawn("join", self._join)
        try:
            while True:
                try:
                    item = self._out.get()
                except Stopped:
                    break
                if item is EOS:
                    break
                yield item
                if self._tokens is not None:
                    self._tokens.release()  # the caller is done with it: the next newest frame may enter
        finally:
            self.stop()
            # A worker still running is inside one stage call (a model's inference): wait for it, so
            # that the caller may close the models as soon as we return.
            for t in self._threads:
                t.join(STAGE_GRACE_S)
            alive = [t.name for t in self._threads if t.is_alive()]
            if alive:
                log.warning("threads still running %.0f s after stop: %s", STAGE_GRACE_S, ", ".join(alive))
            self.stats.wall_s = time.perf_counter() - start
            self.stats.dropped = self._handoff.dropped + self._captured.dropped
            if in_main:
                _running.remove(self)
        if self._signum is not None:
            self.stats.stopped_by = signal.Signals(self._signum).name
            raise Interrupted(self._signum)
        self._raise_worker_error()

    def stop(self, timeout_s: float = 1.0) -> bool:
        """Stop every thread; returns within ``timeout_s`` even while ``source.read()`` blocks forever.

        Workers see the stop event within ``timeout_s`` of the queues (one stage call at most). The
        reader is joined for what is left of the budget; if it is still inside ``read()`` the source is
        closed, which ends that read or makes it release the source when it returns (see the module's
        docstring), and ``stop()`` returns without it. True when every thread has ended.
        """
        self._stopping = True
        self.stop_event.set()
        deadline = time.monotonic() + 0.9 * timeout_s  # the rest: thread switches, the caller's own work
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic() - 0.3 * timeout_s))
        reader = self._reader
        if reader is not None and reader.is_alive():
            reader.join(max(0.0, deadline - time.monotonic() - 0.2 * timeout_s))
            if reader.is_alive():
                log.info("%s is still blocked in read(); closing it to release the read", self.source.source_id)
                self.source.close()
                reader.join(max(0.0, deadline - time.monotonic()))
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in [*self._threads, *([reader] if reader else [])])

    def _raise_worker_error(self) -> None:
        if not self._errors:
            return
        name, exc = self._errors[0]
        if isinstance(exc, StreamError):
            raise exc
        raise PipelineError(f"stage '{name}' failed: {type(exc).__name__}: {exc}") from exc


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

    def __init__(self, name: str, deliver: Callable[[object], None], *, maxsize: int = 64, drain_s: float = 5.0,
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
