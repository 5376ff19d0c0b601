"""Track events end to end and their delivery (--on-event) to an HTTP endpoint on 127.0.0.1 or a command.

The HTTP servers here listen on 127.0.0.1 only, answer a bounded number of requests and are shut down by
each test. A slow endpoint is one that holds every request until the test releases it: while it does, the
pipeline's side (``Dispatcher.submit``) must go on returning at once.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from depthstream.errors import ConfigError, DeliveryError
from depthstream.schema.config import load_config
from stream.pipeline import Dispatcher
from stream.track.deliver import HttpPost, RunCommand, delivery_target

from conftest import ROOT

pytestmark = pytest.mark.timeout(120)


@contextmanager
def endpoint(status: int = 200, hold: threading.Event | None = None):
    """An HTTP server on 127.0.0.1 that records every POSTed JSON body; with ``hold``, each request waits
    until it is set (a slow endpoint)."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if hold is not None:
                hold.wait(30)
            received.append(json.loads(body))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/events", received
    finally:
        if hold is not None:
            hold.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def run_cli(*args: str, timeout: float = 150) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stream", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def frame_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# The bundled clip with a 20 m band: people walk in and out of it (the README's checked list of events).
DEMO_BAND = ("--source", "demo", "--closer-than", "20")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """One run of the clip with the band, its events POSTed to a server on 127.0.0.1."""
    out = tmp_path_factory.mktemp("events")
    jsonl = out / "run.jsonl"
    with endpoint() as (url, received):
        r = run_cli(*DEMO_BAND, "--jsonl", str(jsonl), "--on-event", url)
    return r, frame_lines(jsonl), received


def test_every_box_has_a_track_and_the_band_uses_the_filtered_distance(demo_run):
    r, lines, _ = demo_run
    assert r.returncode == 0, r.stderr
    assert len(lines) == 150 and [rec["index"] for rec in lines] == list(range(150))  # one line per frame
    boxes = [d for rec in lines for d in rec["detections"]]
    assert boxes and all(d["track_id"] is not None for d in boxes if d["score"] >= 0.5)
    assert all(d["depth_filtered_m"] < 20 for d in boxes if d["depth_filtered_m"] is not None)
    # the raw distance is kept beside the filtered one, and a box the filter keeps may be raw-outside the band
    assert all("depth_m" in d and "depth_filtered_std_m" in d and "speed_mps" in d and "ttc_s" in d for d in boxes)


def test_events_are_in_the_jsonl_counted_in_the_summary_and_posted(demo_run):
    r, lines, received = demo_run
    events = [e for rec in lines for e in rec["events"]]
    kinds = {k: sum(e["event"] == k for e in events) for k in ("entered", "left", "approaching")}
    assert kinds["entered"] >= 3 and kinds["left"] >= 1
    summary = [line for line in r.stdout.splitlines() if line.startswith("tracks:")]
    assert summary and all(f"{k} {v}" in summary[0] for k, v in kinds.items() if v)
    assert f"{len(events)} ok, 0 failed, 0 dropped" in r.stdout
    assert received == events  # the same records, in the same order
    for rec in lines:
        for e in rec["events"]:
            assert e["index"] == rec["index"] and e["depth"]["filtered"] is True and e["band"] == "closer than 20 m"
            if e["event"] == "entered":
                assert e["depth_m"] < 20
            if e["event"] == "left" and e.get("reason") != "lost":
                assert e["depth_m"] > 20 + 0.3  # left only beyond the margin
    # every left follows an entered of the same track
    entered = set()
    for e in events:
        if e["event"] == "entered":
            entered.add(e["track_id"])
        if e["event"] == "left":
            assert e["track_id"] in entered


def test_a_folder_of_photos_is_not_tracked(tmp_path):
    """Unrelated pictures (Source.stills) share no track: each stands alone, in the JSONL as in the overlay."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("basketball1.png", "basketball2.png", "messi5.jpg"):
        shutil.copy(ROOT / "tests" / "data" / name, photos / name)
    jsonl = tmp_path / "photos.jsonl"
    r = run_cli("--source", str(photos), "--jsonl", str(jsonl))
    assert r.returncode == 0, r.stderr
    lines = frame_lines(jsonl)
    boxes = [d for rec in lines for d in rec["detections"]]
    assert len(lines) == 3 and boxes and all(d["track_id"] is None and d["depth_filtered_m"] is None for d in boxes)
    assert all("events" not in rec for rec in lines) and "tracks:" not in r.stdout


def test_a_slow_endpoint_never_makes_submit_wait():
    """The endpoint holds every request until released: the worker is stuck in its first POST, the queue
    fills, and every further submit is dropped and counted at once (a blocking submit would hang this test
    until its timeout)."""
    hold = threading.Event()
    with endpoint(hold=hold) as (url, received):
        dispatcher = Dispatcher("event delivery", HttpPost(url, timeout_s=20), maxsize=4, drain_s=10)
        with dispatcher:
            accepted = [dispatcher.submit({"n": n}) for n in range(200)]
            assert not hold.is_set()  # all 200 submits returned while the endpoint was still holding
            hold.set()
        stats = dispatcher.stats
    assert stats.submitted == 200 and stats.failed == 0 and stats.abandoned == 0
    assert stats.delivered == sum(accepted) and stats.dropped == 200 - sum(accepted)
    assert 1 <= stats.delivered <= 1 + 4  # the one in hand and a full queue
    assert [r["n"] for r in received] == [n for n, ok in enumerate(accepted) if ok]


def test_a_slow_endpoint_does_not_stop_the_run_and_its_deliveries_time_out(tmp_path):
    hold = threading.Event()
    with endpoint(hold=hold) as (url, _):
        r = run_cli(*DEMO_BAND, "--max-frames", "80", "--on-event", url, "--set", "events.deliver_timeout_s=0.5",
                    "--set", "events.queue_size=2", "--set", "events.drain_s=1")
    assert r.returncode == 0, r.stderr
    line = next(x for x in r.stdout.splitlines() if x.startswith("events delivered"))
    assert "0 ok" in line and "failed" in line and "dropped (queue full)" in line
    assert "timed out" in r.stderr or "timeout 0.5 s" in r.stderr  # the first failures are logged, one line each


def test_http_errors_and_dead_endpoints_are_delivery_errors():
    with endpoint(status=500) as (url, _):
        with pytest.raises(DeliveryError, match="answered HTTP 500"):
            HttpPost(url, timeout_s=5)({"event": "entered"})
    with endpoint() as (url, _):
        dead = url  # the server is gone once the block ends
    with pytest.raises(DeliveryError, match=r"POST http://127\.0\.0\.1:\d+/events failed"):
        HttpPost(dead, timeout_s=2)({"event": "entered"})


def test_command_gets_each_event_on_stdin(tmp_path):
    sink = tmp_path / "got.jsonl"
    script = tmp_path / "hook.py"
    script.write_text(f"import sys\nopen({str(sink)!r}, 'a').write(sys.stdin.read())\n")
    deliver = delivery_target(f"{sys.executable} {script}", timeout_s=10)
    assert isinstance(deliver, RunCommand)
    deliver({"event": "entered", "track_id": 3})
    deliver({"event": "left", "track_id": 3})
    assert [json.loads(x) for x in sink.read_text().splitlines()] == [{"event": "entered", "track_id": 3}, {"event": "left", "track_id": 3}]
    failing = delivery_target(f"{sys.executable} -c \"import sys; sys.exit('no disk')\"", timeout_s=10)
    with pytest.raises(DeliveryError, match="exited with status 1: no disk"):
        failing({"event": "entered"})
    slow = delivery_target(f"{sys.executable} -c \"import time; time.sleep(30)\"", timeout_s=0.5)
    with pytest.raises(DeliveryError, match=r"did not finish within 0\.5 s \(killed\)"):
        slow({"event": "entered"})


@pytest.mark.parametrize("target, message", [
    ("no-such-command-here --flag", "no executable command 'no-such-command-here'"),
    ("http:///events", "the URL has no host"),
    ("'unclosed", "cannot split it into a command line"),
])
def test_bad_on_event_targets_are_config_errors(target, message):
    with pytest.raises(ConfigError, match=message):
        delivery_target(target, 1.0)


def test_bad_on_event_is_one_line_and_exit_2_before_anything_runs(tmp_path):
    out = tmp_path / "x.jsonl"
    r = run_cli("--source", "demo", "--jsonl", str(out), "--on-event", "no-such-command-here")
    assert r.returncode == 2
    assert r.stderr.startswith("error: --on-event 'no-such-command-here': no executable command") and r.stderr.count("\n") == 1
    assert not out.exists()


def test_bad_track_config_values_name_the_key():
    r = run_cli("--source", "demo", "--set", "track.iou=1.5")
    assert r.returncode == 2 and "track.iou: got 1.5, expected a number in (0, 1)" in r.stderr
    r = run_cli("--source", "demo", "--set", "events.margin=0.3")
    assert r.returncode == 2 and "did you mean 'events.margin_m'" in r.stderr


def test_a_command_that_cannot_start_and_an_empty_target_say_so(tmp_path):
    with pytest.raises(DeliveryError, match="could not be started"):
        RunCommand([str(tmp_path / "gone")], timeout_s=1)({"event": "left"})
    with pytest.raises(ConfigError, match=r"^events\.on_event: got '  ', expected an http\(s\):// URL or a command line$"):
        load_config(overrides={"events.on_event": "  "})
    r = run_cli("--source", "demo", "--on-event", "")
    assert r.returncode == 2 and r.stderr == "error: events.on_event: got '', expected an http(s):// URL or a command line\n"


def test_dispatcher_needs_room_for_one_item():
    with pytest.raises(ValueError, match="maxsize must be >= 1"):
        Dispatcher("event delivery", lambda item: None, maxsize=0, drain_s=1)
