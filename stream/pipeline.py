"""Threads and queues: the only module of the product that creates them.

Layouts (every arrow is a bounded queue; every box a thread running plain, synchronous stages):

    serial:    capture -> [depth + mask] -> [fill outside band, detect, per-box depth, band filter] -> caller
    parallel:  capture -> split -> [depth + mask]  \\
                                 -> [detect]        -> [join by index, per-box depth, band filter] -> caller

Both layouts pipeline across frames (frame n+1 can be in depth while frame n is detected); the
parallel one also runs depth and detection of the *same* frame at once, so a frame's latency tends to
max(depth, detect) instead of their sum.

Queue policies: ``block`` (files: every frame is processed, capture waits for room) and ``latest``
(live feeds: when the first queue is full its oldest frame is dropped and counted, so the pipeline
never falls behind the camera). Every put/get waits at most ``timeout_s`` before checking the stop
event; a worker's exception stops every thread and is re-raised in the caller's thread.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

from .errors import PipelineError, StreamError
from .sources import Source
from .types import Result

log = logging.getLogger(__name__)

EOS = object()  # end of stream marker, forwarded through every queue


class Stopped(Exception):
    """Raised inside a worker when the stop event is set while it waits on a queue."""


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
        def mk(name: str) -> BoundedQueue:
            # Only the first queue drops frames (policy); after it nothing is lost, so the branches of
            # the parallel layout always see the same frames.
            return BoundedQueue(name, queue_size, "block", self.stop_event, timeout_s)

        self._captured = BoundedQueue("captured", queue_size, policy, self.stop_event, timeout_s)
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
    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        def run() -> None:
            try:
                target()
            except Stopped:
                pass
            except BaseException as exc:  # noqa: BLE001 - any failure in a worker must reach the caller
                self._errors.append((name, exc))
                self.stop_event.set()

        t = threading.Thread(target=run, name=f"stream-{name}")
        self._threads.append(t)
        t.start()

    def _capture(self) -> None:
        while not self.stop_event.is_set():
            if self.max_frames and self.stats.frames_in >= self.max_frames:
                self.stats.stopped_by = f"--max-frames {self.max_frames}"
                break
            t0 = time.perf_counter()
            frame = self.source.read()
            if frame is None:
                break
            self.stats.frames_in += 1
            self._captured.put(Result(frame=frame, timings_ms={"decode": (time.perf_counter() - t0) * 1e3}))
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
    def results(self) -> Iterator[Result]:
        start = time.perf_counter()
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
        finally:
            self.stop()
            self.stats.wall_s = time.perf_counter() - start
            self.stats.dropped = self._captured.dropped
        self._raise_worker_error()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask every worker to stop and wait for them (each wait on a queue ends within timeout_s)."""
        self.stop_event.set()
        deadline = time.monotonic() + timeout_s
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            log.warning("threads still running after stop: %s", ", ".join(alive))

    def _raise_worker_error(self) -> None:
        if not self._errors:
            return
        name, exc = self._errors[0]
        if isinstance(exc, StreamError):
            raise exc
        raise PipelineError(f"stage '{name}' failed: {type(exc).__name__}: {exc}") from exc
