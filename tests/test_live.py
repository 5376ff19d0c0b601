"""Live feeds: stop() never waits on a blocked read, drops are counted and reported, a lost feed is
reconnected while the MP4 goes on, SIGTERM finishes the outputs, and no thread outlives a run."""

from __future__ import annotations

import dataclasses
import json
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from fractions import Fraction

import av
import numpy as np
import pytest

from stream.__main__ import format_summary
from stream.app import run
from depthstream.schema.config import load_config
from depthstream.errors import SourceError
from stream.pipeline import Pipeline, Stages
from depthstream.schema.config import SourceConfig
from stream.sources import ReconnectingSource, Source

from conftest import ROOT, start_demo_run


def _stages() -> Stages:
    return Stages(depth=lambda r: r, detect=lambda r: r, finish=lambda r: r)


def _stream_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("stream-") and t.is_alive()]


class Stalls(Source):
    """Delivers ``n`` frames, then blocks in read() like a camera whose cable was pulled. With
    ``close_unblocks`` a close() from another thread ends the read (as it ends a reconnect wait);
    without it nothing ends it (a C call that ignores everything) until the test calls ``release``."""

    live = True

    def __init__(self, n: int, close_unblocks: bool) -> None:
        super().__init__("stall://")
        self.n, self.close_unblocks = n, close_unblocks
        self.unblock = threading.Event()
        self.blocked = threading.Event()

    def read(self):
        if self._index >= self.n:
            self.blocked.set()
            self.unblock.wait(60)
            return None
        return self._frame(np.zeros((4, 4, 3), np.uint8), None)

    def close(self) -> None:
        if self.close_unblocks:
            self.unblock.set()

    def release(self) -> None:
        self.unblock.set()


@pytest.mark.timeout(20)
@pytest.mark.parametrize("layout", ["serial", "parallel"])
def test_stop_returns_within_1s_while_the_producer_blocks_and_no_thread_is_left(layout):
    src = Stalls(5, close_unblocks=True)
    p = Pipeline(src, _stages(), layout=layout, policy="block", queue_size=2, timeout_s=0.05)
    got, timings = [], []

    def stop() -> None:  # from another thread, as a signal handler or a GUI would
        assert src.blocked.wait(10)
        t0 = time.monotonic()
        timings.append(p.stop())
        timings.append(time.monotonic() - t0)

    stopper = threading.Thread(target=stop)
    for r in p.results():
        got.append(r.frame.index)
        if r.frame.index == 4:
            stopper.start()
    stopper.join(5)
    assert got == [0, 1, 2, 3, 4]
    ended, took = timings
    assert took < 1.0 and ended  # close() ended the blocked read, so every thread is gone
    assert _stream_threads() == []


@pytest.mark.timeout(20)
def test_stop_returns_within_1s_even_when_the_read_never_returns():
    src = Stalls(3, close_unblocks=False)
    p = Pipeline(src, _stages(), layout="parallel", policy="block", queue_size=2, timeout_s=0.05)
    gen = p.results()
    try:
        assert [next(gen).frame.index for _ in range(3)] == [0, 1, 2]
        assert src.blocked.wait(5)
        t0 = time.monotonic()
        ended = p.stop()
        took = time.monotonic() - t0
        assert took < 1.0 and not ended
        # Only the reader is left, inside read(); it is a daemon, so it cannot hold up the exit.
        left = [t for t in threading.enumerate() if t.name.startswith("stream-") and t.is_alive()]
        assert [t.name for t in left] == ["stream-reader"] and left[0].daemon
        assert list(gen) == []  # the consumer's loop ends too
    finally:
        src.release()
    for t in threading.enumerate():
        if t.name == "stream-reader":
            t.join(5)
    assert _stream_threads() == []


@pytest.mark.timeout(30)
def test_a_reader_stuck_for_ever_does_not_keep_the_process_alive():
    script = textwrap.dedent("""
        import threading, numpy as np
        from stream.pipeline import Pipeline, Stages
        from stream.sources import Source

        class Forever(Source):
            live = True
            def read(self):
                if self._index < 3:
                    return self._frame(np.zeros((4, 4, 3), np.uint8), None)
                threading.Event().wait()  # never returns, and close() does not help

        p = Pipeline(Forever("forever://"), Stages(lambda r: r, lambda r: r, lambda r: r), layout="serial", policy="latest")
        for r in p.results():
            if r.frame.index == 2:
                break
        print("left the loop")
    """)
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=25)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "left the loop"
    assert time.monotonic() - t0 < 10


# -- through the whole app, with the real detector --------------------------------------------------


class Camera(Source):
    """A live feed of the demo's frames at ``fps``; ends after ``limit`` frames (None: endless like a
    camera); lost once after ``lose_after`` frames, when the first ``refuse`` reopen attempts fail."""

    live = True

    def __init__(self, frames: list[np.ndarray], fps: float, limit: int | None = None, lose_after: int | None = None, refuse: int = 0) -> None:
        super().__init__("rtsp://viewer:topsecret@127.0.0.1:9/cam")
        self.frames, self.rate, self.limit = frames, fps, limit
        self.lose_after, self.refuse = lose_after, refuse
        self.opens = 0
        self.served = 0
        self._t0 = 0.0

    @property
    def fps(self):
        return Fraction(self.rate).limit_denominator(1001)

    def open(self):
        self.opens += 1
        if 1 < self.opens <= 1 + self.refuse:
            raise SourceError(f"cannot connect to {self.source_id}: connection refused")
        self._t0 = time.monotonic()
        self._index = 0
        return self

    def read(self):
        if self.limit is not None and self.served >= self.limit:
            return None
        if self.lose_after is not None and self.opens == 1 and self._index >= self.lose_after:
            raise SourceError(f"decoding {self.source_id} failed: Connection reset by peer")
        due = self._t0 + self._index / self.rate
        time.sleep(max(0.0, due - time.monotonic()))
        self.served += 1
        return self._frame(self.frames[self.served % len(self.frames)], self._index / self.rate)


def _cfg(tmp_path, **sets):
    items = [f"{k}={v}" for k, v in sets.items()]
    return load_config(sets=items, overrides={"output.mp4": str(tmp_path / "live.mp4"), "output.jsonl": str(tmp_path / "live.jsonl")})


def _mp4_frames(path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]


@pytest.mark.timeout(120)
def test_latest_policy_counts_every_dropped_frame_and_reports_frame_age(tmp_path, demo_frames):
    # 200 fps (5 ms a frame) is faster than the detector on a 2-core CPU (YOLOX-Nano about 15 ms): frames must be
    # dropped, never queued up.
    src = Camera(demo_frames, fps=200, limit=120)
    summary = run(_cfg(tmp_path), source=src)
    assert summary.policy == "latest" and summary.dropped > 0
    assert summary.frames + summary.dropped == src.served == 120
    recs = [json.loads(x) for x in (tmp_path / "live.jsonl").read_text().splitlines()]
    idx = [r["index"] for r in recs]
    assert sum(b - a - 1 for a, b in zip(idx, idx[1:])) + idx[0] + (119 - idx[-1]) == summary.dropped
    assert all(r["age_ms"] > 0 for r in recs)
    # the newest frame is processed: frame age stays near one frame's processing, it does not grow
    assert summary.age_percentiles((99,))[0] < 1000
    text = format_summary(summary)
    assert f"dropped frames (live source, newest kept): {summary.dropped}" in text
    assert "frame age" in text and "p99" in text
    assert _stream_threads() == []


@pytest.mark.timeout(120)
def test_a_lost_feed_is_reconnected_and_the_mp4_goes_on_without_black_frames(tmp_path, demo_frames):
    inner = Camera(demo_frames, fps=20, lose_after=15, refuse=2)
    src = ReconnectingSource(inner, SourceConfig(reconnect_backoff_s=0.1, reconnect_backoff_max_s=0.2))
    summary = run(_cfg(tmp_path, **{"pipeline.policy": "block", "source.max_frames": 40}), source=src)
    assert inner.opens == 4
    assert summary.outages == 1 and 0.3 <= summary.outage_s < 5
    recs = [json.loads(x) for x in (tmp_path / "live.jsonl").read_text().splitlines()]
    idx = [r["index"] for r in recs]
    assert len(recs) == summary.frames == 40  # block policy: every frame that came is processed
    assert idx[:15] == list(range(15)) and idx[15] > 15 + 4  # > 0.4 s at 20 fps were missed: the gap shows
    assert idx[15:] == list(range(idx[15], idx[15] + 25))
    assert recs[15]["pts_s"] - recs[14]["pts_s"] > 0.3  # and so does media time
    frames = _mp4_frames(tmp_path / "live.mp4")
    assert len(frames) == 40  # the MP4 went on through the outage: one frame per processed frame
    assert min(float(f.mean()) for f in frames) > 40  # and none of them is a black stand-in
    assert "topsecret" not in (tmp_path / "live.jsonl").read_text() and recs[0]["source"] == "rtsp://***@127.0.0.1:9/cam"
    assert "source outages: 1," in format_summary(summary)
    assert _stream_threads() == []


@pytest.mark.timeout(120)
def test_sigterm_finishes_the_mp4_and_exits_143(tmp_path):
    mp4, jsonl = tmp_path / "term.mp4", tmp_path / "term.jsonl"
    proc = start_demo_run(mp4, jsonl)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - t0 < 5
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1] == f"terminated (SIGTERM); outputs closed: {mp4} {jsonl}"
    assert "stopped by SIGTERM" in out.splitlines()[0]  # the summary of what was done is still printed
    assert "Traceback" not in err
    written = len(jsonl.read_text().splitlines())
    assert 10 <= written < 150
    assert len(_mp4_frames(mp4)) == written  # playable, with every processed frame


def test_summary_reports_drops_and_outages_for_live_runs():
    from stream.app import Summary, sketch

    detect, ages = sketch(), sketch()
    for v in (1.0, 2.0, 3.0):
        detect.add(v)
    for v in (10.0, 20.0, 300.0):
        ages.add(v)
    s = Summary(frames=3, wall_s=1.0, policy="latest", dropped=0, outages=2, outage_s=3.25,
                timings={"detect": detect}, ages_ms=ages)
    text = format_summary(s)
    assert "dropped frames (live source, newest kept): 0" in text
    assert "source outages: 2, 3.2 s without frames in all" in text
    p99 = float(re.search(r"p99 ([\d.]+)", text).group(1))
    # the sketch's quantile is the sample at rank floor(q (n - 1)) (numpy's "lower"), within 1 %
    assert p99 == pytest.approx(np.percentile([10.0, 20.0, 300.0], 99, method="lower"), rel=0.01)
    assert "dropped" not in format_summary(dataclasses.replace(s, policy="block"))
