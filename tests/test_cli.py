"""End to end: `python -m stream` on the bundled clip, read back (bad input: tests/test_bad_input.py)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import av
import pytest

from conftest import ROOT, start_demo_run

pytestmark = pytest.mark.slow


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "stream", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
    )


def read_mp4(path: Path) -> dict:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        n = sum(1 for _ in c.decode(s))
        return {"codec": s.codec_context.name, "pix_fmt": s.codec_context.pix_fmt, "frames": n,
                "size": (s.width, s.height), "fps": s.average_rate}


@pytest.mark.timeout(180)
@pytest.mark.parametrize("layout", ["serial", "parallel"])
def test_demo_clip_end_to_end(tmp_path, layout):
    mp4, jsonl = tmp_path / "near.mp4", tmp_path / "near.jsonl"
    r = run_cli("--source", "demo", "--closer-than", "30", "--layout", layout,
                "--output", str(mp4), "--jsonl", str(jsonl))
    assert r.returncode == 0, r.stderr
    assert "150 frames" in r.stdout and f"{layout} layout" in r.stdout
    assert "objects in band" in r.stdout and "person" in r.stdout
    info = read_mp4(mp4)
    assert info == {"codec": "h264", "pix_fmt": "yuv420p", "frames": 150, "size": (768, 576), "fps": 10}
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [rec["index"] for rec in lines] == list(range(150))
    assert lines[10]["pts_s"] == pytest.approx(1.0)
    # the bundled clip has its own camera profile, so its ground plane is the depth source, and every line says so
    source = {"source": "ground-plane", "kind": "geometric", "unit": "m", "state": "geometric, pets2009-view001",
              "valid_range_m": [0.0, 100.0], "camera": "pets2009-view001",
              "selected": "auto: camera profile 'pets2009-view001' has a mounting"}
    assert all({k: rec["depth"][k] for k in source} == source for rec in lines)
    # the size priors check the clip's geometry with the same profile's focal length: they agree
    assert lines[-1]["depth"]["size_prior"]["focal_px"] == 1194.6
    assert lines[-1]["depth"]["crosscheck"]["verdict"] == "agrees"
    # every frame has its own map (depth.every 1): age 0
    assert all((rec["depth"]["map_index"], rec["depth"]["age_frames"]) == (rec["index"], 0) for rec in lines)
    assert "camera profile: pets2009-view001 (the bundled clip's own: vtest_pets2009.camera.yaml)" in r.stdout
    boxes = [d for rec in lines for d in rec["detections"]]
    assert len(boxes) > 300
    # the band is honoured on the distance it decides on (the track's filtered one, else the raw one): every
    # reported object is nearer than 30 m, in metres, with its statistics
    shown = [d["depth_filtered_m"] if d["depth_filtered_m"] is not None else d["depth_m"] for d in boxes]
    assert all(m is not None and 0 < m < 30 for m in shown)
    assert all(d["depth_m"] is not None and d["depth_m"] > 0 for d in boxes)
    assert all(0 <= d["depth_valid_frac"] <= 1 for d in boxes)
    assert {"box", "class", "class_id", "score", "depth_spread_m", "depth_reliable", "depth_note"} <= set(boxes[0])
    assert {"detect", "depth", "box_depth"} <= set(lines[0]["timings_ms"])
    assert lines[0]["age_ms"] > 0


@pytest.mark.timeout(120)
def test_max_frames_and_quiet(tmp_path):
    mp4 = tmp_path / "a" / "b" / "x.mp4"  # missing folders are created
    r = run_cli("--source", "demo", "--max-frames", "12", "--output", str(mp4), "--quiet")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    assert read_mp4(mp4)["frames"] == 12


@pytest.mark.timeout(120)
def test_images_folder_source(tmp_path):
    jsonl = tmp_path / "photos.jsonl"
    r = run_cli("--source", str(ROOT / "tests" / "data"), "--jsonl", str(jsonl), "--output", str(tmp_path / "p.mp4"))
    assert r.returncode == 0, r.stderr
    recs = [json.loads(x) for x in jsonl.read_text().splitlines()]
    assert len(recs) == 3  # basketball1.png, basketball2.png, messi5.jpg (the folder's images, sorted)
    assert [d["class"] for d in recs[0]["detections"]] == ["person", "person"]  # two people in an office
    assert {"sports ball", "person"} <= {d["class"] for d in recs[2]["detections"]}


@pytest.mark.timeout(120)
def test_ctrl_c_leaves_a_playable_mp4_and_exits_130(tmp_path):
    mp4, jsonl = tmp_path / "cut.mp4", tmp_path / "cut.jsonl"
    proc = start_demo_run(mp4, jsonl)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    written = len(jsonl.read_text().splitlines())
    info = read_mp4(mp4)
    assert info["codec"] == "h264"
    assert 10 <= info["frames"] < 150
    assert info["frames"] == written  # every processed frame is in the video
