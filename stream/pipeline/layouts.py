"""The threads of each layout (:class:`Pipeline`), the stages they run, and how signals stop them
(see the package docstring for the layouts, the policies and how ``stop()`` never waits on a read)."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

from depthstream.errors import PipelineError, StreamError
from depthstream.types import Result

from .. import signals
from ..sources import Source
from .queues import EOS, BoundedQueue, Handoff, Slots, Stopped

log = logging.getLogger("stream.pipeline")

STAGE_GRACE_S = 30.0  # after stop, how long results() waits for a worker to finish its stage call


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM that arrived while a pipeline ran: ``results()`` raises it between two frames,
    after stopping every thread, so the caller never has a frame half written to its outputs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass
class Stages:
    """The layout's plain callables, each Result -> Result (built by ``stream.app`` from the config)."""

    depth: Callable[[Result], Result]  # frame -> depth map (+ band mask)
    detect: Callable[[Result], Result]  # detections on the frame (serial: on the masked frame)
    finish: Callable[[Result], Result]  # per-box depth, track, band filter (one thread, in frame order)


@dataclass
class RunStats:
    frames_in: int = 0
    dropped: int = 0
    joined_mismatch: int = 0
    stopped_by: str = "end of source"
    wall_s: float = 0.0
    extra: dict = field(default_factory=dict)
    layouts: list[str] = field(default_factory=list)  # the layouts run, in order (more than one: switched)


class Pipeline:
    """Runs a layout over a source; the caller consumes the results in its own thread.

    ``for result in pipeline.results(): ...`` yields finished Results in frame order. Leaving the loop
    (break, exception, Ctrl-C) stops and joins every worker thread. The source must already be open.

    ``switch``: asked by the capture thread before each frame, the layout that frame should run in (a
    ``RuntimeControl``'s ``layout``). When it differs from the running one, the capture thread ends the running
    stage graph with an end marker behind the frames already in it and waits; ``results()`` takes that marker,
    joins the graph's threads, builds the other layout's queues and threads on the same capture queue, and lets
    capture go on. No frame is lost or reordered; the reader and capture threads keep running throughout.
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
        switch: Callable[[], str] | None = None,
    ) -> None:
        _check_layout(layout)
        self.source = source
        self.stages = stages
        self.layout = layout
        self.max_frames = max_frames
        self._switch = switch
        self._feeding = layout  # the layout of the graph the capture thread feeds
        self._requested: str | None = None  # set by capture: the layout the next graph runs
        self._graph_ready = threading.Event()
        self._graph: list[threading.Thread] = []  # the running graph's threads (also in _threads)
        self.stop_event = threading.Event()
        self.stats = RunStats()
        self._errors: list[tuple[str, BaseException]] = []
        self._threads: list[threading.Thread] = []
        self._reader: threading.Thread | None = None
        self._stopping = False  # set by stop(): failures after it (a read cut short by close) are not errors
        self._signum: int | None = None  # set when Ctrl-C / SIGTERM stops the run (stream.signals)
        self._source_error: BaseException | None = None  # the reader's: raised after the frames read before it
        # latest: every queue holds one frame, so a frame waits behind at most one other at each stage
        # and its age stays near the pipeline's own latency; deeper queues would only add old frames.
        self._size = 1 if policy == "latest" else queue_size
        self._handoff = Handoff(policy, self.stop_event, timeout_s)
        # latest: at most ``in_flight`` frames between capture and the caller (one in the models, one
        # being drawn and written); the capture thread takes the newest frame only when one is done.
        self._slots = Slots(in_flight) if policy == "latest" else None
        self._timeout = timeout_s
        self._captured = BoundedQueue("captured", self._size, policy, self.stop_event, timeout_s,
                                      on_drop=self._slots.release if self._slots is not None else None)

    @property
    def dropped(self) -> int:
        """Frames dropped so far by the ``latest`` policy (a live count; ``stats.dropped`` at the end)."""
        return self._handoff.dropped + self._captured.dropped

    def _queue(self, name: str) -> BoundedQueue:
        # Only the capture queue drops frames (policy); after it nothing is lost, so the branches of
        # the parallel layout always see the same frames.
        return BoundedQueue(name, self._size, "block", self.stop_event, self._timeout)

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
        """The reader thread: ``source.read()`` and nothing else that can block for long. A read that fails
        ends the stream like its end does: the frames read before it go through the pipeline first, then
        ``results()`` raises the error (a video cut short still gives every frame it has)."""
        while not self.stop_event.is_set():
            t0 = time.perf_counter()
            try:
                frame = self.source.read()
            except Exception as exc:  # noqa: BLE001 - re-raised by results() after the frames before it
                if self._stopping:
                    return
                self._source_error = exc
                frame = None
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
                if self._switch is not None:
                    self._switch_if_asked()
                if self._slots is not None:
                    while not self._slots.acquire(self._timeout):
                        if self.stop_event.is_set():
                            raise Stopped
                item = self._handoff.take()
                if item is EOS:
                    if self._slots is not None:
                        self._slots.release()
                    break
                self.stats.frames_in += 1
                self._captured.put(item)
        finally:
            self._handoff.close()  # the reader stops at its next handoff
        self._captured.put(EOS)

    def _switch_if_asked(self) -> None:
        """Between two frames: when ``switch`` asks for another layout, end the running graph (an end marker
        behind the frames already in it) and wait until ``results()`` has started the new one."""
        wanted = self._switch()
        if wanted == self._feeding:
            return
        _check_layout(wanted)
        self._graph_ready.clear()
        self._requested = wanted
        self._captured.put(EOS)
        while not self._graph_ready.wait(self._timeout):
            if self.stop_event.is_set():
                raise Stopped
        self._feeding = wanted

    def _split(self, depth_in: BoundedQueue, detect_in: BoundedQueue) -> None:
        while True:
            item = self._captured.get()
            depth_in.put(item)
            detect_in.put(item)
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

    def _serial_back(self, src: BoundedQueue, out: BoundedQueue) -> None:
        while True:
            item = src.get()
            if item is EOS:
                out.put(EOS)
                return
            out.put(self.stages.finish(self.stages.detect(item)))

    def _join(self, depth_out: BoundedQueue, detect_out: BoundedQueue, out: BoundedQueue) -> None:
        """Pairs depth and detection results of the same frame index (both branches see the same frames
        in the same order, since frames are only dropped before the split)."""
        while True:
            a = depth_out.get()
            b = detect_out.get()
            if a is EOS or b is EOS:
                out.put(EOS)
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
            out.put(self.stages.finish(merged))

    # -- caller side ------------------------------------------------------------------------------
    def _interrupt(self, signum: int) -> None:
        self._signum = signum
        self.stop_event.set()

    @property
    def in_flight(self) -> int:
        """Frames between capture and the caller (``latest`` policy; 0 for ``block``, which does not count them)."""
        return self._slots.in_use if self._slots is not None else 0

    @property
    def queue_drops(self) -> dict[str, int]:
        """Frames dropped (``latest``) at each place that drops: the reader's handoff and the first queue."""
        return {"handoff": self._handoff.dropped, "captured": self._captured.dropped}

    def _start_graph(self, layout: str) -> BoundedQueue:
        """The threads and queues of ``layout`` after the capture queue; returns the queue of its results."""
        self.layout = layout
        self.stats.layouts.append(layout)
        before = len(self._threads)
        q = self._queue
        out = q("results")
        if layout == "serial":
            depth_out = q("depth->detect")
            self._spawn("depth", self._map(self.stages.depth, self._captured, depth_out))
            self._spawn("detect", lambda: self._serial_back(depth_out, out))
        else:
            depth_in, detect_in, depth_out, detect_out = (q("split->depth"), q("split->detect"), q("depth->join"),
                                                          q("detect->join"))
            self._spawn("split", lambda: self._split(depth_in, detect_in))
            self._spawn("depth", self._map(self.stages.depth, depth_in, depth_out))
            self._spawn("detect", self._map(self.stages.detect, detect_in, detect_out))
            self._spawn("join", lambda: self._join(depth_out, detect_out, out))
        self._graph = self._threads[before:]
        return out

    def _next_graph(self) -> BoundedQueue:
        """The running graph has ended on the capture thread's switch: join it, start the asked layout."""
        for t in self._graph:
            t.join(STAGE_GRACE_S)
        self._threads = [t for t in self._threads if t.is_alive() or t not in self._graph]
        out = self._start_graph(self._requested)
        log.info("layout: %s from frame %d on", self.layout, self.stats.frames_in)
        self._requested = None
        self._graph_ready.set()
        return out

    def results(self) -> Iterator[Result]:
        start = time.perf_counter()
        # Signals reach the main thread: while its results() runs there (or, for several pipelines in worker threads,
        # inside signals.relay()), Ctrl-C / SIGTERM stop the pipeline at the next frame boundary instead of raising in
        # the middle of the caller's work.
        in_main = threading.current_thread() is threading.main_thread()
        on_signal = signals.stop_on_signal(self._interrupt) if in_main or signals.relaying() else contextlib.nullcontext()
        self._reader = self._spawn("reader", self._read, daemon=True)
        self._spawn("capture", self._capture)
        out = self._start_graph(self.layout)
        ended = False
        try:
            with on_signal:
                while True:
                    try:
                        item = out.get()
                    except Stopped:
                        break
                    if item is EOS:
                        if self._requested is None:
                            ended = True
                            break
                        out = self._next_graph()
                        continue
                    yield item
                    if self._slots is not None:
                        self._slots.release()  # the caller is done with it: the next newest frame may enter
        finally:
            self.stop()
            # A worker still running is inside one stage call (a model's inference): wait for it, so that the
            # caller may close the models as soon as we return.
            for t in self._threads:
                t.join(STAGE_GRACE_S)
            alive = [t.name for t in self._threads if t.is_alive()]
            if alive:
                log.warning("threads still running %.0f s after stop: %s", STAGE_GRACE_S, ", ".join(alive))
            self.stats.wall_s = time.perf_counter() - start
            self.stats.dropped = self.dropped
        if self._signum is not None:
            self.stats.stopped_by = signal.Signals(self._signum).name
            raise Interrupted(self._signum)
        self._raise_worker_error()
        if ended and self._source_error is not None:
            self.stats.stopped_by = "source error"
            raise self._source_error

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


def _check_layout(layout: str) -> None:
    if layout not in ("serial", "parallel"):
        raise ValueError(f"layout must be 'serial' or 'parallel', got {layout!r}")
