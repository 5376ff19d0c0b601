"""Several sources in one process (issue 17, item 1): the shared models (engines/shared.py) on the real models, the
names of the sources' outputs, and the real CLI on the bundled clip and copies of it (stream/multi.py): outputs per
source with the detections of a single-source run, one source failing while the others finish, signals.
The same through a real Triton server: tests/test_triton.py."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from export.batch_axis import free_batch_axis
from conftest import DEMO, FASTDEPTH, FASTDEPTH_CARD, ROOT, YOLOX
from depthstream.errors import ConfigError
from depthstream.schema.config import DetectConfig
from depthstream.types import Frame
from engines.backends import EngineOptions
from engines.ort import OrtEngine
from engines.shared import EnginePool
from media import demo_cut_short, mp4_facts
from stream.depth import open_depth_model
from stream.detect import Detector
from stream.multi import source_name, source_names

CAMERAS = 3


# -- names of the outputs ------------------------------------------------------------------------------------


def test_each_source_gets_a_safe_file_name_without_credentials():
    assert source_name("demo") == "demo"
    assert source_name("/data/cams/door.mp4") == "door"
    assert source_name("0") == "camera0"
    assert source_name("/dev/video2") == "video2"
    assert source_name("frames/*.jpg") == "frames"
    assert source_name("rtsp://admin:s3cret@10.0.0.7:554/live/ch1?token=abc") == "10.0.0.7_554_live_ch1"
    assert source_name("rtsp://bob:p@ss@cam/1") == "cam_1"  # a password with an @ in it (FFmpeg accepts it)
    assert source_names(["/a/door.mp4", "/b/door.mp4", "/c/Door.mp4"]) == ["door", "door_2", "Door_3"]
    with pytest.raises(ConfigError, match=r"--source rtsp://\*\*\*@cam/1 is given twice: each source is read once"):
        source_names(["rtsp://u:pw@cam/1", "demo", "rtsp://u:pw@cam/1"])


# -- shared models -------------------------------------------------------------------------------------------


def _cameras(n: int, rounds: int, call) -> dict[tuple[int, int], object]:
    """``n`` threads ("cameras"), each calling ``call(camera, round)`` once per round, all at the same moment."""
    barrier = threading.Barrier(n)
    results: dict[tuple[int, int], object] = {}
    errors: list[BaseException] = []

    def camera(i: int) -> None:
        try:
            for k in range(rounds):
                barrier.wait(30)
                results[i, k] = call(i, k)
        except BaseException as exc:  # noqa: BLE001 -- re-raised in the test's thread below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=camera, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]
    return results


@pytest.mark.timeout(120)
def test_yolox_with_a_free_batch_axis_gets_the_frames_of_several_cameras_in_one_call(tmp_path, demo_frames):
    freed = free_batch_axis(YOLOX, tmp_path / "yolox_nano.onnx")
    pool = EnginePool(max_wait_s=1.0)  # long enough that the three cameras surely meet, on a busy machine too
    options = EngineOptions("ort-cpu", pool=pool)
    detectors = [Detector.from_path(freed, DetectConfig(), engine=options) for _ in range(CAMERAS)]
    assert len({id(d.engine) for d in detectors}) == 1 and len(pool.engines) == 1  # one model in the process
    for d in detectors:
        d.open()
    shared = detectors[0].engine
    assert shared.batching and shared.inner.inputs["images"].shape == (None, 3, 416, 416)
    assert shared.inputs["images"].shape == (1, 3, 416, 416)  # each camera sees a model of batch 1
    got = _cameras(CAMERAS, 3, lambda i, k: detectors[i](demo_frames[CAMERAS * k + i])[0])
    with Detector.from_path(YOLOX, DetectConfig()) as alone:  # the shipped model, one frame at a time
        boxes = 0
        for (i, k), dets in got.items():
            want, _ = alone(demo_frames[CAMERAS * k + i])
            assert np.array_equal(dets.class_id, want.class_id)
            np.testing.assert_allclose(dets.xyxy, want.xyxy, atol=1e-2)  # pixels
            np.testing.assert_allclose(dets.confidence, want.confidence, atol=1e-4)
            boxes += len(dets)
    assert boxes >= 5 * len(got)  # a busy walkway: real boxes were compared
    assert shared.stats.calls == 9 and shared.stats.runs < 9 and shared.stats.largest == CAMERAS
    for d in detectors:
        d.close()
    assert not shared.inner.is_open  # the last camera's close frees the model


@pytest.mark.timeout(120)
def test_fastdepth_with_a_free_batch_axis_gives_each_camera_the_map_it_gets_alone(tmp_path, demo_frames):
    free_batch_axis(FASTDEPTH, tmp_path / "fastdepth_batched.onnx")
    card = tmp_path / "fastdepth_batched.yaml"
    card.write_text(FASTDEPTH_CARD.read_text().replace("model: fastdepth_224_nyu.onnx", "model: fastdepth_batched.onnx"))
    pool = EnginePool(max_wait_s=1.0)
    providers = [open_depth_model(card, engine_options=EngineOptions("ort-cpu", pool=pool)) for _ in range(CAMERAS)]
    for p in providers:
        p.open()
    shared = providers[0].engine
    assert all(p.engine is shared for p in providers) and shared.batching
    frame = lambda i, k: Frame(demo_frames[CAMERAS * k + i], CAMERAS * k + i, None, 0, f"cam{i}")  # noqa: E731
    got = _cameras(CAMERAS, 2, lambda i, k: providers[i](frame(i, k)).metres)
    with open_depth_model(FASTDEPTH_CARD) as alone:
        for (i, k), metres in got.items():
            want = alone(frame(i, k)).metres
            assert metres.shape == want.shape == demo_frames[0].shape[:2]
            np.testing.assert_allclose(metres, want, atol=1e-4)  # metres
    assert shared.stats.calls == 6 and shared.stats.runs < 6
    for p in providers:
        p.close()


class _Watched(OrtEngine):
    """ONNX Runtime, noting how many calls run at the same moment."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.active = self.most = 0
        self.lock = threading.Lock()

    def _infer(self, feeds):
        with self.lock:
            self.active += 1
            self.most = max(self.most, self.active)
        try:
            time.sleep(0.01)  # widen the window in which a second call could slip in
            return super()._infer(feeds)
        finally:
            with self.lock:
                self.active -= 1


@pytest.mark.timeout(120)
def test_the_shipped_yolox_has_a_fixed_batch_so_the_cameras_calls_run_one_at_a_time(demo_frames):
    pool = EnginePool(lambda path, options, threads, shapes: _Watched(path, threads=threads))
    options = EngineOptions("ort-cpu", pool=pool)
    detectors = [Detector.from_path(YOLOX, DetectConfig(), engine=options).open() for _ in range(CAMERAS)]
    shared = detectors[0].engine
    assert not shared.batching and shared.inputs == shared.inner.inputs
    got = _cameras(CAMERAS, 2, lambda i, k: detectors[i](demo_frames[CAMERAS * k + i])[0])
    assert shared.inner.most == 1  # never two calls at once
    assert shared.stats.calls == shared.stats.runs == 6
    with Detector.from_path(YOLOX, DetectConfig()) as alone:
        for (i, k), dets in got.items():
            want, _ = alone(demo_frames[CAMERAS * k + i])
            np.testing.assert_allclose(dets.xyxy, want.xyxy, atol=1e-3)
    for d in detectors:
        d.close()
    assert not shared.inner.is_open


# -- the CLI -------------------------------------------------------------------------------------------------


def stream(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stream", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def same_detections(a: list[dict], b: list[dict]) -> int:
    """Frame by frame the same boxes, classes and metres; returns how many boxes were compared."""
    assert [r["index"] for r in a] == [r["index"] for r in b]
    boxes = 0
    for ra, rb in zip(a, b):
        da, db = ra["detections"], rb["detections"]
        assert [d["class"] for d in da] == [d["class"] for d in db], ra["index"]
        for x, y in zip(da, db):
            np.testing.assert_allclose(x["box"], y["box"], atol=0.05)
            assert x["depth_m"] == pytest.approx(y["depth_m"], abs=1e-3)
        boxes += len(da)
    return boxes


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_three_sources_write_their_own_outputs_with_the_detections_of_a_run_of_each_alone(tmp_path):
    """The clip and two copies (each gets the clip's camera profile: it is recognised by its sha256) with the depth
    network forced, so both models are shared; each source's outputs equal a single-source run of the same file."""
    cams = [tmp_path / "in" / f"cam{i}.mp4" for i in (1, 2)]
    cams[0].parent.mkdir()
    for c in cams:
        shutil.copy(DEMO, c)
    common = ["--max-frames", "12", "--depth-model", "models/fastdepth_224_nyu.yaml", "--closer-than", "60"]
    out = tmp_path / "out"
    r = stream("--source", "demo", "--source", str(cams[0]), "--source", str(cams[1]), "--output-dir", str(out),
               *common)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["cam1.jsonl", "cam1.mp4", "cam2.jsonl", "cam2.mp4", "demo.jsonl",
                                                      "demo.mp4"]
    assert r.stdout.count("== ") == 3 and "== cam2: " + str(cams[1]) + " ==" in r.stdout
    assert "total: 3 sources (3 ok, 0 failed), 36 frames in " in r.stdout
    assert re.search(r"shared model yolox_nano\.onnx: 36 frames, 36 model runs, one frame each", r.stdout), r.stdout
    assert re.search(r"shared model fastdepth_224_nyu\.onnx: 36 frames", r.stdout), r.stdout
    assert r.stderr.count("shared model yolox_nano.onnx: fixed batch of 1") == 1  # loaded once for three cameras
    alone = tmp_path / "alone.jsonl"
    a = stream("--source", str(cams[1]), "--jsonl", str(alone), "--quiet", *common)
    assert a.returncode == 0, a.stderr
    want = records(alone)
    assert len(want) == 12
    for name in ("demo", "cam1", "cam2"):
        assert mp4_facts(out / f"{name}.mp4").frames == 12
        got = records(out / f"{name}.jsonl")
        assert got[0]["depth"]["source"] == "fastdepth-224-nyu"
        assert same_detections(got, want) >= 60


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_source_cut_short_fails_alone_the_others_finish_and_the_exit_code_is_1(tmp_path):
    cut, decodable = demo_cut_short(tmp_path, 1 / 3)
    assert 10 < decodable < 100
    out = tmp_path / "out"
    r = stream("--source", str(cut), "--source", "demo", "--output-dir", str(out), "--max-frames", "120")
    assert r.returncode == 1, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and re.fullmatch(
        rf"error: source cut \({re.escape(str(cut))}\): decoding .*cut\.mp4 failed at frame {decodable}: .* \(the "
        rf"outputs hold the {decodable} frames before it\)", errors[0]), r.stderr
    assert [x["index"] for x in records(out / "cut.jsonl")] == list(range(decodable))
    assert mp4_facts(out / "cut.mp4").frames == decodable
    assert [x["index"] for x in records(out / "demo.jsonl")] == list(range(120))  # the other source went on
    assert mp4_facts(out / "demo.mp4").frames == 120
    assert "total: 2 sources (1 ok, 1 failed)" in r.stdout and "FAILED: decoding" in r.stdout


def start_two(tmp_path: Path, out: Path) -> subprocess.Popen:
    """The clip and a copy of it (``copy``) to their ends, outputs under ``out``."""
    copy = tmp_path / "copy.mp4"
    shutil.copy(DEMO, copy)
    return subprocess.Popen([sys.executable, "-m", "stream", "--source", "demo", "--source", str(copy), "--output-dir",
                             str(out)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_every_source_at_a_frame_boundary_with_whole_outputs(tmp_path, signum):
    out = tmp_path / "out"
    proc = start_two(tmp_path, out)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if all((out / f"{n}.jsonl").exists() and len((out / f"{n}.jsonl").read_text().splitlines()) >= 5
                   for n in ("demo", "copy")):
                break
            time.sleep(0.05)
        proc.send_signal(signum)
        out_text, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == {signal.SIGINT: 130, signal.SIGTERM: 143}[signum], err
    assert "Traceback" not in err and "error:" not in err, err
    word = "interrupted" if signum == signal.SIGINT else "terminated (SIGTERM)"
    assert err.strip().splitlines()[-1].startswith(f"{word}; outputs closed: "), err
    assert ", 0 failed, 2 interrupted), " in out_text, out_text
    for name in ("demo", "copy"):
        written = len(records(out / f"{name}.jsonl"))
        assert 5 <= written < 150
        assert mp4_facts(out / f"{name}.mp4").frames == written  # each MP4 holds the frames of its JSONL


@pytest.mark.timeout(120)
def test_output_dir_with_one_source_names_the_outputs_after_it(tmp_path):
    r = stream("--source", "demo", "--output-dir", str(tmp_path / "out"), "--max-frames", "3", "--quiet")
    assert r.returncode == 0, r.stderr
    assert len(records(tmp_path / "out" / "demo.jsonl")) == 3 and mp4_facts(tmp_path / "out" / "demo.mp4").frames == 3


@pytest.mark.timeout(240)
def test_bench_multi_reports_total_and_per_camera_fps_and_how_the_detector_was_called(tmp_path, capsys):
    from bench.__main__ import main as bench_main

    assert bench_main(["multi", "--sources", "1", "2", "--frames", "6", "--repeat", "1", "--batched",
                       "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "multi.json").read_text())
    rows = report["rows"]
    assert [(r["sources"], len(r["per_camera_fps"]), r["frames"]) for r in rows] == [(1, 1, 6), (2, 2, 12)]
    assert all(r["batched"] and r["total_fps"] > 0 for r in rows)
    assert rows[0]["frames_per_model_run"] == 1.0 and rows[1]["detector_calls"] == 12
    assert report["settings"]["detector"].endswith("yolox_nano_batched.onnx")
    md = (tmp_path / "multi.md").read_text()
    assert "| ort-cpu | 2 | " in md and "load average before" in md


@pytest.mark.timeout(180)
def test_a_dead_camera_among_the_sources_is_one_line_without_its_password_and_the_others_run(tmp_path):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = f"rtsp://admin:hunter2@127.0.0.1:{port}/live"
    out = tmp_path / "out"
    r = stream("--source", dead, "--source", "demo", "--output-dir", str(out), "--max-frames", "10",
               "--set", "source.reconnect_attempts=1", "--set", "source.reconnect_backoff_s=0.1")
    assert r.returncode == 1, r.stderr
    assert "hunter2" not in r.stderr + r.stdout and "hunter2" not in " ".join(p.name for p in out.iterdir())
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: source 127.0.0.1_{port}_live (rtsp://***@127.0.0.1:{port}/live): cannot connect to "
                      f"rtsp://***@127.0.0.1:{port}/live: connection refused (is the server running, and is the port "
                      f"right?)"], r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["demo.jsonl", "demo.mp4"]  # nothing for the dead one
    assert len(records(out / "demo.jsonl")) == 10 and mp4_facts(out / "demo.mp4").frames == 10
    assert "total: 2 sources (1 ok, 1 failed), 10 frames in " in r.stdout


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("delay_s", [0.0, 0.3, 0.8])
def test_a_signal_while_the_sources_start_exits_130_without_a_traceback(tmp_path, delay_s):
    from test_faults import wait_for_handler

    out = tmp_path / "out"
    proc = start_two(tmp_path, out)
    try:
        wait_for_handler(proc)
        time.sleep(delay_s)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "error:" not in err, err
    assert err.strip().splitlines()[-1].startswith("interrupted"), err
    for name in ("demo", "copy"):
        jsonl = out / f"{name}.jsonl"
        written = len(records(jsonl)) if jsonl.exists() else 0
        assert (mp4_facts(out / f"{name}.mp4").frames if (out / f"{name}.mp4").exists() else 0) == written
