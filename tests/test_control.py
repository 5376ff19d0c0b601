"""Changing the band and the layout while a run goes on (the browser view's controls): RuntimeControl's checks and
per-frame pinning, the pipeline's stage graph rebuilt between two frames, and real runs of the bundled clip."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from bench.pipeline_runs import LoopSource
from depthstream.errors import ConfigError
from depthstream.schema.config import BandConfig, load_config
from depthstream.types import Detections, Result
from stream.app import run
from stream.control import RuntimeControl
from stream.pipeline import Pipeline, Stages
from stream.sources import Source


def test_a_change_is_validated_like_the_config_and_a_refused_one_changes_nothing():
    control = RuntimeControl(BandConfig(closer_than=30.0), "parallel")
    with pytest.raises(ConfigError, match=r"^band: further_than 40 and closer_than 30 leave no distance"):
        control.update(further_than=40)
    with pytest.raises(ConfigError, match=r"^band: closer_than: got 0, expected a positive number of metres "
                                          r"\(at most 10000\) or null$"):
        control.update(closer_than=0)
    with pytest.raises(ConfigError, match=r"^layout: got 'sideways', expected one of serial, parallel$"):
        control.update(layout="sideways")
    assert control.settings.version == 0 and control.settings.band.closer_than == 30
    s = control.update(further_than=10)
    assert (s.band.closer_than, s.band.further_than, s.layout, s.version) == (30, 10, "parallel", 1)
    assert s.band_text == "between 10 m and 30 m"
    s = control.update(closer_than=None, further_than=None, layout="serial")
    assert s.band_text is None and not s.band.active and control.layout() == "serial"


def test_a_frame_keeps_the_settings_it_was_first_asked_about_until_released():
    control = RuntimeControl(BandConfig(closer_than=30.0), "parallel")
    first = control.for_frame(5)
    control.update(closer_than=20)
    assert control.for_frame(5) is first  # the later stages of frame 5 see what its depth stage saw
    assert control.for_frame(6).band.closer_than == 20
    control.release(5)
    assert control.for_frame(5).band.closer_than == 20


class Frames(Source):
    """``n`` tiny frames, each ``delay_s`` apart."""

    def __init__(self, n: int, delay_s: float = 0.0, live: bool = False) -> None:
        super().__init__("frames://")
        self.n, self.delay_s, self.live = n, delay_s, live

    def read(self):
        if self._index >= self.n:
            return None
        time.sleep(self.delay_s)
        return self._frame(np.zeros((8, 8, 3), np.uint8), None)


def _recording_stages(seen: dict[int, bool]) -> Stages:
    """detect records, per frame, whether depth ran before it (serial) or not (parallel)."""

    def depth(res: Result) -> Result:
        return res.timed("depth", 0.0)

    def detect(res: Result) -> Result:
        seen[res.frame.index] = "depth" in res.timings_ms
        return res.timed("detect", 0.0, detections=Detections.empty())

    return Stages(depth=depth, detect=detect, finish=lambda r: r)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("policy", ["block", "latest"])
def test_the_layout_switches_between_two_frames_and_no_frame_is_lost(policy):
    control = RuntimeControl(BandConfig(), "parallel")
    seen: dict[int, bool] = {}
    p = Pipeline(Frames(90, delay_s=0.002, live=policy == "latest"), _recording_stages(seen), layout="parallel",
                 policy=policy, queue_size=2, timeout_s=0.05, switch=control.layout)
    indices = []
    for res in p.results():
        indices.append(res.frame.index)
        if len(indices) == 20:
            control.update(layout="serial")
        if len(indices) == 50:
            control.update(layout="parallel")
    if policy == "block":
        assert indices == list(range(90))
    else:
        assert indices == sorted(indices) and len(indices) + p.stats.dropped == 90
    assert p.stats.layouts == ["parallel", "serial", "parallel"]
    layout = ["serial" if seen[i] else "parallel" for i in indices]
    # One run of each: parallel, then serial, then parallel again; each switch a few frames after it was asked.
    changes = [i for i in range(1, len(layout)) if layout[i] != layout[i - 1]]
    assert len(changes) == 2, layout
    assert 20 <= changes[0] <= 20 + 8 and 50 <= changes[1] <= 50 + 8, changes
    assert [t.name for t in threading.enumerate() if t.name.startswith("stream-") and t.is_alive()] == []


@pytest.mark.timeout(30)
def test_a_pipeline_stopped_during_a_switch_ends():
    control = RuntimeControl(BandConfig(), "serial")
    seen: dict[int, bool] = {}
    p = Pipeline(Frames(10_000, delay_s=0.001), _recording_stages(seen), layout="serial", policy="block",
                 queue_size=2, timeout_s=0.05, switch=control.layout)
    for n, _ in enumerate(p.results()):
        if n == 5:
            control.update(layout="parallel")
        if n == 6:
            break
    assert p.stop(1.0)


def _records(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_band_and_layout_changed_mid_run_reach_the_mask_the_filter_and_the_records(tmp_path):
    """The bundled clip with the real detector: after frame 20 the band becomes closer than 20 m and the layout
    serial; the JSONL says so from one frame on, and every box after it is nearer than 20 m."""
    cfg = load_config(overrides={"source.uri": "demo", "source.max_frames": 60, "band.closer_than": 30.0,
                                 "output.jsonl": str(tmp_path / "run.jsonl")})
    control = RuntimeControl.from_config(cfg)

    def on_frame(done, total):
        if done == 20:
            control.update(closer_than=20, layout="serial")

    summary = run(cfg, control=control, on_frame=on_frame)
    records = _records(tmp_path / "run.jsonl")
    bands = [r["band"] for r in records]
    k = bands.index("closer than 20 m")
    assert set(bands[:k]) == {"closer than 30 m"} and set(bands[k:]) == {"closer than 20 m"}
    assert 20 <= k <= 20 + 16  # the frames already past the depth stage (block policy: queues of 4) keep theirs
    assert summary.layout == "parallel then serial"
    assert summary.band == "closer than 30 m at the start, closer than 20 m at the end (changed while running)"
    after = [d for r in records[k:] for d in r["detections"]]
    shown = [d["depth_filtered_m"] if d["depth_filtered_m"] is not None else d["depth_m"] for d in after]
    assert after and all(m < 20 for m in shown)
    before = [d["depth_filtered_m"] or d["depth_m"] for r in records[:k] for d in r["detections"]]
    assert any(m >= 20 for m in before)  # the change mattered: the old band held farther people


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_on_a_live_source_a_change_reaches_the_next_frames(tmp_path):
    """Paced at 10 fps (a camera: the latest policy, at most two frames in flight): a band changed while frame n is
    written holds from frame n + 1 or n + 2 on."""
    cfg = load_config(overrides={"band.closer_than": 30.0, "output.jsonl": str(tmp_path / "live.jsonl")})
    control = RuntimeControl.from_config(cfg)

    def on_frame(done, total):
        if done == 15:
            control.update(closer_than=25)

    run(cfg, source=LoopSource("demo", 40, pace_fps=10), control=control, on_frame=on_frame)
    bands = [r["band"] for r in _records(tmp_path / "live.jsonl")]
    k = bands.index("closer than 25 m")
    assert set(bands[k:]) == {"closer than 25 m"} and 15 <= k <= 15 + 2, bands



@pytest.mark.timeout(30)
def test_the_upload_worker_is_bounded_runs_below_the_pipeline_and_cancels_what_waits_on_close():
    import os

    from stream.pipeline.jobs import Busy, JobWorker

    started, release = threading.Event(), threading.Event()

    def slow():
        started.set()
        release.wait(10)
        return os.getpriority(os.PRIO_PROCESS, 0)  # Linux: this thread's own nice value

    base = os.getpriority(os.PRIO_PROCESS, 0)
    with JobWorker("uploads", maxsize=1) as worker:
        running = worker.submit(slow)
        assert started.wait(5)
        waiting = worker.submit(lambda: 1 / 0)
        with pytest.raises(Busy, match=r"^uploads has 1 jobs waiting$"):
            worker.submit(lambda: None)
        release.set()
        assert running.result(10) == min(19, base + 10)
        with pytest.raises(ZeroDivisionError):
            waiting.result(10)
    started.clear()
    release.clear()
    worker = JobWorker("uploads", maxsize=1).start()
    running = worker.submit(slow)
    assert started.wait(5)
    waiting = worker.submit(lambda: 2)
    threading.Timer(0.2, release.set).start()
    worker.close()
    assert waiting.cancelled() and running.done()
    with pytest.raises(Busy, match="is closed"):
        worker.submit(lambda: 3)


def test_a_run_without_a_depth_map_cannot_switch_to_the_serial_layout():
    cfg = load_config(overrides={"depth.source": "size-prior", "band.closer_than": 30.0})
    control = RuntimeControl.from_config(cfg)
    assert control.layouts == ("parallel",)
    with pytest.raises(ConfigError, match=r"^layout: serial is not possible in this run: the serial layout masks the "
                                          r"frame by a depth map, and depth.source size-prior gives none$"):
        control.update(layout="serial")
    assert control.update(closer_than=20).layout == "parallel"
