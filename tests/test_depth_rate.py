"""depth.every: the network on every Nth frame, the frames between reusing its map (its age in the JSONL, not a
measurement for the track filter), and ``auto``, which lowers the depth rate only while a live source outruns
the pipeline."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from depthstream.schema.config import load_config
from depthstream.types import DepthMap, Detections, Frame, Result
from stream.__main__ import main
from stream.app import make_stages
from stream.control import RuntimeControl
from stream.depth import DepthProvider, DepthRate
from stream.depth.rate import HOLD_WINDOWS
from stream.pipeline import Pipeline
from stream.sources import Source
from stream.track import TrackStage


def frame(index: int, t_s: float, size: tuple[int, int] = (8, 8)) -> Frame:
    return Frame(np.zeros((*size, 3), np.uint8), index, None, int(t_s * 1e9), "test")


def depth_map(metres: float, size: tuple[int, int] = (8, 8)) -> DepthMap:
    return DepthMap(np.full(size, metres, np.float32), "test", "metric")


def test_every_n_runs_on_every_nth_processed_frame_and_counts_it():
    rate = DepthRate(3)
    last = None
    runs = []
    for i in range(10):
        f = frame(i, i / 10)
        due = rate.due(f, last)
        runs.append(due)
        if due:
            last = depth_map(1.0).stamped(f)
    assert runs == [True, False, False] * 3 + [True]
    assert (rate.runs, rate.reused, dict(rate.frames_at)) == (4, 6, {3: 10})
    assert rate.describe() == "every 3rd frame"


def test_a_map_of_another_size_or_a_folder_of_pictures_always_gets_its_own_map():
    rate = DepthRate(5)
    last = depth_map(1.0).stamped(frame(0, 0))
    assert rate.due(frame(1, 0.1, (16, 8)), last)  # another size: the old map does not fit
    stills = DepthRate(5, stills=True)
    assert all(stills.due(frame(i, i), last) for i in range(4))


def test_auto_on_a_file_runs_the_network_on_every_frame():
    rate = DepthRate("auto", 4, live=False, window_s=0.5)
    last = depth_map(1.0).stamped(frame(0, 0))
    # even with gaps in the indices (not drops: a file waits for the pipeline) nothing changes
    assert all(rate.due(frame(3 * i, i / 50), last) for i in range(200))
    assert rate.describe() == "auto (every frame: the source is not live)"


def simulate(rate: DepthRate, seconds: float, keeps_up_at: int, fps: float = 50.0) -> list[tuple[float, int]]:
    """A live source at ``fps`` and a pipeline that keeps up once the network runs on every ``keeps_up_at``-th
    frame and processes every 2nd frame below that (the others dropped). Returns each change of N: (time s, N)."""
    last = depth_map(1.0).stamped(frame(0, 0.0))
    changes, index = [], 0
    while index < seconds * fps:
        every = rate.every
        rate.due(frame(index, index / fps), last)
        if rate.every != every:
            changes.append((index / fps, rate.every))
        index += 1 if rate.every >= keeps_up_at else 2
    return changes


def test_auto_lowers_the_depth_rate_only_as_much_as_needed_and_tries_the_higher_rate_less_often():
    rate = DepthRate("auto", 4, live=True, window_s=0.5)
    changes = simulate(rate, 40.0, keeps_up_at=2)
    assert changes[0] == (pytest.approx(0.5, abs=0.05), 2)  # the first window dropped half the frames
    assert {n for _, n in changes} == {1, 2}  # never every 3rd or 4th: every 2nd keeps up
    tries = [t for t, n in changes if n == 1]
    waits = np.diff(tries)
    # each failed try of every frame doubles the wait before the next (windows of 0.5 s, give or take one)
    assert len(tries) >= 4 and all(b > 1.7 * a for a, b in zip(waits, waits[1:])), tries
    assert waits[0] == pytest.approx(0.5 * (2 * HOLD_WINDOWS + 1), abs=0.6)
    # time spent dropping frames at every frame after the first window: each try lasts one window
    assert len(tries) * 0.5 < 0.15 * 40
    assert rate.describe() == "auto (live: every frame up to every 4th frame)"


def test_auto_goes_back_to_every_frame_once_the_pipeline_keeps_up_and_stops_at_every_max():
    rate = DepthRate("auto", 3, live=True, window_s=0.5)
    changes = simulate(rate, 3.0, keeps_up_at=99)  # nothing keeps up: every_max, no further
    assert [n for _, n in changes] == [2, 3] and rate.every == 3
    rate = DepthRate("auto", 3, live=True, window_s=0.5)
    simulate(rate, 1.2, keeps_up_at=3)
    assert rate.every == 3
    changes = simulate(rate, 10.0, keeps_up_at=1)  # the source slowed down or the scene got simpler
    assert [n for _, n in changes] == [2, 1] and rate.every == 1


def test_a_reused_map_is_not_a_measurement_for_the_track_filter():
    cfg = load_config()
    box = np.array([[2, 2, 6, 7]], np.float32)

    def result(index: int, map_index: int, metres: float) -> Result:
        f = frame(index, index / 10)
        dm = depth_map(metres).stamped(frame(map_index, map_index / 10))
        dets = Detections(box, [0.9], [0], depth_m=[metres], depth_valid_frac=[1.0], depth_spread_m=[0.0])
        return Result(frame=f, depth=dm, detections=dets)

    def run(last_map_index: int) -> tuple[float, TrackStage]:
        stage = TrackStage(cfg.track, cfg.events, cfg.band, live=False, fps=10)
        for i in range(6):
            stage(result(i, i, 5.0))
        # the next frame reads 9 m off a map: its own (a measurement, an outlier here) or frame 5's (not one)
        out = stage(result(6, last_map_index, 9.0))
        return float(out.detections.depth_filtered_m[0]), stage

    filtered_fresh, fresh = run(6)
    filtered_reused, reused = run(5)
    assert (fresh.stats.measured, fresh.stats.predicted) == (7, 0)
    assert (reused.stats.measured, reused.stats.predicted) == (6, 1)  # predicted across, not measured
    assert filtered_reused == pytest.approx(5.0, abs=0.05)
    assert fresh.stats.rejected == 1 and reused.stats.rejected == 0


class PacedCamera(Source):
    """A live source: ``n`` small frames at ``fps``, stamped when handed out."""

    live = True

    def __init__(self, n: int, fps: float) -> None:
        super().__init__("paced://")
        self.n, self.rate = n, fps
        self._t0: float | None = None

    def read(self):
        if self._index >= self.n:
            return None
        if self._t0 is None:
            self._t0 = time.monotonic()
        delay = self._t0 + self._index / self.rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        return self._frame(np.zeros((8, 8, 3), np.uint8), None)


class SlowDepth(DepthProvider):
    """A depth network that takes ``seconds`` per frame: slower than the camera's frame interval."""

    source, kind = "slow", "metric"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls = 0

    def __call__(self, f: Frame) -> DepthMap:
        self.calls += 1
        time.sleep(self.seconds)
        return depth_map(3.0, (f.height, f.width))


@pytest.mark.timeout(60)
def test_auto_keeps_up_with_a_live_source_without_dropping_the_depth_rate_further_than_needed():
    # depth takes 140 ms, the camera gives a frame every 100 ms: every frame cannot keep up (about 30 % of the
    # frames dropped), every 2nd frame (70 ms a frame on average) can, with 30 ms to spare on a busy machine;
    # windows of 2 s (20 frames: one late frame now and then is within the tolerance)
    cfg = load_config(sets=["depth.every=auto", "depth.every_max=4"])
    depth = SlowDepth(0.14)
    rate = DepthRate("auto", 4, live=True, window_s=2.0)

    def detect(image):
        return Detections.empty(), {}

    stages = make_stages(cfg, depth, detect, "center_mean", rate=rate)
    src = PacedCamera(120, 10.0).open()
    results = list(Pipeline(src, stages, layout="parallel", policy="latest").results())
    ages = [r.depth.age(r.frame)[0] for r in results]
    at = rate.frames_at
    assert at[1] < at[2] + at[3] and at[4] == 0, at  # mostly every 2nd (3rd after a slow spell), never every_max
    assert depth.calls == rate.runs < len(results) and max(ages) >= 1
    # after the first window the pipeline keeps up, but for the one window that tries every frame again
    late = [r.frame.index for r in results if r.frame.index >= 20]
    assert len(late) >= 0.85 * 100, f"{len(late)} of the last 100 frames processed, counts {at}"


@pytest.mark.timeout(300)
def test_every_3_on_the_demo_clip_with_fastdepth_writes_each_maps_age(tmp_path, capsys):
    jsonl = tmp_path / "every3.jsonl"
    code = main(["--source", "demo", "--depth-model", "models/fastdepth_224_nyu.yaml", "--set", "depth.every=3",
                 "--max-frames", "30", "--jsonl", str(jsonl)])
    out = capsys.readouterr().out
    assert code == 0
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [r["depth"]["age_frames"] for r in lines] == [0, 1, 2] * 10
    assert [r["depth"]["map_index"] for r in lines] == [3 * (i // 3) for i in range(30)]
    assert [r["depth"]["age_ms"] for r in lines[:3]] == [0.0, 100.0, 200.0]  # the clip's media time, 10 fps
    # the network's time is only on the frames it ran on
    assert ["depth" in r["timings_ms"] for r in lines] == [True, False, False] * 10
    # a box on a reused map has the distance read off that map; the frames' boxes are all there
    assert all(r["detections"] for r in lines)
    assert "depth rate: every 3rd frame: the network ran on 10 frames, 20 reused its last map" in out


def test_a_reused_map_gets_the_mask_of_the_band_in_force_when_the_band_changes():
    class Halves(DepthProvider):  # left half 1 m, right half 5 m
        source, kind = "test", "metric"

        def __init__(self):
            self.calls = 0

        def __call__(self, f):
            self.calls += 1
            metres = np.full((f.height, f.width), 5.0, np.float32)
            metres[:, : f.width // 2] = 1.0
            return DepthMap(metres, "test", "metric")

    cfg = load_config(sets=["band.closer_than=2", "pipeline.layout=parallel"])
    control = RuntimeControl.from_config(cfg)
    depth = Halves()
    stages = make_stages(cfg, depth, lambda image: (Detections.empty(), {}), "center_mean", control=control,
                         rate=DepthRate(4))
    masks = []
    for i in range(4):
        if i == 2:
            control.update(closer_than=None, further_than=2.0)  # the band flips while frame 0's map is reused
        masks.append(stages.depth(Result(frame(i, i / 10))).mask)
    assert depth.calls == 1
    assert [m[:, :4].all() and not m[:, 4:].any() for m in masks[:2]] == [True, True]  # closer than 2 m: the left
    assert [not m[:, :4].any() and m[:, 4:].all() for m in masks[2:]] == [True, True]  # further than 2 m: the right
