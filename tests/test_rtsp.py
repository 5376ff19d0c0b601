"""Live network feeds against real servers on 127.0.0.1: GStreamer's RTSP server serving the bundled
clip (tests/rtsp_server.py, run by Debian's /usr/bin/python3), and plain sockets that accept a
connection and then say nothing. Nothing here leaves the loopback interface."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

from depthstream.errors import SourceError
from stream.pipeline import Pipeline, Stages
from depthstream.schema.config import SourceConfig
from stream.sources import open_source

from conftest import DEMO, ROOT

SERVER = Path(__file__).resolve().parent / "rtsp_server.py"
# python3-gi (GStreamer's bindings) is a Debian package, not in the venv: the server runs under Debian's python3.
SYSTEM_PYTHON = os.environ.get("DEPTHSTREAM_RTSP_PYTHON", "/usr/bin/python3")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_missing() -> str | None:
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} not found (the GStreamer RTSP server runs under Debian's python3 with python3-gi)"
    r = subprocess.run([SYSTEM_PYTHON, str(SERVER), "--check"], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        return (r.stderr.strip().splitlines() or [f"exit code {r.returncode}"])[-1] + " (.ci/run installs it)"
    return None


class RtspServer:
    """tests/rtsp_server.py in a subprocess on 127.0.0.1:port (restartable on the same port)."""

    def __init__(self, port: int, user: str | None = None, password: str | None = None) -> None:
        self.port, self.user, self.password = port, user, password
        self.proc: subprocess.Popen | None = None

    def url(self, with_credentials: bool = True) -> str:
        auth = f"{self.user}:{self.password}@" if self.user and with_credentials else ""
        return f"rtsp://{auth}127.0.0.1:{self.port}/demo"

    def start(self) -> "RtspServer":
        cmd = [SYSTEM_PYTHON, str(SERVER), "--port", str(self.port)]
        if self.user:
            cmd += ["--user", self.user, "--password", self.password or ""]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 20)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("READY"):
            self.kill()
            raise RuntimeError(f"RTSP server did not start: {self.proc.stderr.read().strip()}")
        return self

    def kill(self) -> None:
        """SIGKILL: the server dies mid-stream, as a crashed camera would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(10)
            self.proc.stdout.close()
            self.proc.stderr.close()

    def pause(self) -> None:
        """SIGSTOP: the connection stays open and nothing more arrives (a hung camera)."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)


REQUIRED = bool(os.environ.get("DEPTHSTREAM_REQUIRE_RTSP"))  # set by make test (and so CI): a missing server fails


@pytest.fixture(scope="session")
def rtsp_available() -> None:
    missing = _server_missing()
    if missing and REQUIRED:
        pytest.fail(f"the RTSP test server cannot run: {missing}")
    if missing:
        pytest.skip(f"no RTSP server: {missing}")


@pytest.fixture(scope="session")
def clip_frames() -> list[np.ndarray]:
    """Every frame of the clip the server serves, BGR, decoded from the file by PyAV (the reference)."""
    with av.open(str(DEMO)) as c:
        return [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]


def assert_frames_are_the_clips(frames, clip_frames, first: int = 0) -> None:
    """Each frame read from the server is the clip's frame of the same position (the same H.264 bitstream through
    the same decoder: equal to within rounding), counted from clip frame ``first``."""
    for n, frame in enumerate(frames):
        diff = np.abs(frame.image.astype(np.int16) - clip_frames[first + n]).mean()
        assert diff < 1.0, f"frame {n} differs from the clip's frame {first + n} by {diff:.1f} grey levels on average"


@pytest.fixture
def rtsp_server(rtsp_available):
    servers: list[RtspServer] = []

    def make(**kw) -> RtspServer:
        server = RtspServer(free_port(), **kw).start()
        servers.append(server)
        return server

    yield make
    for s in servers:
        if s.proc is not None and s.proc.poll() is None:
            s.resume()
        s.kill()


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never sends a byte."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="silent-server")
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.accepted.append(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for c in self.accepted:
            c.close()
        self.sock.close()


@pytest.fixture
def silent_server():
    server = SilentServer()
    yield server
    server.close()


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stream", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def _lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.endswith("}")]


def _wait_for(predicate, timeout_s: float, step_s: float = 0.05) -> float:
    """Poll until predicate() is true; returns the time it took (raises on timeout)."""
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > timeout_s:
            raise AssertionError(f"condition not met within {timeout_s} s")
        time.sleep(step_s)
    return time.monotonic() - t0


# -- a real RTSP server ---------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_reads_the_clip_from_a_real_rtsp_server(rtsp_server, clip_frames):
    server = rtsp_server()
    with open_source(server.url(), SourceConfig(open_timeout_s=10)) as src:
        assert src.live and src.fps == 10
        frames = [src.read() for _ in range(20)]
    assert all(f.image.shape == (576, 768, 3) for f in frames)
    assert_frames_are_the_clips(frames, clip_frames)
    assert [f.index for f in frames] == list(range(20))
    times = [f.pts_s for f in frames if f.pts_s is not None]
    assert len(times) >= 18 and times == sorted(times)
    assert frames[0].source_id == server.url()


@pytest.mark.timeout(60)
def test_a_url_scheme_in_capitals_is_the_same_stream(rtsp_server, clip_frames):
    server = rtsp_server()
    url = server.url().replace("rtsp://", "RTSP://")
    with open_source(url, SourceConfig(open_timeout_s=10)) as src:
        frames = [src.read() for _ in range(5)]
    assert_frames_are_the_clips(frames, clip_frames)
    assert frames[0].source_id == url


@pytest.mark.timeout(120)
def test_killing_and_restarting_the_server_resumes_within_5s(rtsp_server, tmp_path):
    # An @ in the password: FFmpeg logs in with everything up to the last @; no part of it may be shown.
    server = rtsp_server(user="viewer", password="pa@55word")
    mp4, jsonl = tmp_path / "rtsp.mp4", tmp_path / "rtsp.jsonl"
    cli = subprocess.Popen(
        [sys.executable, "-m", "stream", "--source", server.url(), "--output", str(mp4), "--jsonl", str(jsonl)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        _wait_for(lambda: len(_lines(jsonl)) >= 15, 60)
        server.kill()
        time.sleep(1.0)  # the outage
        before = _lines(jsonl)
        server.start()  # the same port
        resumed_s = _wait_for(lambda: len(_lines(jsonl)) > len(before), 10)
        _wait_for(lambda: len(_lines(jsonl)) >= len(before) + 10, 30)
    finally:
        cli.send_signal(signal.SIGINT)
        out, err = cli.communicate(timeout=30)
    assert resumed_s < 5, f"resumed {resumed_s:.1f} s after the server came back"
    assert cli.returncode == 130, err
    recs = _lines(jsonl)
    gap = len(before)  # the first frame after the outage jumps over the >= 1 s it lasted (10 fps)
    assert recs[gap]["index"] - recs[gap - 1]["index"] >= 10
    if recs[gap]["pts_s"] is not None and recs[gap - 1]["pts_s"] is not None:
        assert recs[gap]["pts_s"] - recs[gap - 1]["pts_s"] >= 1.0
    with av.open(str(mp4)) as c:
        frames = sum(1 for _ in c.decode(video=0))
    assert frames == len(recs)  # playable, one frame per processed frame, through the outage
    assert "lost rtsp://***@127.0.0.1" in err and "reconnected to rtsp://***@127.0.0.1" in err
    everything = out + err + jsonl.read_text()
    assert "pa@55word" not in everything and "55word" not in everything and "viewer" not in everything
    assert err.strip().splitlines()[-1].startswith("interrupted; outputs closed")


@pytest.mark.timeout(60)
def test_after_the_server_restarts_the_frames_are_the_clip_again(rtsp_server, clip_frames):
    server = rtsp_server()
    src = open_source(server.url(), SourceConfig(open_timeout_s=10, read_timeout_s=2, reconnect_backoff_s=0.2))
    with src:
        before = [src.read() for _ in range(5)]
        server.kill()
        server.start()  # a new session: the clip from its start
        after = [src.read() for _ in range(15)]
    # Frames already on their way when the server died come first; then the index jumps over the outage.
    gap = next(n for n in range(1, len(after)) if after[n].index - after[n - 1].index > 1)
    assert_frames_are_the_clips(before + after[:gap], clip_frames)
    assert len(src.outages) == 1 and src.outages[0].recovered
    assert len(after) - gap >= 10
    assert_frames_are_the_clips(after[gap:], clip_frames)  # the new session plays the clip from its start


@pytest.mark.timeout(60)
def test_a_server_that_stalls_mid_stream_cannot_hang_a_read(rtsp_server):
    server = rtsp_server()
    src = open_source(server.url(), SourceConfig(open_timeout_s=10, read_timeout_s=1, reconnect_attempts=0))
    with src:
        for _ in range(5):
            src.read()
        server.pause()
        t0 = time.monotonic()
        with pytest.raises(SourceError, match=r"lost rtsp://127.0.0.1:\d+/demo: no frame from rtsp://127.0.0.1:\d+/demo for 1\.\d s \(source.read_timeout_s is 1\)"):
            while True:  # frames already on their way may still come
                src.read()
        assert time.monotonic() - t0 < 5


@pytest.mark.timeout(90)
def test_a_stalled_stream_gives_no_stale_frame_as_fresh_and_is_lost_after_the_timeout_it_states(rtsp_server, tmp_path):
    """The server stops sending (SIGSTOP) mid-stream. No frame written later may claim to be young (a frame the
    decoder still held was written 5 s late with age_ms 23), and the feed is declared lost after
    source.read_timeout_s, as the message says (it took twice that)."""
    server = rtsp_server()
    jsonl = tmp_path / "stall.jsonl"
    cli = subprocess.Popen(
        [sys.executable, "-m", "stream", "--source", server.url(), "--jsonl", str(jsonl), "--set", "source.read_timeout_s=2",
         "--set", "source.reconnect_attempts=0"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: len(_lines(jsonl)) >= 10, 60)
        server.pause()
        paused = time.monotonic()
        before = len(_lines(jsonl))
        appeared: list[float] = []  # seconds after the pause at which each later line was first seen
        while cli.poll() is None and time.monotonic() - paused < 30:
            appeared += [time.monotonic() - paused] * (len(_lines(jsonl)) - before - len(appeared))
            time.sleep(0.02)
        lost_after = time.monotonic() - paused
    finally:
        server.resume()
        if cli.poll() is None:
            cli.kill()
        out, err = cli.communicate(timeout=30)
    assert cli.returncode == 1, err
    late = _lines(jsonl)[before:]
    for seen_at, record in zip(appeared, late):
        if seen_at > 1.0:  # received before the pause: it is at least this old when written
            assert record["age_ms"] >= (seen_at - 0.3) * 1000, (seen_at, record["age_ms"])
    assert lost_after < 2 + 1.5, f"lost {lost_after:.1f} s after the server stopped, read_timeout_s is 2"
    last = err.strip().splitlines()[-1]
    stated = float(re.search(r"no frame from rtsp://127.0.0.1:\d+/demo for (\d+\.\d) s \(source.read_timeout_s is 2\)", last).group(1))
    assert 2 <= stated <= lost_after + 0.1, last


@pytest.mark.timeout(60)
def test_stop_returns_within_1s_while_ffmpeg_is_blocked_in_a_read(rtsp_server):
    server = rtsp_server()
    src = open_source(server.url(), SourceConfig(open_timeout_s=10, read_timeout_s=2))
    src.open()
    p = Pipeline(src, Stages(lambda r: r, lambda r: r, lambda r: r), layout="serial", policy="latest")
    gen = p.results()
    for _ in range(5):
        next(gen)
    server.pause()
    time.sleep(0.5)  # the reader is now inside FFmpeg's av_read_frame, waiting on the socket
    t0 = time.monotonic()
    p.stop()
    assert time.monotonic() - t0 < 1.0
    assert list(gen) == []
    # FFmpeg gives up within the read timeout; the reader sees the source closed, frees it and ends.
    reader = next((t for t in threading.enumerate() if t.name == "stream-reader"), None)
    if reader is not None:
        reader.join(2 * 2 + 2)
        assert not reader.is_alive()
    src.close()


@pytest.mark.timeout(120)
def test_under_make_test_a_server_that_cannot_run_fails_the_tests(tmp_path):
    """make test sets DEPTHSTREAM_REQUIRE_RTSP: without GStreamer's RTSP server the RTSP tests fail, never skip."""
    env = {**os.environ, "DEPTHSTREAM_REQUIRE_RTSP": "1", "DEPTHSTREAM_RTSP_PYTHON": str(tmp_path / "no-python3")}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        f"{Path(__file__).name}::test_reads_the_clip_from_a_real_rtsp_server"],
                       cwd=Path(__file__).parent, env=env, capture_output=True, text=True, timeout=110)
    assert r.returncode == 1, r.stdout
    assert "the RTSP test server cannot run" in r.stdout and "no-python3 not found" in r.stdout
    assert "1 error" in r.stdout and "skipped" not in r.stdout


# -- servers that accept and then say nothing ----------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("scheme", ["rtsp", "http"])
def test_a_server_that_never_sends_a_byte_cannot_hang_the_process(silent_server, scheme, tmp_path):
    url = f"{scheme}://127.0.0.1:{silent_server.port}/stream"
    t0 = time.monotonic()
    r = run_cli("--source", url, "--set", "source.open_timeout_s=1", "--output", str(tmp_path / "never.mp4"))
    took = time.monotonic() - t0
    assert r.returncode == 1, r.stderr
    assert r.stderr.splitlines() == [
        f"error: no answer from {url} within 1 s (source.open_timeout_s): the server accepted the connection "
        "but sent no video; check the URL's path and the server"
    ]
    assert silent_server.accepted  # it did connect
    assert took < 15


@pytest.mark.timeout(60)
def test_nobody_listening_is_a_clear_error_at_once():
    url = f"rtsp://cam:hunter2@127.0.0.1:{free_port()}/stream"
    r = run_cli("--source", url)
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        f"error: cannot connect to {url.replace('cam:hunter2@', '***@')}: connection refused (is the server running, and is the port right?)"
    ]


# -- feeds that connect and then give no frame (issue 11, finding 6) -------------------------------------


class StreamingHttpServer:
    """An endless HTTP response on 127.0.0.1 (no length: a live feed), made by ``body(connection_number, write)``
    for each connection; ``write`` raises once the client has gone."""

    def __init__(self, content_type: str, body) -> None:
        import http.server

        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                return None

            def do_GET(self) -> None:
                with server.lock:
                    server.connections += 1
                    number = server.connections
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.end_headers()

                def write(data: bytes) -> None:
                    if server.stopping.is_set():
                        raise ConnectionAbortedError("server stopping")
                    self.wfile.write(data)
                    self.wfile.flush()

                try:
                    body(number, write)
                except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
                    pass

        self.lock = threading.Lock()
        self.connections = 0
        self.stopping = threading.Event()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/cam"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="streaming-http")
        self.thread.start()

    def close(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def _mjpeg_part(jpeg: bytes) -> bytes:
    return b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n" % (len(jpeg), jpeg)


BROKEN_JPEG = b"\xff\xd8\xff\xe0" + b"\x00not a picture" * 100 + b"\xff\xd9"


def _mjpeg(good_frames: list[bytes], *, good_connections: int):
    """MJPEG at 20 fps: the first ``good_connections`` connections get ``good_frames`` and are then closed; every
    later one (or all, with 0) gets broken JPEGs until the client goes."""
    def body(number: int, write) -> None:
        if number <= good_connections:
            for jpeg in good_frames:
                write(_mjpeg_part(jpeg))
                time.sleep(0.05)
            return
        while True:
            write(_mjpeg_part(BROKEN_JPEG))
            time.sleep(0.05)

    return body


@pytest.fixture
def streaming_http():
    servers: list[StreamingHttpServer] = []

    def make(content_type: str, body) -> StreamingHttpServer:
        servers.append(StreamingHttpServer(content_type, body))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


@pytest.fixture(scope="module")
def demo_jpegs() -> list[bytes]:
    import cv2

    with av.open(str(DEMO)) as c:
        return [cv2.imencode(".jpg", f.to_ndarray(format="bgr24"))[1].tobytes()
                for f, _ in zip(c.decode(video=0), range(15))]


@pytest.mark.timeout(90)
def test_a_feed_of_broken_frames_from_the_start_is_one_error_at_once(streaming_http):
    server = streaming_http("multipart/x-mixed-replace; boundary=frame", _mjpeg([], good_connections=0))
    t0 = time.monotonic()
    r = run_cli("--source", server.url, "--set", "source.read_timeout_s=2", timeout=60)
    assert r.returncode == 1, r.stderr
    assert r.stderr.splitlines()[-1] == (
        f"error: connected to {server.url}, but no frame came from it (decoding {server.url} failed at frame 0: Invalid "
        "data found when processing input); check that the URL gives a video stream")
    assert time.monotonic() - t0 < 20 and server.connections == 1  # not reopened: a wrong URL fails at once


@pytest.mark.timeout(90)
def test_a_feed_that_turns_to_garbage_ends_after_its_reconnect_attempts(streaming_http, demo_jpegs, tmp_path):
    """Each reopen of such a feed succeeds and then no frame decodes: the attempts must still count."""
    server = streaming_http("multipart/x-mixed-replace; boundary=frame", _mjpeg(demo_jpegs, good_connections=1))
    jsonl = tmp_path / "feed.jsonl"
    r = run_cli("--source", server.url, "--jsonl", str(jsonl), "--set", "source.reconnect_attempts=3",
                "--set", "source.reconnect_backoff_s=0.1", "--set", "source.read_timeout_s=2",
                "--set", "pipeline.policy=block", timeout=60)
    assert r.returncode == 1, r.stderr
    assert re.fullmatch(rf"error: lost {re.escape(server.url)} and could not reconnect: 3 attempts in \d+\.\d s failed "
                        rf"\(last: decoding {re.escape(server.url)} failed at frame \d+: Invalid data found when processing "
                        rf"input\); check the camera or server, or raise source.reconnect_attempts "
                        rf"\(the outputs hold the {len(demo_jpegs)} frames before it\)",
                        r.stderr.splitlines()[-1]), r.stderr
    assert server.connections == 4  # the first, and three reopen attempts
    assert len(_lines(jsonl)) == len(demo_jpegs)  # every good frame was processed


def _ts_without_video_frames(path: Path) -> bytes:
    """MPEG-TS that declares an H.264 stream and carries only audio: packets flow, no video frame ever comes."""
    import io

    buf = io.BytesIO()
    with av.open(buf, "w", format="mpegts") as dst:
        video = dst.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = dst.add_stream("mp2", rate=16000)
        audio.layout = "mono"
        for n in range(100):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1152), np.int16), format="s16", layout="mono")
            frame.sample_rate, frame.pts = 16000, n * 1152
            for packet in audio.encode(frame):
                dst.mux(packet)
    return buf.getvalue()


@pytest.mark.timeout(90)
def test_a_feed_whose_packets_hold_no_video_frame_cannot_hang_a_read(streaming_http, tmp_path):
    data = _ts_without_video_frames(tmp_path)

    def body(number: int, write) -> None:
        while True:  # about 7 s of audio, again and again, at about real time
            for start in range(0, len(data), 188 * 50):
                write(data[start:start + 188 * 50])
                time.sleep(0.05)

    server = streaming_http("video/mp2t", body)
    t0 = time.monotonic()
    r = run_cli("--source", server.url, "--set", "source.read_timeout_s=2", timeout=60)
    took = time.monotonic() - t0
    assert r.returncode == 1, r.stderr
    assert re.fullmatch(rf"error: connected to {re.escape(server.url)}, but no frame came from it \(no frame from "
                        rf"{re.escape(server.url)} for 2\.\d s \(source.read_timeout_s is 2\)\); check that the URL "
                        rf"gives a video stream", r.stderr.splitlines()[-1]), r.stderr
    assert took < 20


# -- a file served over HTTP is read like a file ----------------------------------------------------------


@pytest.fixture
def http_clip(tmp_path):
    """The bundled clip (remuxed with its index first, as web servers serve MP4) on 127.0.0.1."""
    import functools
    import http.server

    from conftest import DEMO

    clip = tmp_path / "clip.mp4"
    with av.open(str(DEMO)) as src, av.open(str(clip), "w", format="mp4", container_options={"movflags": "+faststart"}) as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                dst.mux(packet)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="http-clip")
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/clip.mp4"
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.mark.timeout(60)
def test_a_file_over_http_is_read_to_its_end_like_a_file(http_clip):
    with open_source(http_clip) as src:
        assert not src.live and src.frame_count == 150  # not a live feed: block policy, no reconnect
        frames = []
        while (frame := src.read()) is not None:
            frames.append(frame)
    assert len(frames) == 150 and frames[-1].index == 149 and src.outages == []
