"""Sinks: H.264 MP4 read back with PyAV, strict JSONL, the frame record schema, the window check."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from depthstream.errors import SinkError
from stream.sinks import JsonlSink, Mp4Sink, WindowSink, frame_record
from depthstream.types import DepthMap, Detections, Frame, Result

from conftest import unwritable_folder
from media import decodable_frames


def synthetic_frames(n: int, width: int, height: int) -> list[np.ndarray]:
    """Smooth BGR frames that differ from each other: a moving colour ramp (codec friendly)."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for i in range(n):
        b = (xs / max(width - 1, 1)) * 200 + 20
        g = (ys / max(height - 1, 1)) * 200 + 20
        r = np.full_like(xs, 30 + (i * 200) // max(n - 1, 1))
        frames.append(np.dstack([b, g, r]).astype(np.uint8))
    return frames


def read_back(path: Path) -> tuple[list[np.ndarray], dict]:
    """Decode an MP4 with PyAV: (BGR frames, stream facts)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        info = {
            "codec": stream.codec_context.name,
            "pix_fmt": stream.codec_context.pix_fmt,
            "width": stream.codec_context.width,
            "height": stream.codec_context.height,
            "average_rate": stream.average_rate,
            "frames": stream.frames,
        }
        decoded = [f.to_ndarray(format="bgr24") for f in container.decode(stream)]
    return decoded, info


@pytest.mark.parametrize("fps", [10, Fraction(30000, 1001)])
def test_mp4_roundtrip(tmp_path: Path, fps) -> None:
    frames = synthetic_frames(20, 64, 48)
    out = tmp_path / "out.mp4"
    with Mp4Sink(out, fps, 64, 48) as sink:
        for f in frames:
            sink.write(f)
        assert sink.frames_written == 20
    decoded, info = read_back(out)
    assert info["codec"] == "h264"
    assert info["pix_fmt"] == "yuv420p"
    assert (info["width"], info["height"]) == (64, 48)
    assert info["average_rate"] == Fraction(fps)
    assert len(decoded) == 20
    for written, got in zip(frames, decoded):
        assert np.abs(written.astype(np.int16) - got.astype(np.int16)).mean() < 4.0


def test_mp4_index_comes_first_then_fragments(tmp_path: Path) -> None:
    out = tmp_path / "fs.mp4"
    with Mp4Sink(out, 10, 32, 32) as sink:
        for f in synthetic_frames(3, 32, 32):
            sink.write(f)
    data = out.read_bytes()
    assert 0 <= data.find(b"moov") < data.find(b"mdat")


def test_mp4_float_fps_is_ntsc_fraction() -> None:
    assert Mp4Sink("x.mp4", 29.97002997002997, 8, 8).fps == Fraction(30000, 1001)
    assert Mp4Sink("x.mp4", 25.0, 8, 8).fps == Fraction(25)


def test_mp4_odd_size_padded_with_edge_pixels(tmp_path: Path) -> None:
    frames = synthetic_frames(5, 63, 47)
    out = tmp_path / "odd.mp4"
    with Mp4Sink(out, 10, 63, 47) as sink:
        assert sink.output_size == (64, 48)
        for f in frames:
            sink.write(f)
    decoded, info = read_back(out)
    assert (info["width"], info["height"]) == (64, 48)
    assert len(decoded) == 5
    got = decoded[2].astype(np.int16)
    assert np.abs(got[:47, :63] - frames[2]).mean() < 4.0
    # The padding column / row repeat the last column / row of the picture.
    assert np.abs(got[:47, 63] - frames[2][:, 62]).mean() < 6.0
    assert np.abs(got[47, :63] - frames[2][46, :]).mean() < 6.0


def test_mp4_wrong_size_is_value_error(tmp_path: Path) -> None:
    with Mp4Sink(tmp_path / "w.mp4", 10, 64, 48) as sink:
        with pytest.raises(ValueError, match=r"expected a \(48, 64, 3\) uint8 BGR image"):
            sink.write(np.zeros((64, 48, 3), np.uint8))
        with pytest.raises(ValueError, match="uint8"):
            sink.write(np.zeros((48, 64, 3), np.float32))


def test_mp4_close_is_idempotent(tmp_path: Path) -> None:
    out = tmp_path / "c.mp4"
    sink = Mp4Sink(out, 10, 32, 32)
    for f in synthetic_frames(4, 32, 32):
        sink.write(f)
    sink.close()
    sink.close()
    decoded, _ = read_back(out)
    assert len(decoded) == 4
    with pytest.raises(SinkError, match="already closed"):
        sink.write(synthetic_frames(1, 32, 32)[0])


def test_mp4_playable_after_exception_in_with_block(tmp_path: Path) -> None:
    out = tmp_path / "interrupted.mp4"
    frames = synthetic_frames(7, 32, 32)
    with pytest.raises(KeyboardInterrupt):
        with Mp4Sink(out, 10, 32, 32) as sink:
            for f in frames:
                sink.write(f)
            raise KeyboardInterrupt
    decoded, info = read_back(out)
    assert info["codec"] == "h264"
    assert len(decoded) == 7


def test_mp4_creates_missing_parent_folders(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b" / "out.mp4"
    with Mp4Sink(out, 10, 16, 16) as sink:
        sink.write(synthetic_frames(1, 16, 16)[0])
    assert out.is_file()


@pytest.mark.parametrize("make_sink", [lambda p: Mp4Sink(p, 10, 16, 16), JsonlSink], ids=["mp4", "jsonl"])
def test_sink_parent_is_a_file(tmp_path: Path, make_sink) -> None:
    blocker = tmp_path / "notafolder"
    blocker.write_text("x")
    with pytest.raises(SinkError, match=r"notafolder is a file, not a folder"):
        make_sink(blocker / "sub" / "out.x").open()


@pytest.mark.parametrize("make_sink", [lambda p: Mp4Sink(p, 10, 16, 16), JsonlSink], ids=["mp4", "jsonl"])
def test_sink_path_is_a_directory(tmp_path: Path, make_sink) -> None:
    folder = tmp_path / "out.mp4"
    folder.mkdir()
    with pytest.raises(SinkError, match="is an existing folder; give a file path"):
        make_sink(folder).open()


@pytest.mark.parametrize("make_sink", [lambda p: Mp4Sink(p, 10, 16, 16), JsonlSink], ids=["mp4", "jsonl"])
def test_sink_folder_not_writable(tmp_path: Path, make_sink) -> None:
    """A real unwritable folder, also as root (conftest.unwritable_folder): the sink says so and creates nothing."""
    locked = tmp_path / "locked"
    locked.mkdir()
    with unwritable_folder(locked):
        with pytest.raises(SinkError, match=r"folder .*locked is not writable"):
            make_sink(locked / "out.x").open()
    assert list(locked.iterdir()) == []


def test_jsonl_strict_json_nan_and_numpy(tmp_path: Path) -> None:
    out = tmp_path / "log" / "r.jsonl"
    with JsonlSink(out) as sink:
        sink.write({"a": float("nan"), "b": np.float32(1.5), "c": np.int64(3), "d": np.array([1.0, np.nan]), "e": np.bool_(True)})
        sink.write({"inf": float("inf"), "nested": {"x": [np.float64("nan"), 2]}})
        assert sink.lines_written == 2
    sink.close()

    def reject(token: str):
        raise AssertionError(f"non-strict JSON constant {token}")

    lines = out.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line, parse_constant=reject) for line in lines]
    assert rows[0] == {"a": None, "b": 1.5, "c": 3, "d": [1.0, None], "e": True}
    assert rows[1] == {"inf": None, "nested": {"x": [None, 2]}}


def test_jsonl_lines_flushed_before_close(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    sink = JsonlSink(out)
    sink.write({"i": 0})
    sink.write({"i": 1})
    assert [json.loads(x)["i"] for x in out.read_text().splitlines()] == [0, 1]
    sink.close()
    sink.close()


def test_jsonl_rejects_unknown_types(tmp_path: Path) -> None:
    with JsonlSink(tmp_path / "r.jsonl") as sink:
        with pytest.raises(TypeError, match=r"record\.obj has type object"):
            sink.write({"obj": object()})


def make_result() -> Result:
    image = np.zeros((48, 64, 3), np.uint8)
    frame = Frame(image=image, index=7, pts_s=0.7, captured_ns=123, source_id="clip.mp4")
    dets = Detections(
        xyxy=np.array([[1.04, 2.06, 30.0, 40.0], [10.0, 11.0, 20.56, 21.0]], np.float32),
        confidence=np.array([0.87654, 0.5], np.float32),
        class_id=np.array([0, 5], np.int32),
        depth_m=np.array([1.23456, np.nan], np.float32),
        depth_valid_frac=np.array([0.9, 0.0], np.float32),
        depth_spread_m=np.array([0.2, np.nan], np.float32),
    )
    depth = DepthMap(np.ones((48, 64), np.float32), source="fake", kind="metric")
    return Result(frame=frame, depth=depth, mask=None, detections=dets, timings_ms={"depth": 3.14159, "detect": 12.0})


def test_frame_record_schema(tmp_path: Path) -> None:
    rec = frame_record(
        make_result(),
        ["person", "bicycle"],
        depth_source="fake",
        depth_kind="metric",
        band_text="closer than 2 m",
        age_ms=35.2719,
        extra_timings={"overlay": 1.006},
    )
    assert set(rec) == {"index", "pts_s", "source", "depth", "band", "detections", "timings_ms", "age_ms"}
    assert rec["index"] == 7 and rec["pts_s"] == pytest.approx(0.7) and rec["source"] == "clip.mp4"
    # a map made outside the pipeline's depth stage is not stamped: its age is not known
    assert rec["depth"] == {"source": "fake", "kind": "metric", "unit": "m", "state": None, "valid_range_m": None,
                            "camera": None, "map_index": None, "age_frames": None, "age_ms": None}
    assert rec["band"] == "closer than 2 m"
    # a map computed from frame 5 (0.5 s) and reused for frame 7 (depth.every): 2 frames, 200 ms of media time old
    res = make_result()
    earlier = Frame(image=res.frame.image, index=5, pts_s=0.5, captured_ns=100, source_id="clip.mp4")
    reused = dataclasses.replace(res, depth=res.depth.stamped(earlier))
    block = frame_record(reused, ["person"], depth_source="fake", depth_kind="metric", band_text=None, age_ms=None)["depth"]
    assert (block["map_index"], block["age_frames"], block["age_ms"]) == (5, 2, 200.0)
    live = dataclasses.replace(res.frame, pts_s=None, captured_ns=150_000_100)  # no media time: capture time
    rec_live = frame_record(dataclasses.replace(reused, frame=live), ["person"], depth_source="fake", depth_kind="metric",
                            band_text=None, age_ms=None)
    assert rec_live["depth"]["age_ms"] == 150.0
    assert rec["timings_ms"] == {"depth": 3.14, "detect": 12.0, "overlay": 1.01}
    assert list(rec["timings_ms"]) == ["depth", "detect", "overlay"]
    assert rec["age_ms"] == 35.27
    first, second = rec["detections"]
    assert first == {
        "box": [1.0, 2.1, 30.0, 40.0],
        "class_id": 0,
        "class": "person",
        "score": 0.877,
        "depth_m": 1.235,
        "depth_valid_frac": 0.9,
        "depth_spread_m": 0.2,
        "depth_reliable": True,
        "depth_note": None,
        "track_id": None,
        "depth_filtered_m": None,
        "depth_filtered_std_m": None,
        "speed_mps": None,
        "speed_std_mps": None,
        "ttc_s": None,
        "ttc_std_s": None,
    }
    assert second["class"] == "class 5" and second["class_id"] == 5
    assert second["depth_m"] is None and second["depth_spread_m"] is None
    assert second["box"] == [10.0, 11.0, 20.6, 21.0]

    out = tmp_path / "f.jsonl"
    with JsonlSink(out) as sink:
        sink.write(rec)
    assert json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(c)) == rec


def test_frame_record_carries_track_columns() -> None:
    res = make_result()
    dets = dataclasses.replace(res.detections, track_id=[4, -1], depth_reliable=[False, True],
                               depth_filtered_m=[1.2, np.nan], depth_filtered_std_m=[0.0512, np.nan],
                               speed_mps=[-0.81234, np.nan], speed_std_mps=[0.1, np.nan], ttc_s=[1.4772, np.nan],
                               ttc_std_s=[0.3, np.nan])
    rec = frame_record(dataclasses.replace(res, detections=dets), ["person"], depth_source="fake", depth_kind="metric",
                       band_text=None, age_ms=None)
    first, second = rec["detections"]
    assert first["track_id"] == 4 and first["depth_reliable"] is False
    assert (first["depth_m"], first["depth_filtered_m"], first["depth_filtered_std_m"]) == (1.235, 1.2, 0.051)
    assert (first["speed_mps"], first["speed_std_mps"], first["ttc_s"], first["ttc_std_s"]) == (-0.812, 0.1, 1.477, 0.3)
    assert second["track_id"] is None and second["depth_filtered_m"] is None and second["ttc_s"] is None


def test_frame_record_without_detections() -> None:
    result = Result(frame=make_result().frame)
    rec = frame_record(result, [], depth_source="none", depth_kind="metric", band_text=None, age_ms=None)
    assert rec["detections"] == [] and rec["band"] is None and rec["age_ms"] is None and rec["timings_ms"] == {}


def test_window_sink_without_a_display_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    sink = WindowSink("test")
    with pytest.raises(SinkError, match=r"^--show needs a desktop window \(Tk\): DISPLAY is not set \(nor WAYLAND_DISPLAY\)"):
        sink.open()
    sink.close()


def test_window_sink_without_tkinter_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setitem(sys.modules, "tkinter", None)  # import fails
    with pytest.raises(SinkError, match=r"^--show needs a desktop window \(Tk\): this Python has no tkinter: .*apt-get "
                                        r"install python3-tk"):
        WindowSink().open()


def test_window_sink_with_an_unreachable_display_is_sink_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPLAY", ":9999")  # nothing listens there
    with pytest.raises(SinkError, match=r"^--show needs a desktop window \(Tk\): opening a window failed \(.*display.*\)"):
        WindowSink().write(np.zeros((8, 8, 3), np.uint8))


@pytest.fixture(scope="module")
def xvfb():
    """A virtual X display (Debian's xvfb, which .ci/run installs); its DISPLAY value."""
    import shutil
    import subprocess

    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (apt-get install xvfb; .ci/run installs it)")
    proc = subprocess.Popen(["Xvfb", "-displayfd", "1", "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    number = proc.stdout.readline().strip()
    yield f":{number}"
    proc.terminate()
    proc.wait(10)


@pytest.mark.timeout(60)
def test_window_sink_shows_the_frame_in_a_real_window(monkeypatch: pytest.MonkeyPatch, xvfb: str) -> None:
    monkeypatch.setenv("DISPLAY", xvfb)
    image = np.zeros((48, 64, 3), np.uint8)
    image[:, :32] = (255, 0, 0)  # BGR blue on the left
    image[:, 32:] = (0, 0, 255)  # red on the right
    with WindowSink("test") as sink:
        assert sink.write(image) is True
        assert (sink._photo.width(), sink._photo.height()) == (64, 48)
        assert tuple(sink._photo.get(5, 5)) == (0, 0, 255) and tuple(sink._photo.get(60, 40)) == (255, 0, 0)  # RGB
        sink._root.focus_force()  # key events go to the window with the focus (no window manager here)
        sink._root.update()
        sink._root.event_generate("<KeyPress-q>", when="now")
        assert sink.write(image) is False  # q stops the run
    sink.close()  # idempotent


@pytest.mark.timeout(120)
def test_show_runs_the_demo_in_a_window(tmp_path: Path, xvfb: str) -> None:
    import subprocess
    import sys as _sys

    r = subprocess.run([_sys.executable, "-m", "stream", "--source", "demo", "--max-frames", "3", "--show", "--output",
                        str(tmp_path / "x.mp4"), "--quiet"], env={**os.environ, "DISPLAY": xvfb},
                       capture_output=True, text=True, timeout=100)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "x.mp4").stat().st_size > 1000



def test_mp4_shows_frames_at_the_times_given(tmp_path: Path) -> None:
    """A variable frame rate (a live feed with drops and an outage) keeps its timing; the last frame lasts 1 / fps."""
    times = [0.0, 0.1, 0.2, 1.5, 1.6, 1.65, 4.0, 4.1]
    out = tmp_path / "vfr.mp4"
    with Mp4Sink(out, 10, 32, 32) as sink:
        for t, f in zip(times, synthetic_frames(len(times), 32, 32)):
            sink.write(f, t)
    with av.open(str(out)) as c:
        got = [float(f.time) for f in c.decode(video=0)]
        duration = c.duration / 1e6
    assert got == pytest.approx(times, abs=1e-4)
    assert duration == pytest.approx(4.2, abs=1e-3)


def test_mp4_being_written_plays_all_but_its_last_second_and_is_rewritten_index_first(tmp_path: Path) -> None:
    out = tmp_path / "run.mp4"
    sink = Mp4Sink(out, 10, 64, 48)
    for f in synthetic_frames(60, 64, 48):  # 6 s: twelve fragments of 0.5 s
        sink.write(f)
    killed = tmp_path / "killed.mp4"
    killed.write_bytes(out.read_bytes())  # what a kill (or a power loss after the last sync) leaves
    sink.close()
    data = killed.read_bytes()
    assert data.count(b"moof") >= 10
    n = decodable_frames(killed)
    assert 60 - 10 <= n < 60  # the open fragment (<= 0.5 s) and the encoder's look-ahead (0.5 s) are missing
    whole = out.read_bytes()
    assert b"moof" not in whole and 0 <= whole.find(b"moov") < whole.find(b"mdat")  # closed: a regular MP4
    decoded, _ = read_back(out)
    assert len(decoded) == 60
    assert not list(tmp_path.glob(".*"))  # no copy left beside it


def test_mp4_times_must_increase(tmp_path: Path) -> None:
    with Mp4Sink(tmp_path / "t.mp4", 10, 32, 32) as sink:
        frame = synthetic_frames(1, 32, 32)[0]
        sink.write(frame, 1.0)
        with pytest.raises(ValueError, match=r"time 0.5 s is before the previous frame's \(1.0 s\); times must increase"):
            sink.write(frame, 0.5)


def test_jsonl_on_a_full_disk_says_so(tmp_path: Path) -> None:
    sink = JsonlSink("/dev/full")  # every write: ENOSPC
    with pytest.raises(SinkError, match=r"writing line 1 of JSONL /dev/full failed: No space left on device; the disk "
                                        r"holding /dev/full is full: free space there or write the outputs elsewhere"):
        sink.write({"index": 0})
    sink.close()


def test_output_lock_refuses_a_second_writer_and_dies_with_its_holder(tmp_path: Path) -> None:
    from stream.sinks.lock import OutputLock, lock_path

    out = tmp_path / "out.mp4"
    first = OutputLock(out, "MP4").acquire()
    with pytest.raises(SinkError, match=rf"cannot write the MP4 to {out}: another run of python -m stream "
                                        rf"\(pid {os.getpid()}, started \d\d:\d\d:\d\d\) is writing it"):
        OutputLock(out, "MP4").acquire()
    first.release()
    assert not lock_path(out).exists()
    lock_path(out).write_text("999999 00:00:00\n")  # left by a run that was killed: no process holds its lock
    with OutputLock(out, "MP4"):
        assert lock_path(out).read_text().split()[0] == str(os.getpid())
    assert not lock_path(out).exists()


def test_timeline_follows_the_source_clock_and_repairs_times_that_go_back() -> None:
    from stream.sinks.timeline import Timeline

    def frame(i, pts=None, captured_s=0.0):
        return Frame(np.zeros((2, 2, 3), np.uint8), i, pts, int(captured_s * 1e9), "x")

    file = Timeline(live=False, fps=25)
    got = [file.seconds(frame(i, pts)) for i, pts in enumerate([2.0, 2.04, 2.08, 2.04, 2.16, 2.2])]
    assert got == pytest.approx([0.0, 0.04, 0.08, 0.12, 0.16, 0.2])  # media time; the step back shown one frame on
    assert file.repaired == 1
    live = Timeline(live=True, fps=30)
    got = [live.seconds(frame(i, pts=0.0, captured_s=c)) for i, c in enumerate([100.0, 100.1, 103.6])]
    assert got == pytest.approx([0.0, 0.1, 3.6])  # capture time: the outage lasts as long as it did
    stills = Timeline(live=False, fps=5, stills=True)
    assert [stills.seconds(frame(i)) for i in range(3)] == pytest.approx([0.0, 0.2, 0.4])
