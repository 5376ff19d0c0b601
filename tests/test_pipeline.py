"""Threads and queues: order, policies, errors, stop; serial and parallel agree on the real clip."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import numpy as np
import pytest

from stream.app import make_stages
from depthstream.schema.config import load_config
from depthstream.schema.camera import load_profile
from stream.depth import GroundPlaneDepth
from stream.depth.select import BUNDLED_PROFILE
from stream.detect import YoloxDetector
from depthstream.errors import PipelineError, SourceError
from stream.pipeline import BoundedQueue, Pipeline, Stages, Stopped
from stream.sources import Source
from depthstream.types import Detections, Result

from conftest import YOLOX


class FakeSource(Source):
    """n small frames; optionally blocks forever after them (a stalled camera)."""

    def __init__(self, n: int, *, live: bool = False, block_after: bool = False, delay_s: float = 0.0) -> None:
        super().__init__("fake://")
        self.n, self.live, self.block_after, self.delay_s = n, live, block_after, delay_s
        self.release = threading.Event()

    def read(self):
        if self._index >= self.n:
            if self.block_after:
                self.release.wait(30)
            return None
        time.sleep(self.delay_s)
        return self._frame(np.full((8, 8, 3), self._index % 256, np.uint8), self._index / 10)


def _stages(detect_sleep: float = 0.0, fail_at: int | None = None) -> Stages:
    def depth(res: Result) -> Result:
        return res.timed("depth", 0.0)

    def detect(res: Result) -> Result:
        if fail_at is not None and res.frame.index == fail_at:
            raise ZeroDivisionError("boom")
        time.sleep(detect_sleep)
        box = np.array([[0, 0, 1 + res.frame.index, 1]], np.float32)
        return res.timed("detect", 0.0, detections=Detections(box, [0.5], [0]))

    return Stages(depth=depth, detect=detect, finish=lambda r: r)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("layout", ["serial", "parallel"])
def test_block_policy_processes_every_frame_in_order(layout):
    p = Pipeline(FakeSource(50), _stages(), layout=layout, policy="block", queue_size=2, timeout_s=0.05)
    indices = [r.frame.index for r in p.results()]
    assert indices == list(range(50))
    assert p.stats.dropped == 0
    assert not any(t.is_alive() for t in threading.enumerate() if t.name.startswith("stream-"))


@pytest.mark.timeout(20)
def test_latest_policy_drops_and_counts_old_frames():
    src = FakeSource(60, live=True, delay_s=0.001)
    p = Pipeline(src, _stages(detect_sleep=0.02), layout="parallel", policy="latest", queue_size=2, timeout_s=0.05)
    indices = [r.frame.index for r in p.results()]
    assert p.stats.dropped > 0
    assert len(indices) + p.stats.dropped == 60  # every frame is either processed or counted as dropped
    assert indices == sorted(indices) and indices[-1] == 59  # the newest frame always gets through


@pytest.mark.timeout(20)
@pytest.mark.parametrize("layout", ["serial", "parallel"])
def test_worker_exception_stops_and_reaches_caller(layout):
    p = Pipeline(FakeSource(100), _stages(fail_at=5), layout=layout, policy="block", queue_size=2, timeout_s=0.05)
    with pytest.raises(PipelineError, match=r"stage 'detect' failed: ZeroDivisionError: boom") as info:
        for _ in p.results():
            pass
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert not any(t.is_alive() for t in p._threads)


@pytest.mark.timeout(20)
def test_product_errors_are_re_raised_as_they_are():
    class Broken(FakeSource):
        def read(self):
            raise SourceError("camera 0 stopped delivering frames")

    p = Pipeline(Broken(3), _stages(), layout="serial", policy="block")
    with pytest.raises(SourceError, match="stopped delivering"):
        list(p.results())


@pytest.mark.timeout(20)
def test_max_frames():
    p = Pipeline(FakeSource(50), _stages(), layout="serial", policy="block", max_frames=7)
    assert len(list(p.results())) == 7
    assert p.stats.stopped_by == "--max-frames 7"


@pytest.mark.timeout(20)
def test_consumer_leaving_early_stops_every_thread():
    p = Pipeline(FakeSource(1000), _stages(), layout="parallel", policy="block", queue_size=2, timeout_s=0.05)
    gen = p.results()
    for r in gen:
        if r.frame.index == 3:
            break
    gen.close()
    assert not any(t.is_alive() for t in p._threads)


@pytest.mark.timeout(10)
def test_queue_get_returns_within_timeout_after_stop():
    stop = threading.Event()
    q = BoundedQueue("q", 1, "block", stop, timeout_s=0.05)
    threading.Timer(0.2, stop.set).start()
    t0 = time.monotonic()
    with pytest.raises(Stopped):
        q.get()
    assert time.monotonic() - t0 < 1.0


@pytest.mark.timeout(60)
def test_serial_and_parallel_give_the_same_detections_when_the_band_covers_everything(demo_frames):
    """With no band nothing is blanked, so both layouts must find exactly the same boxes and metres."""
    cfg = load_config()
    depth = GroundPlaneDepth(load_profile(BUNDLED_PROFILE))

    class Frames(Source):
        def read(self):
            if self._index >= len(demo_frames):
                return None
            return self._frame(demo_frames[self._index], None)

    out = {}
    with YoloxDetector.from_path(YOLOX, threads=1) as det:
        for layout in ("serial", "parallel"):
            lcfg = replace(cfg, pipeline=replace(cfg.pipeline, layout=layout))
            stages = make_stages(lcfg, depth, det, "bottom")  # the default band: every distance
            p = Pipeline(Frames("frames"), stages, layout=layout, policy="block")
            out[layout] = [r.detections for r in p.results()]
    assert len(out["serial"]) == len(out["parallel"]) == len(demo_frames)
    total = 0
    for a, b in zip(out["serial"], out["parallel"]):
        np.testing.assert_array_equal(a.xyxy, b.xyxy)
        np.testing.assert_array_equal(a.class_id, b.class_id)
        np.testing.assert_array_equal(a.depth_m, b.depth_m)
        total += len(a)
    assert total > 30  # the clip has several pedestrians per frame


@pytest.mark.timeout(20)
@pytest.mark.parametrize("layout", ["serial", "parallel"])
def test_frames_decoded_before_a_source_error_all_reach_the_caller_first(layout):
    class CutShort(FakeSource):
        def read(self):
            if self._index == 20:
                raise SourceError("decoding fake:// failed at frame 20: Invalid data found when processing input")
            return super().read()

    p = Pipeline(CutShort(100), _stages(detect_sleep=0.005), layout=layout, policy="block", queue_size=4, timeout_s=0.05)
    got = []
    with pytest.raises(SourceError, match="failed at frame 20"):
        for r in p.results():
            got.append(r.frame.index)
    assert got == list(range(20))  # every frame read before the error, none lost in the queues


class _Gate:
    """Counts the frames between capture and the caller as the stages and the caller see them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.inside = 0
        self.most = 0
        self.first = threading.Event()

    def enter(self) -> None:
        with self.lock:
            self.inside += 1
            self.most = max(self.most, self.inside)

    def leave(self) -> None:
        with self.lock:
            self.inside -= 1


@pytest.mark.timeout(30)
def test_latest_policy_keeps_its_in_flight_slots_when_frames_are_dropped_in_every_queue_position():
    """A frame dropped in the first queue gave its slot back (it never did: the pipeline then ran with one slot
    less for the rest of the run, 91.6 -> 47.6 fps). Drops are forced at the reader's handoff and at the first
    queue; afterwards the pipeline must still hold ``in_flight`` frames at once, and none when it ends."""
    gate = _Gate()
    hold_first = threading.Event()

    def depth(res: Result) -> Result:
        gate.enter()
        if res.frame.index == 0:
            hold_first.wait(5)  # frame 0 sits in depth: the next one waits in the first queue, a newer one replaces it
        return res

    src = FakeSource(400, live=True, delay_s=0.001)  # faster than the caller: the handoff drops too
    p = Pipeline(src, Stages(depth=depth, detect=lambda r: r, finish=lambda r: r), layout="serial", policy="latest",
                 timeout_s=0.02, in_flight=3)

    def release_when_the_first_queue_dropped() -> None:
        deadline = time.monotonic() + 5
        while p.queue_drops["captured"] < 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        hold_first.set()

    threading.Thread(target=release_when_the_first_queue_dropped).start()
    later_most = 0
    for r in p.results():
        time.sleep(0.01)  # the caller is the slowest step: frames wait for it in every free slot
        if r.frame.index > 200:
            later_most = max(later_most, gate.inside)
        gate.leave()
    assert later_most == 3  # every slot still in use long after the drop in the first queue
    assert p.stats.dropped > 100
    assert p.queue_drops["captured"] >= 1  # the first queue dropped a frame (besides the handoff)
    assert p.in_flight == 0 and gate.inside == 0
