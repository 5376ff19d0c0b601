"""Sources: which source a --source picks, redaction, cameras and GStreamer through a fake OpenCV
capture, a close() from another thread during a read, and reconnecting with backoff."""

from __future__ import annotations

import logging
import threading
import time
from fractions import Fraction

import numpy as np
import pytest

import stream.sources.opencv as sources  # cv2 and the device check as the OpenCV sources see them
from depthstream.schema.config import SourceConfig, load_config
from depthstream.errors import ConfigError, SourceError, SourceNotFoundError
from stream.sources import (
    CameraSource, GStreamerSource, ImagesSource, ReconnectingSource, Source, VideoFileSource,
    open_source, redact,
)

from conftest import DATA, DEMO


# -- redaction --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("rtsp://admin:hunter2@127.0.0.1:554/stream1", "rtsp://***@127.0.0.1:554/stream1"),
        ("rtsp://admin@127.0.0.1/x", "rtsp://***@127.0.0.1/x"),
        ("http://127.0.0.1/video.mjpg?user=admin&pwd=hunter2&res=hd", "http://127.0.0.1/video.mjpg?user=***&pwd=***&res=hd"),
        ("cannot open rtsp://a:b@127.0.0.1/x: refused", "cannot open rtsp://***@127.0.0.1/x: refused"),
        ("data/clip.mp4", "data/clip.mp4"),
        # issue 11: an @ in the password (FFmpeg logs in with everything up to the last @)
        ("rtsp://admin:p@ss@127.0.0.1/x", "rtsp://***@127.0.0.1/x"),
        # tokens, keys and signatures in the query, whatever the parameter is called
        ("https://cam.example/live?access_token=T1&api_key=K2&apikey=K3&sig=S4&X-Amz-Signature=S5&ch=2",
         "https://cam.example/live?access_token=***&api_key=***&apikey=***&sig=***&X-Amz-Signature=***&ch=2"),
        # '//' mistyped, or the scheme left out
        ("rtsp:/user:secret@127.0.0.1/x", "rtsp:/***@127.0.0.1/x"),
        ("rtsp:user:secret@127.0.0.1/x", "rtsp:***@127.0.0.1/x"),
        ("user:secret@127.0.0.1:554/x", "***@127.0.0.1:554/x"),
        # GStreamer properties, bare or quoted, and a URL inside a property
        ("rtspsrc location=rtsp://127.0.0.1/x user-id=admin user-pw=hunter2 ! appsink",
         "rtspsrc location=rtsp://127.0.0.1/x user-id=*** user-pw=*** ! appsink"),
        ('souphttpsrc location="http://a:b@127.0.0.1/x" proxy-id=p proxy-pw="x y" ! jpegdec',
         'souphttpsrc location="http://***@127.0.0.1/x" proxy-id=*** proxy-pw=*** ! jpegdec'),
        ("srtsrc uri=srt://127.0.0.1:7001 passphrase=longsecret ! appsink", "srtsrc uri=srt://127.0.0.1:7001 passphrase=*** ! appsink"),
        ("got ['rtsp://viewer:hunter2@127.0.0.1/x'], expected", "got ['rtsp://***@127.0.0.1/x'], expected"),
        # what is not a secret stays
        ("--set expects key=value (e.g. --set detect.conf=0.4)", "--set expects key=value (e.g. --set detect.conf=0.4)"),
        ("v4l2src device=/dev/video0 ! videoconvert ! appsink", "v4l2src device=/dev/video0 ! videoconvert ! appsink"),
        ("write to me@example.org", "write to me@example.org"),
    ],
)
def test_redact_hides_credentials_anywhere_in_a_text(text, expected):
    assert redact(text) == expected
    assert redact(expected) == expected  # redacting twice changes nothing


def test_log_lines_are_redacted_by_the_cli_filter(caplog):
    from depthstream.redact import RedactingFilter

    log = logging.getLogger("test.redact")
    caplog.handler.addFilter(RedactingFilter())
    with caplog.at_level(logging.WARNING, logger="test.redact"):
        log.warning("lost %s: %s", "rtsp://admin:p@ss@127.0.0.1/x", "user-pw=hunter2")
    assert caplog.messages == ["lost rtsp://***@127.0.0.1/x: user-pw=***"]


# -- which source ---------------------------------------------------------------------------------


def test_open_source_picks_the_source_for_what_the_user_typed(tmp_path):
    assert isinstance(open_source("demo"), VideoFileSource)
    assert isinstance(open_source(str(DEMO)), VideoFileSource) and not open_source(str(DEMO)).live
    cam = open_source("0")
    assert isinstance(cam, ReconnectingSource) and isinstance(cam.inner, CameraSource) and cam.live
    assert isinstance(open_source("/dev/video3").inner, CameraSource)
    rtsp = open_source("rtsp://u:p@127.0.0.1:8554/demo", SourceConfig(rtsp_transport="udp", read_timeout_s=2))
    assert isinstance(rtsp.inner, VideoFileSource) and rtsp.inner.live
    assert rtsp.inner._options["rtsp_transport"] == "udp" and rtsp.inner._timeouts == (5.0, 2)
    assert rtsp.source_id == "rtsp://***@127.0.0.1:8554/demo"
    assert "rtsp_transport" not in open_source("http://127.0.0.1:8080/video").inner._options
    gst = open_source("videotestsrc ! videoconvert ! appsink")
    assert isinstance(gst.inner, GStreamerSource)
    images = open_source(str(DATA))
    assert isinstance(images, ImagesSource) and images.frame_count == 3
    assert images.frame_name(0) == "basketball1.png" and images.frame_name(5) is None
    assert isinstance(open_source(str(DATA / "*.jpg")), ImagesSource)


def test_live_options_come_from_the_config():
    cfg = load_config(sets=["source.reconnect_attempts=3", "source.rtsp_transport=udp", "source.read_timeout_s=2"])
    rtsp = open_source("rtsp://127.0.0.1:8554/demo", cfg.source)
    assert rtsp.options.reconnect_attempts == 3 and rtsp.options.reconnect_backoff_max_s == 2.0
    assert rtsp.inner._options["rtsp_transport"] == "udp" and rtsp.inner._timeouts == (5.0, 2.0)


@pytest.mark.parametrize(
    "uri, error, message",
    [
        ("", ConfigError, r"--source is empty"),
        ("ftp://127.0.0.1/x.mp4", ConfigError, r"unsupported URL scheme in --source ftp://127.0.0.1/x.mp4: expected one of rtsp, rtsps"),
        ("ftp://me:secret@127.0.0.1/x", ConfigError, r"ftp://\*\*\*@127.0.0.1/x"),
        ("nothing/*.png", SourceNotFoundError, r"no images match nothing/\*.png"),
    ],
)
def test_bad_sources_are_refused_before_opening(uri, error, message):
    with pytest.raises(error, match=message):
        open_source(uri)


def test_a_folder_without_images_is_not_found(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(SourceNotFoundError, match=r"holds no images \(looked for .bmp, .jpeg"):
        open_source(str(tmp_path))


def test_an_empty_file_is_not_a_video(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(SourceError, match=r"cannot open .*empty.mp4 as a video: the file is empty"):
        open_source(str(empty)).open()


def test_a_truncated_video_is_a_clear_error(tmp_path):
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(DEMO.read_bytes()[: DEMO.stat().st_size // 2])  # its index (moov) is at the end
    with pytest.raises(SourceError, match=r"cannot open .*cut.mp4 as a video: .*truncated or corrupt file"):
        open_source(str(cut)).open()


# -- cameras and GStreamer, through a fake cv2.VideoCapture ---------------------------------------------


class FakeCapture:
    """Stands in for cv2.VideoCapture: ``frames`` good reads, then failures (an unplugged camera)."""

    opened = True
    frames = 3
    made: list["FakeCapture"] = []

    def __init__(self, target, backend=None) -> None:
        self.target, self.backend, self.reads, self.released = target, backend, 0, False
        self.props: dict[int, float] = {}
        FakeCapture.made.append(self)

    def isOpened(self) -> bool:
        return self.opened

    def set(self, prop, value) -> bool:
        self.props[prop] = value
        return True

    def get(self, prop) -> float:
        return 30.0 if prop == sources.cv2.CAP_PROP_FPS else 0.0

    def read(self):
        self.reads += 1
        if self.reads > self.frames:
            return False, None
        return True, np.full((4, 6, 3), self.reads, np.uint8)

    def release(self) -> None:
        self.released = True


@pytest.fixture
def fake_cv2(monkeypatch):
    FakeCapture.made, FakeCapture.opened, FakeCapture.frames = [], True, 3
    monkeypatch.setattr(sources.cv2, "VideoCapture", FakeCapture)
    monkeypatch.setattr(sources, "_device_exists", lambda path: path == "/dev/video0")
    return FakeCapture


def test_camera_reads_frames_through_v4l2_with_a_read_timeout(fake_cv2):
    with CameraSource("0", read_timeout_s=2.5) as cam:
        assert cam.fps == Fraction(30) and cam.live
        frames = [cam.read() for _ in range(3)]
        assert [f.index for f in frames] == [0, 1, 2] and frames[0].image.shape == (4, 6, 3)
        assert frames[0].source_id == "camera 0" and frames[0].pts_s is None
        with pytest.raises(SourceError, match=r"camera 0 stopped delivering frames"):
            cam.read()
    cap = fake_cv2.made[0]
    assert cap.target == 0 and cap.backend == sources.cv2.CAP_V4L2 and cap.released
    assert cap.props[sources.cv2.CAP_PROP_READ_TIMEOUT_MSEC] == 2500


def test_an_absent_camera_is_not_found(fake_cv2):
    with pytest.raises(SourceNotFoundError, match=r"no camera 4: /dev/video4 does not exist; list the cameras with 'ls /dev/video\*'"):
        CameraSource("4").open()
    assert fake_cv2.made == []


def test_a_busy_camera_is_a_runtime_error(fake_cv2):
    fake_cv2.opened = False
    with pytest.raises(SourceError, match=r"camera 0 \(/dev/video0\) could not be opened: it is busy, or not a video capture device"):
        CameraSource("0").open()
    assert fake_cv2.made[0].released


def test_an_unplugged_camera_is_reopened(fake_cv2):
    cam = ReconnectingSource(CameraSource("0"), SourceConfig(reconnect_backoff_s=0.01))
    with cam:
        indices = [cam.read().index for _ in range(6)]
    assert len(fake_cv2.made) == 2  # opened again after the third frame
    assert indices[:3] == [0, 1, 2] and indices == sorted(set(indices))
    assert len(cam.outages) == 1 and cam.outages[0].recovered


def test_gstreamer_pipeline_without_gstreamer_is_a_usage_error(monkeypatch):
    monkeypatch.setattr(sources, "opencv_has_gstreamer", lambda: False)
    with pytest.raises(ConfigError, match=r"looks like a GStreamer pipeline, but this OpenCV has no GStreamer support"):
        open_source("v4l2src device=/dev/video0 ! videoconvert ! appsink").open()


def test_gstreamer_pipeline_runs_where_opencv_has_gstreamer(monkeypatch, fake_cv2):
    monkeypatch.setattr(sources, "opencv_has_gstreamer", lambda: True)
    pipeline = "videotestsrc ! videoconvert ! video/x-raw,format=BGR ! appsink"
    with open_source(pipeline) as src:
        assert src.read().image.shape == (4, 6, 3)
    assert fake_cv2.made[0].target == pipeline and fake_cv2.made[0].backend == sources.cv2.CAP_GSTREAMER
    fake_cv2.opened = False
    with pytest.raises(SourceError, match=r"GStreamer pipeline .* did not start: check it with gst-launch-1.0"):
        open_source(pipeline).open()


# -- close() from another thread ----------------------------------------------------------------------


class Decoder(Source):
    """A source with a 'decoder' that must not be freed during a read (like FFmpeg's)."""

    def __init__(self) -> None:
        super().__init__("decoder://")
        self.in_read = threading.Event()
        self.go_on = threading.Event()
        self.freed_during_read = False
        self.freed = False
        self.reading = False

    def read(self):
        with self._reading():
            self.reading = True
            self.in_read.set()
            self.go_on.wait(10)
            self.reading = False
            return self._frame(np.zeros((2, 2, 3), np.uint8), None)

    def _release(self) -> None:
        self.freed_during_read = self.reading
        self.freed = True


@pytest.mark.timeout(20)
def test_close_during_a_read_is_deferred_to_the_end_of_the_read():
    src = Decoder()
    reader = threading.Thread(target=src.read)
    reader.start()
    assert src.in_read.wait(5)
    src.close()  # from this thread, while the reader is inside read()
    assert not src.freed
    src.go_on.set()
    reader.join(5)
    assert src.freed and not src.freed_during_read
    src.close()  # idempotent


# -- reconnecting ---------------------------------------------------------------------------------------


class Flaky(Source):
    """A live feed at 10 fps that is lost after ``lose_after`` frames and refuses ``refuse`` reopens."""

    live = True

    def __init__(self, lose_after: int, refuse: int, uri: str = "rtsp://cam:secret@127.0.0.1:9/x") -> None:
        super().__init__(uri)
        self.lose_after, self.refuse = lose_after, refuse
        self.opens = 0
        self.served = 0

    @property
    def fps(self):
        return Fraction(10)

    def open(self):
        self.opens += 1
        if 1 < self.opens <= 1 + self.refuse:
            raise SourceError(f"cannot connect to {self.source_id}: connection refused")
        self._index = 0
        return self

    def read(self):
        if self.opens == 1 and self._index >= self.lose_after:
            raise SourceError(f"decoding {self.source_id} failed: Connection reset by peer")
        self.served += 1
        return self._frame(np.zeros((2, 2, 3), np.uint8), self._index / 10)


@pytest.mark.timeout(20)
def test_a_lost_feed_is_reopened_with_backoff_and_the_gap_shows(caplog):
    opts = SourceConfig(reconnect_attempts=5, reconnect_backoff_s=0.05, reconnect_backoff_max_s=0.1)
    src = ReconnectingSource(Flaky(lose_after=5, refuse=2), opts)
    t0 = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="stream.sources"), src:
        frames = [src.read() for _ in range(8)]
    elapsed = time.monotonic() - t0
    assert src.inner.opens == 4  # first open, two refused, one that works
    assert 0.05 + 0.1 + 0.1 <= elapsed < 3  # waits 0.05, then 0.1 (doubled), then 0.1 (capped)
    idx = [f.index for f in frames]
    assert idx[:5] == [0, 1, 2, 3, 4]
    gap = frames[5].captured_ns - frames[4].captured_ns
    assert idx[5] == 4 + max(1, round(gap / 1e9 * 10))  # the index jumps by the frames the gap would have held
    assert idx[5:] == [idx[5], idx[5] + 1, idx[5] + 2]
    assert frames[5].pts_s == pytest.approx(frames[4].pts_s + gap / 1e9, abs=1e-6)  # media time goes on
    assert frames[6].pts_s == pytest.approx(frames[5].pts_s + 0.1)
    (outage,) = src.outages
    assert outage.recovered and outage.attempts == 3 and 0.25 <= outage.duration_s < 3
    text = caplog.text + str(outage) + " ".join(f.source_id for f in frames)
    assert "secret" not in text and "rtsp://***@127.0.0.1:9/x" in text
    assert "lost rtsp://***@127.0.0.1:9/x: decoding" in caplog.text and "reconnect attempt 2 of 5 failed" in caplog.text


@pytest.mark.timeout(20)
def test_reconnecting_gives_up_after_the_configured_attempts():
    src = ReconnectingSource(Flaky(lose_after=2, refuse=99), SourceConfig(reconnect_attempts=3, reconnect_backoff_s=0.01))
    with src:
        src.read(), src.read()
        with pytest.raises(SourceError, match=r"^lost rtsp://\*\*\*@127.0.0.1:9/x and could not reconnect: 3 attempts in [0-9.]+ s failed "
                                              r"\(last: cannot connect to .*connection refused\); check the camera or server, or raise source.reconnect_attempts$"):
            src.read()
    assert len(src.outages) == 1 and not src.outages[0].recovered


def test_reconnecting_can_be_switched_off():
    src = ReconnectingSource(Flaky(lose_after=1, refuse=0), SourceConfig(reconnect_attempts=0))
    with src:
        src.read()
        with pytest.raises(SourceError, match=r"lost rtsp://\*\*\*@127.0.0.1:9/x: decoding .* \(reconnecting is off: source.reconnect_attempts is 0\)"):
            src.read()


@pytest.mark.timeout(20)
def test_close_ends_a_backoff_wait_at_once():
    src = ReconnectingSource(Flaky(lose_after=1, refuse=99), SourceConfig(reconnect_backoff_s=30))
    src.open()
    src.read()
    got = []
    reader = threading.Thread(target=lambda: got.append(src.read()))
    reader.start()
    time.sleep(0.2)  # the reader now waits 30 s before its first attempt
    t0 = time.monotonic()
    src.close()
    reader.join(5)
    assert not reader.is_alive() and time.monotonic() - t0 < 1 and got == [None]
    assert len(src.outages) == 1 and not src.outages[0].recovered


# -- images in, a folder of annotated images out -----------------------------------------------------


@pytest.mark.timeout(120)
def test_a_folder_of_images_gives_a_folder_of_annotated_images(tmp_path):
    import cv2

    from stream.app import run

    out = tmp_path / "annotated"  # no suffix: a folder
    summary = run(load_config(overrides={"source.uri": str(DATA / "*.png"), "output.mp4": str(out)}))
    names = sorted(p.name for p in DATA.glob("*.png"))
    assert summary.frames == 2 and sorted(p.name for p in out.iterdir()) == names
    for name in names:
        original, annotated = cv2.imread(str(DATA / name)), cv2.imread(str(out / name))
        assert annotated.shape == original.shape  # each at its own size (no letterboxing into one video)
        assert float(np.abs(annotated.astype(int) - original.astype(int)).mean()) > 1  # boxes, labels, inset drawn


@pytest.mark.timeout(120)
def test_each_jsonl_line_of_an_image_glob_names_its_file(tmp_path):
    """python -m stream on a glob of photos in two folders: each JSONL line says which file it is (issue 11)."""
    import json
    import shutil
    import subprocess
    import sys

    from conftest import ROOT

    for folder, name in (("a", "basketball1.png"), ("b", "basketball2.png"), ("b", "messi5.jpg")):
        (tmp_path / folder).mkdir(exist_ok=True)
        shutil.copy(DATA / name, tmp_path / folder / name)
    (tmp_path / "a" / "messi5.jpg").write_bytes((DATA / "messi5.jpg").read_bytes())  # the same name in both folders
    jsonl = tmp_path / "out.jsonl"
    r = subprocess.run([sys.executable, "-m", "stream", "--source", str(tmp_path / "*" / "*.*"), "--jsonl", str(jsonl),
                        "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    expected = sorted(str(p) for p in tmp_path.glob("*/*.*"))
    assert [rec["file"] for rec in records] == expected and [rec["index"] for rec in records] == [0, 1, 2, 3]


@pytest.mark.timeout(120)
def test_a_video_to_a_folder_numbers_the_frames(tmp_path):
    from stream.app import run

    out = tmp_path / "frames"
    run(load_config(overrides={"source.uri": "demo", "output.mp4": str(out) + "/", "source.max_frames": 3}))
    assert sorted(p.name for p in out.iterdir()) == ["frame_000000.jpg", "frame_000001.jpg", "frame_000002.jpg"]
