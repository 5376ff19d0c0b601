"""The MP4 plays at real speed (issue 11, finding 8): presentation times come from media time (files) or capture time
(live feeds), strictly increasing, and the MP4 lasts the time its frames cover, within 5 %; read back with PyAV."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from fractions import Fraction

import numpy as np
import pytest

from depthstream.errors import SourceError
from depthstream.schema.config import SourceConfig, load_config
from stream.app import run
from stream.sources import ReconnectingSource, Source

from conftest import ROOT
from media import avi_with_b_frames, mp4_facts, source_duration_s, source_times

pytestmark = pytest.mark.slow


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stream", *args, "--quiet"], cwd=ROOT, capture_output=True, text=True,
                          timeout=150)


def _strictly_increasing(times: list[float]) -> bool:
    return all(b > a for a, b in zip(times, times[1:]))


@pytest.mark.timeout(180)
def test_a_file_plays_for_as_long_as_the_source(tmp_path):
    out = tmp_path / "demo.mp4"
    r = _cli("--source", "demo", "--output", str(out))
    assert r.returncode == 0, r.stderr
    facts = mp4_facts(out)
    assert facts.frames == 150 and _strictly_increasing(facts.times_s)
    assert facts.times_s[0] == 0.0
    assert facts.duration_s == pytest.approx(15.0, rel=0.05)  # 150 frames at 10 fps
    assert np.diff(facts.times_s) == pytest.approx(0.1, abs=1e-3)


@pytest.mark.timeout(180)
def test_an_avi_whose_timestamps_go_backwards_plays_at_its_own_speed(tmp_path):
    avi = avi_with_b_frames(tmp_path / "b_frames.avi", frames=100, fps=25)
    raw = source_times(avi)
    assert sum(b <= a for a, b in zip(raw, raw[1:])) >= 15  # what FFmpeg hands out goes backwards again and again
    out, jsonl = tmp_path / "avi.mp4", tmp_path / "avi.jsonl"
    r = _cli("--source", str(avi), "--output", str(out), "--jsonl", str(jsonl))
    assert r.returncode == 0, r.stderr
    facts = mp4_facts(out)
    assert facts.frames == 100 and _strictly_increasing(facts.times_s)
    assert facts.duration_s == pytest.approx(source_duration_s(avi), rel=0.05)  # 4 s, not 2 and not 8
    pts = [json.loads(x)["pts_s"] for x in jsonl.read_text().splitlines()]
    assert sum(b < a for a, b in zip(pts, pts[1:])) == 0  # the JSONL's media times no longer go backwards


class PacedCamera(Source):
    """A live feed of ``frames`` images at ``fps``, paced by the clock and stamped at hand-out like a camera's
    frames; it stops delivering for ``outage_s`` after ``lose_after`` frames (then a reopen brings it back)."""

    live = True

    def __init__(self, images: list[np.ndarray], frames: int, fps: float, *, lose_after: int | None = None,
                 outage_s: float = 0.0) -> None:
        super().__init__("paced://camera")
        self.images, self.total, self.rate, self.lose_after, self.outage_s = images, frames, fps, lose_after, outage_s
        self.served = 0
        self.opens = 0
        self._next = 0.0

    @property
    def fps(self) -> Fraction:
        return Fraction(self.rate).limit_denominator(1001)

    def open(self) -> "PacedCamera":
        self.opens += 1
        if self.opens > 1:
            time.sleep(self.outage_s)  # the camera comes back after the outage
        self._next = time.monotonic()
        return self

    def read(self):
        if self.served >= self.total:
            return None
        if self.opens == 1 and self.served == self.lose_after:
            raise SourceError("paced://camera stopped delivering frames")
        time.sleep(max(0.0, self._next - time.monotonic()))
        self._next += 1 / self.rate
        self.served += 1
        return self._frame(self.images[self.served % len(self.images)], None)


def _live_cfg(tmp_path, *sets: str):
    return load_config(sets=["pipeline.policy=latest", *sets], overrides={"output.mp4": str(tmp_path / "live.mp4")})


class Captured:
    """``run(on_result=...)``: when the first and the last frame written were captured."""

    def __init__(self) -> None:
        self.first_ns = self.last_ns = None

    def __call__(self, res, age_ms) -> None:
        self.first_ns = self.first_ns or res.frame.captured_ns
        self.last_ns = res.frame.captured_ns

    def covered_s(self, fps: float) -> float:
        return (self.last_ns - self.first_ns) / 1e9 + 1 / fps  # the last frame is shown for one frame


@pytest.mark.timeout(120)
def test_a_live_feed_with_dropped_frames_plays_in_real_time(tmp_path, demo_frames):
    cam = PacedCamera(demo_frames, frames=400, fps=100)  # 4 s at 100 fps: faster than the detector, frames are dropped
    captured = Captured()
    summary = run(_live_cfg(tmp_path), source=cam, on_result=captured)
    assert summary.dropped > 100
    facts = mp4_facts(tmp_path / "live.mp4")
    assert facts.frames == summary.frames and _strictly_increasing(facts.times_s)
    assert captured.covered_s(100) > 3.5
    assert facts.duration_s == pytest.approx(captured.covered_s(100), rel=0.05)  # 4 s, however many were dropped


@pytest.mark.timeout(120)
def test_an_outage_of_a_live_feed_stays_in_the_video(tmp_path, demo_frames):
    cam = PacedCamera(demo_frames, frames=10_000, fps=20, lose_after=20, outage_s=1.5)  # source.max_frames ends it
    src = ReconnectingSource(cam, SourceConfig(reconnect_backoff_s=0.1, reconnect_backoff_max_s=0.2))
    captured = Captured()
    summary = run(_live_cfg(tmp_path, "source.max_frames=50"), source=src, on_result=captured)
    assert summary.outages == 1
    facts = mp4_facts(tmp_path / "live.mp4")
    gaps = np.diff(facts.times_s)
    assert gaps.max() > 1.5  # the outage shows as the last frame held for as long as it lasted
    assert facts.duration_s == pytest.approx(captured.covered_s(20), rel=0.05)
