"""The browser view over HTTP on 127.0.0.1: a real served run (the bundled clip looped at 10 fps like a camera, the
real detector), its page, state, MJPEG (newest frame, one encode for every viewer, slow and stalled viewers),
band and layout control, uploads with their limits and errors, the token, Host and Origin checks."""

from __future__ import annotations

import concurrent.futures
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import cv2
import httpx
import numpy as np
import pytest

from conftest import DATA, DEMO, ROOT
from served import ServedRun, wait_for
from test_rtsp import RtspServer, free_port, rtsp_available  # noqa: F401 - rtsp_available is a fixture

PHOTO = DATA / "messi5.jpg"  # Debian opencv-doc's sample: a footballer and a ball


def state(run: ServedRun) -> dict:
    return httpx.get(run.url + "/api/state", timeout=10).json()


def first_frame(run: ServedRun) -> dict:
    return wait_for(lambda: state(run)["frame"], 60, what="a first published frame")


def write_clip(path: Path, frames: int, size: tuple[int, int] | None = None, fps: int = 10) -> Path:
    """The first ``frames`` frames of the bundled clip as an H.264 MP4 (optionally scaled to ``size`` = (w, h))."""
    with av.open(str(DEMO)) as src, av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        w, h = size or (768, 576)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i, frame in enumerate(src.decode(video=0)):
            if i == frames:
                break
            image = frame.to_ndarray(format="bgr24")
            if size:
                image = cv2.resize(image, size)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


class MjpegReader:
    """One viewer of /stream.mjpg: reads parts (JPEG bytes and the X-Frame-Seq each came with)."""

    def __init__(self, url: str, headers: dict | None = None) -> None:
        self._cm = httpx.stream("GET", url + "/stream.mjpg", headers=headers, timeout=30)
        self.response = self._cm.__enter__()
        self._bytes = self.response.iter_raw(65536)
        self._buf = b""

    def _need(self, n: int) -> None:
        while len(self._buf) < n:
            self._buf += next(self._bytes)

    def part(self) -> tuple[int, bytes]:
        while b"\r\n\r\n" not in self._buf:
            self._buf += next(self._bytes)
        head, self._buf = self._buf.split(b"\r\n\r\n", 1)
        fields = dict(line.split(b": ", 1) for line in head.split(b"\r\n") if b": " in line)
        n = int(fields[b"Content-Length"])
        self._need(n + 2)
        jpeg, self._buf = self._buf[:n], self._buf[n + 2:]
        return int(fields[b"X-Frame-Seq"]), jpeg

    def close(self) -> None:
        self._cm.__exit__(None, None, None)


@pytest.fixture(scope="module")
def served():
    with ServedRun(["serve.viewer_timeout_s=2", "serve.max_clip_s=8"]) as run:
        first_frame(run)
        yield run


# -- the page and the state ---------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_page_and_state_describe_the_live_run(served):
    page = httpx.get(served.url + "/", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="video"' in page.text and "/stream.mjpg" in page.text and "referrer-policy" in page.headers
    s = wait_for(lambda: (lambda s: s if s["objects"] else None)(state(served)), what="objects in the band")
    assert s["state"] == "running" and s["source"].endswith("vtest_pets2009_150f.mp4")
    # The clip's own camera profile gives its ground plane (stream.depth.select): the state names the profile.
    assert s["depth"] == {"source": "ground-plane", "kind": "geometric", "state": "geometric, pets2009-view001",
                          "unit": "m"}
    assert s["band"] == {"closer_than": 30.0, "further_than": None, "text": "closer than 30 m"}
    assert s["layout"] == "parallel" and s["frame"]["fps"] is not None
    people = [o for o in s["objects"] if o["class"] == "person"]
    assert people, s["objects"]
    # The objects are the ones in the band, by the metres the overlay prints (the track's filtered distance).
    assert all(0 < o["distance_m"] < 30 for o in s["objects"])
    distances = [o["distance_m"] for o in s["objects"]]
    assert distances == sorted(distances)
    assert any(isinstance(o["track_id"], int) and o["filtered"] for o in people)


@pytest.mark.timeout(120)
def test_frame_jpg_is_the_newest_annotated_frame(served):
    r = httpx.get(served.url + "/frame.jpg", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    image = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (576, 768, 3) and image.std() > 20


# -- MJPEG: newest frame, one encode per frame, slow and stalled viewers -------------------------------


@pytest.mark.timeout(120)
def test_ten_viewers_cost_one_jpeg_encode_per_frame(served):
    before = state(served)

    def watch(_):
        reader = MjpegReader(served.url)
        try:
            return [reader.part() for _ in range(12)]
        finally:
            reader.close()

    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        parts = list(pool.map(watch, range(10)))
    after = state(served)
    encodes = after["encodes"] - before["encodes"]
    published = after["frame"]["seq"] - before["frame"]["seq"]
    sent = sum(len(p) for p in parts)
    assert sent == 120
    assert encodes <= published + 1, (encodes, published)  # at most one encode per frame, whatever the viewers
    assert sent >= 5 * encodes, (sent, encodes)  # each encoded frame went to several viewers
    for viewer in parts:
        seqs = [s for s, _ in viewer]
        assert seqs == sorted(set(seqs))  # each viewer: newer frames only, never one twice
        image = cv2.imdecode(np.frombuffer(viewer[-1][1], np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (576, 768, 3)


@pytest.mark.timeout(120)
def test_a_slow_viewer_skips_to_the_newest_frame(served):
    reader = MjpegReader(served.url)
    try:
        reader.part()
        lags, gaps = [], []
        last = None
        for _ in range(4):
            time.sleep(1.0)  # 10 frames pass at 10 fps while this viewer reads nothing
            seq, _ = reader.part()
            while True:  # what the socket still holds (a frame or two at most), then the newest
                lags.append(state(served)["frame"]["seq"] - seq)
                if lags[-1] <= 3:
                    break
                seq, _ = reader.part()
            if last is not None:
                gaps.append(seq - last)
            last = seq
    finally:
        reader.close()
    assert max(gaps) >= 5, gaps  # frames it was too slow for were skipped, not queued for it
    assert min(lags) <= 3, lags


@pytest.mark.timeout(120)
def test_a_stalled_viewer_is_dropped_and_the_run_never_waits_for_it(served):
    host, port = served.url.split("//")[1].split(":")
    before = state(served)
    with socket.create_connection((host, int(port)), timeout=10) as stalled:
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.sendall(f"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        t0 = time.monotonic()
        # Never read: once the socket buffers are full, the view drops it after serve.viewer_timeout_s (2 s).
        s = wait_for(lambda: (lambda s: s if s["dropped_viewers"] > before["dropped_viewers"] else None)(state(served)),
                     30, what="the stalled viewer dropped")
        elapsed = time.monotonic() - t0
    frames = s["frame"]["seq"] - before["frame"]["seq"]
    assert elapsed >= 2.0
    assert frames >= 0.5 * 10 * elapsed, (frames, elapsed)  # the 10 fps source kept flowing meanwhile
    assert s["viewers"] == 0


# -- band and layout ----------------------------------------------------------------------------------


def post_control(run: ServedRun, body, **kw) -> httpx.Response:
    return httpx.post(run.url + "/api/control", json=body, timeout=10, **kw)


@pytest.mark.timeout(120)
def test_the_band_and_the_layout_change_the_running_pipeline(served):
    try:
        r = post_control(served, {"closer_than": 20})
        assert r.status_code == 200 and r.json()["text"] == "closer than 20 m"
        s = wait_for(lambda: (lambda s: s if s["band"]["closer_than"] == 20 else None)(state(served)),
                     what="frames processed with the new band")
        assert all(o["distance_m"] < 20 for o in s["objects"]), s["objects"]
        r = post_control(served, {"layout": "serial", "further_than": 18})
        assert r.status_code == 200 and r.json()["text"] == "between 18 m and 20 m"
        s = wait_for(lambda: (lambda s: s if s["layout"] == "serial" and s["band"]["further_than"] == 18 else None)(
            state(served)), what="frames processed in the serial layout")
        assert all(18 < o["distance_m"] < 20 for o in s["objects"]), s["objects"]
    finally:
        assert post_control(served, {"closer_than": 30, "further_than": None, "layout": "parallel"}).status_code == 200
    wait_for(lambda: state(served)["layout"] == "parallel", what="the parallel layout back")


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("body", "status", "message"), [
    ({"closer_than": 5, "further_than": 10}, 400, "further_than 10 and closer_than 5 leave no distance"),
    ({"closer_than": -1}, 400, r"^band: closer_than: got -1, expected a positive number of metres \(at most 10000\) "
                               r"or null$"),
    ({"closer_than": "far"}, 400, "band: closer_than: got 'far', expected a positive number of metres"),
    ({"layout": "diagonal"}, 400, r"^layout: got 'diagonal', expected one of serial, parallel$"),
    ({"closest": 3}, 400, "send a JSON object with some of closer_than, further_than"),
    ([], 400, "send a JSON object"),
])
def test_a_bad_change_is_refused_and_changes_nothing(served, body, status, message):
    before = state(served)["wanted"]
    r = post_control(served, body)
    assert r.status_code == status
    assert re.search(message, r.json()["error"]), r.json()
    assert state(served)["wanted"] == before


@pytest.mark.timeout(60)
def test_a_change_must_be_small_json(served):
    r = httpx.post(served.url + "/api/control", content="closer_than=3",
                   headers={"content-type": "application/x-www-form-urlencoded"}, timeout=10)
    assert r.status_code == 415 and "Content-Type: application/json" in r.json()["error"]
    r = httpx.post(served.url + "/api/control", content='{"closer_than": 3' + " " * 10_000 + "}",
                   headers={"content-type": "application/json"}, timeout=10)
    assert r.status_code == 413 and r.json()["error"] == "a change is a small JSON object (at most 4096 bytes)"
    r = httpx.post(served.url + "/api/control", content="{closer", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"].startswith("the body is not JSON (")


# -- uploads ------------------------------------------------------------------------------------------


def upload(run: ServedRun, name: str, data: bytes, mime: str = "application/octet-stream", **fields) -> httpx.Response:
    return httpx.post(run.url + "/api/detect", files={"file": (name, data, mime)},
                      data={k: str(v) for k, v in fields.items()}, timeout=120)


@pytest.mark.timeout(120)
def test_a_photo_gets_boxes_classes_scores_and_metres(served):
    r = upload(served, "../../etc/Messi 5.jpg", PHOTO.read_bytes(), "image/jpeg")
    assert r.status_code == 200, r.text
    a = r.json()
    assert a["kind"] == "image" and a["name"] == "Messi_5.jpg" and (a["width"], a["height"]) == (548, 342)
    assert a["frames"] == 1 and a["band"] is None and a["depth"]["unit"] == "m"
    classes = {d["class"] for d in a["detections"]}
    assert "person" in classes, a["detections"]
    for d in a["detections"]:
        assert len(d["box"]) == 4 and 0 < d["score"] <= 1 and d["depth_m"] is None or d["depth_m"] > 0
        assert d["track_id"] is None  # a photo stands alone: no tracks
    image = httpx.get(served.url + a["annotated"], timeout=10)
    assert image.status_code == 200
    annotated = cv2.imdecode(np.frombuffer(image.content, np.uint8), cv2.IMREAD_COLOR)
    assert annotated.shape == (342, 548, 3)
    assert np.abs(annotated.astype(int) - cv2.imread(str(PHOTO)).astype(int)).mean() > 1  # boxes were drawn on it
    lines = httpx.get(served.url + a["jsonl"], timeout=10).text.splitlines()
    assert [json.loads(line)["detections"] for line in lines] == [a["detections"]]


@pytest.mark.timeout(120)
def test_a_clip_gets_an_mp4_and_one_record_per_frame_and_the_live_run_goes_on(served, tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", 40)
    before = state(served)["frame"]
    t0 = time.monotonic()
    r = upload(served, "clip.mp4", clip.read_bytes(), "video/mp4", closer_than=25)
    elapsed = time.monotonic() - t0
    after = state(served)["frame"]
    assert r.status_code == 200, r.text
    a = r.json()
    assert a["kind"] == "video" and a["frames"] == 40 and a["band"] == "closer than 25 m"
    assert a["summary"]["tracks"] > 0 and a["summary"]["objects"]["person"] > 0
    assert all(0 < d["depth_filtered_m"] < 25 for rec in a["records"] for d in rec["detections"]
               if d["depth_filtered_m"] is not None)
    mp4 = tmp_path / "annotated.mp4"
    mp4.write_bytes(httpx.get(served.url + a["annotated"], timeout=10).content)
    with av.open(str(mp4)) as c:
        assert c.streams.video[0].codec_context.name == "h264"
        assert sum(1 for _ in c.decode(video=0)) == 40
    # The upload ran on its own worker and models: the live run kept publishing frames meanwhile.
    assert after["seq"] - before["seq"] >= 3 * elapsed, (after["seq"] - before["seq"], elapsed)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("name", "data", "status", "message"), [
    ("notes.txt", b"hello, this is not a picture\n" * 20, 415,
     r"^notes.txt is not an image or a video \(InvalidDataError: FFmpeg cannot read it\); send JPEG, PNG"),
    ("drawing.svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>', 415,
     r"^drawing.svg is 'svg_pipe' data without a decoder, not an image or a video this view takes"),
    ("empty.jpg", b"", 400, r"^empty.jpg is empty$"),
    ("half.jpg", PHOTO.read_bytes()[:600], 415,
     r"^half.jpg is cut short or damaged: its jpeg_pipe header states no picture size; send a whole file \(JPEG"),
    ("half.png", (DATA / "basketball1.png").read_bytes()[:60_000], 422,
     r"^half.png: cannot read image .*half.png \(corrupt, or not an image\)$"),
])
def test_what_is_not_an_image_or_a_video_gets_one_clear_error(served, name, data, status, message):
    r = upload(served, name, data)
    assert r.status_code == status, r.text
    assert re.search(message, r.json()["error"]), r.json()


@pytest.mark.timeout(60)
def test_an_upload_without_a_file_or_with_a_bad_band_is_refused(served):
    r = httpx.post(served.url + "/api/detect", data={"closer_than": "3"}, files={"other": ("a", b"x")}, timeout=10)
    assert r.status_code == 400 and r.json()["error"] == "the form has no file: send it in a field named 'file'"
    r = upload(served, "p.jpg", PHOTO.read_bytes(), closer_than="near")
    assert r.status_code == 400 and r.json()["error"] == "band: closer_than: got 'near', expected a positive number of metres"
    r = httpx.post(served.url + "/api/detect", content=PHOTO.read_bytes(), headers={"content-type": "image/jpeg"})
    assert r.status_code == 415 and "multipart/form-data" in r.json()["error"]


@pytest.mark.timeout(180)
def test_uploads_wait_one_at_a_time_and_a_third_is_told_to_retry(served, tmp_path):
    clip = write_clip(tmp_path / "long.mp4", 60).read_bytes()
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda i: upload(served, f"c{i}.mp4", clip, "video/mp4"), range(3)))
    codes = sorted(r.status_code for r in answers)
    assert codes == [200, 200, 503], [(r.status_code, r.text[:200]) for r in answers]
    busy = next(r for r in answers if r.status_code == 503)
    assert busy.headers["retry-after"] == "5" and "try again" in busy.json()["error"]


@pytest.mark.timeout(180)
def test_upload_limits(tmp_path):
    with ServedRun(["serve.max_upload_mb=0.2", "serve.max_clip_s=1", "serve.max_side_px=500"]) as run:
        r = upload(run, "big.bin", np.random.default_rng(0).bytes(300_000))
        assert r.status_code == 413 and r.json()["error"] == ("the upload is larger than 0.2 MB (serve.max_upload_mb): "
                                                              "send a smaller file")
        r = upload(run, "messi.jpg", PHOTO.read_bytes())
        assert r.status_code == 413 and r.json()["error"] == ("messi.jpg is 548x342 pixels; this view takes at most 500 "
                                                              "pixels a side (serve.max_side_px): scale it down")
        clip = write_clip(tmp_path / "two.mp4", 20, size=(160, 120))
        r = upload(run, "two.mp4", clip.read_bytes())
        assert r.status_code == 413 and r.json()["error"] == ("two.mp4 lasts 2.0 s; this view takes clips of at most "
                                                              "1 s (serve.max_clip_s): cut it shorter")
        small = write_clip(tmp_path / "one.mp4", 8, size=(160, 120))
        r = upload(run, "one.mp4", small.read_bytes())
        assert r.status_code == 200 and r.json()["frames"] == 8


# -- who may use it -----------------------------------------------------------------------------------

ROUTES = [("GET", "/"), ("GET", "/stream.mjpg"), ("GET", "/frame.jpg"), ("GET", "/api/state"),
          ("POST", "/api/control"), ("POST", "/api/detect"), ("GET", "/api/results/x/y.jpg"), ("GET", "/nothing")]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("listen", ["127.0.0.1:0", "0.0.0.0:0"])
def test_with_a_token_every_route_needs_it(listen):
    token = "correct-horse-battery-staple"
    with ServedRun(token=token, listen=listen) as run:
        run.url = run.url.replace("0.0.0.0", "127.0.0.1")
        for method, path in ROUTES:
            for headers in ({}, {"Authorization": "Bearer wrong-horse-battery-staple"},
                            {"X-Depthstream-Token": token[:-1]}):
                r = httpx.request(method, run.url + path, headers=headers, timeout=10)
                assert r.status_code == 401, (method, path, headers)
                assert r.json()["error"].startswith("this view needs its token") and token not in r.text
        first = wait_for(lambda: httpx.get(run.url + "/api/state", headers={"Authorization": f"Bearer {token}"},
                                           timeout=10).json()["frame"], 60, what="a first frame")
        assert first["seq"] >= 1
        assert httpx.get(run.url + "/api/state", headers={"X-Depthstream-Token": token}).status_code == 200
        assert httpx.get(run.url + f"/?token={token}").status_code == 200
        with httpx.stream("GET", run.url + f"/stream.mjpg?token={token}", timeout=10) as r:
            assert r.status_code == 200 and next(r.iter_raw()).startswith(b"--frame")


@pytest.mark.timeout(60)
def test_another_host_name_and_another_sites_page_are_refused(served):
    host = served.url.split("//")[1]
    r = httpx.get(served.url + "/api/state", headers={"Host": "rebound.example:80"}, timeout=10)
    assert r.status_code == 421 and "this machine only" in r.json()["error"]
    r = post_control(served, {"closer_than": 30}, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and "another site" in r.json()["error"]
    assert post_control(served, {"closer_than": 30}, headers={"Origin": f"http://{host}"}).status_code == 200
    r = httpx.get(served.url.replace("127.0.0.1", "localhost") + "/api/state", timeout=10)
    assert r.status_code == 200


# -- the command line -----------------------------------------------------------------------------------


def start_cli(*args: str) -> tuple[subprocess.Popen, str, list[str]]:
    """``python -m stream ... --serve 127.0.0.1:0`` in a subprocess; returns it, the view's URL and the stderr lines
    read so far (a thread keeps appending)."""
    proc = subprocess.Popen([sys.executable, "-m", "stream", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    found = threading.Event()

    def read() -> None:
        for line in proc.stderr:
            lines.append(line)
            if "browser view: http://" in line:
                found.set()
        found.set()

    threading.Thread(target=read, daemon=True).start()
    found.wait(60)
    url = next((re.search(r"http://\S+?(?=/?\s|/$)", l).group(0) for l in lines if "browser view: http://" in l), None)
    if url is None:
        proc.kill()
        raise AssertionError("no browser view address in: " + "".join(lines))
    return proc, url.rstrip("/"), lines


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_no_secret_of_the_source_url_reaches_the_page_the_api_or_the_log(rtsp_available, tmp_path):
    """A live RTSP camera that needs a user and a password (GStreamer's RTSP server on 127.0.0.1; under make test a
    missing server fails this test, as every RTSP test)."""
    user, password = "viewer-account", "S3cr3t-pass-word"
    server = RtspServer(free_port(), user=user, password=password).start()
    try:
        proc, url, log = start_cli("--source", server.url(), "--serve", "127.0.0.1:0", "--closer-than", "30",
                                   "--set", "serve.linger=false")
        try:
            first = wait_for(lambda: httpx.get(url + "/api/state", timeout=10).json()["frame"], 60,
                             what="a first frame from the RTSP camera")
            assert first["seq"] >= 1
            wait_for(lambda: httpx.get(url + "/api/state", timeout=10).json()["events"], 60, what="a first event")
            bodies = [httpx.get(url + path, timeout=10).text for path in ("/", "/api/state", "/nothing")]
            bodies.append(post_control_url(url, {"closer_than": 25}).text)
            bodies.append(post_control_url(url, {"closer_than": -1}).text)
            answer = httpx.post(url + "/api/detect", files={"file": ("p.jpg", PHOTO.read_bytes())}, timeout=120)
            assert answer.status_code == 200, answer.text
            bodies += [answer.text, httpx.get(url + answer.json()["jsonl"], timeout=10).text]
            state_now = json.loads(bodies[1])
            assert state_now["source"] == f"rtsp://***@127.0.0.1:{server.port}/demo"
            assert all(e["source"] == state_now["source"] for e in state_now["events"])
        finally:
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=60)
    finally:
        server.kill()
    everything = "".join(bodies) + out + "".join(log)
    assert proc.returncode in (0, 130), everything[-2000:]
    assert password not in everything and user not in everything


def post_control_url(url: str, body) -> httpx.Response:
    return httpx.post(url + "/api/control", json=body, timeout=10)


@pytest.mark.timeout(60)
def test_listening_beyond_this_machine_without_a_token_is_refused():
    r = subprocess.run([sys.executable, "-m", "stream", "--source", "demo", "--serve", "0.0.0.0:0"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr == ("error: --serve 0.0.0.0:0 listens beyond this machine: give a token every request must carry "
                        "(--serve-token, or the environment variable DEPTHSTREAM_SERVE_TOKEN to keep it out of the "
                        "process list), or listen on 127.0.0.1\n")


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("args", "message"), [
    (["--serve", ":8080"], r"^error: serve.listen: got ':8080', expected HOST:PORT \(e.g. 127.0.0.1:8080, 0.0.0.0:8080, "
                           r"\[::1\]:8080\) or a PORT on 127.0.0.1; port 0 = any free one\n$"),
    (["--serve", "::1:8080"], r"an IPv6 address goes in brackets"),
    (["--serve", "127.0.0.1:70000"], r"^error: serve.listen: got '127.0.0.1:70000', expected HOST:PORT"),
    (["--serve-token", "abcdefgh"], r"^error: --serve-token is for the browser view: give --serve HOST:PORT too\n$"),
    (["--serve", "127.0.0.1:0", "--serve-token", " "], r"^error: --serve-token is empty: give a long random text"),
    (["--serve", "192.0.2.1:8080", "--serve-token", "a-token-long-enough-to-pass"],
     r"^error: --serve 192.0.2.1:8080: cannot listen there: Cannot assign requested address; give an address of "
     r"this machine"),
])
def test_bad_serve_flags_get_one_line(args, message):
    r = subprocess.run([sys.executable, "-m", "stream", "--source", "demo", *args], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode in (1, 2) and re.search(message, r.stderr), r.stderr


@pytest.mark.timeout(60)
def test_a_port_in_use_is_one_line_before_any_model_loads():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "stream", "--source", "demo", "--serve", f"127.0.0.1:{port}"],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert r.stderr == (f"error: --serve 127.0.0.1:{port}: cannot listen there: Address already in use; stop what "
                        f"uses it, or give another port (port 0 picks a free one)\n")


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_served_demo_lingers_after_the_clip_and_ctrl_c_ends_it_with_the_summary():
    proc, url, log = start_cli("--source", "demo", "--max-frames", "20", "--serve", "127.0.0.1:0")
    try:
        s = wait_for(lambda: (lambda s: s if s["state"] == "ended" else None)(
            httpx.get(url + "/api/state", timeout=10).json()), 60, what="the run's end")
        assert s["detail"] == "20 frames, stopped by --max-frames 20" and s["frame"]["seq"] == 20
        assert httpx.get(url + "/frame.jpg", timeout=10).status_code == 200  # the last frame stays
        with httpx.stream("GET", url + "/stream.mjpg", timeout=10) as r:
            assert next(r.iter_raw()).startswith(b"--frame")
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "20 frames in" in out and re.search(r"browser view http://127.0.0.1:\d+/: 1 video viewers in all, 1 JPEG "
                                               r"encodes for 20 frames, 0 viewers dropped", out), out
