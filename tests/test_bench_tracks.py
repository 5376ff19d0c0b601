"""python -m bench tracks: the share of consecutive-frame distance changes above 10 %, on a JSONL whose changes
are known, and contact-sheet on the bundled clip."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import pytest

from conftest import ROOT


def _line(index: int, boxes: list[tuple[int | None, float, float]], events=()) -> str:
    dets = [{"box": [10.0 * k, 10.0, 10.0 * k + 8, 40.0], "class": "person", "track_id": tid, "depth_m": raw,
             "depth_filtered_m": filt} for k, (tid, raw, filt) in enumerate(boxes)]
    return json.dumps({"index": index, "detections": dets, "events": list(events)})


@pytest.mark.timeout(60)
def test_tracks_counts_the_jumps_raw_and_filtered(tmp_path):
    # track 1: raw 10, 12 (+20 %), 12, 10.9 (-9 %), 10.9; filtered changes by 1 % each frame
    # track 2: raw 5, 7 (+40 %), -, 5, 5; filtered 5, 5.6 (+12 %), -, 6, 6: the missing frame 2 makes (1, 3) no pair
    # (5.6 -> 6 is not counted); an untracked box is ignored
    raw1 = [10.0, 12.0, 12.0, 10.9, 10.9]
    lines = [
        _line(0, [(1, raw1[0], 10.0), (2, 5.0, 5.0), (None, 3.0, None)]),
        _line(1, [(1, raw1[1], 10.1), (2, 7.0, 5.6)]),
        _line(2, [(1, raw1[2], 10.2)]),
        _line(3, [(1, raw1[3], 10.3), (2, 5.0, 6.0)], events=[{"event": "entered", "index": 3, "track_id": 2, "class": "person",
                                                             "depth_m": 6.0, "speed_mps": None, "ttc_s": None}]),
        _line(4, [(1, raw1[4], 10.4), (2, 5.0, 6.0)]),
    ]
    jsonl = tmp_path / "run.jsonl"
    jsonl.write_text("\n".join(lines) + "\n")
    r = subprocess.run([sys.executable, "-m", "bench", "tracks", str(jsonl), "--out", str(tmp_path / "out")],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "out" / "tracks.json").read_text())
    run = report["runs"][0]
    # pairs: track 1 has 4, track 2 has (0, 1) and (3, 4); raw jumps: +20 % and +40 %; filtered: +12 %
    assert (run["pairs"], run["raw_jumps"], run["filtered_jumps"]) == (6, 2, 1)
    assert run["raw_share"] == pytest.approx(2 / 6) and run["filtered_share"] == pytest.approx(1 / 6)
    assert run["per_track"]["1"]["raw_jumps"] == 1 and run["per_track"]["2"]["raw_jumps"] == 1
    assert len(run["events"]) == 1 and "| 3 | entered | 2 |" in r.stdout


@pytest.mark.timeout(120)
def test_contact_sheet_draws_the_frames_of_the_run(tmp_path):
    jsonl = tmp_path / "run.jsonl"
    jsonl.write_text("\n".join(_line(i, [(7, 20.0, 20.0)]) for i in range(6)) + "\n")
    r = subprocess.run([sys.executable, "-m", "bench", "contact-sheet", str(jsonl), "--frames", "6", "--cols", "3",
                        "--rows", "2", "--scale", "0.25", "--out", str(tmp_path / "sheets")],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    sheet = cv2.imread(str(tmp_path / "sheets" / "sheet_0000-0005.png"))
    assert sheet.shape == (2 * 144, 3 * 192, 3)  # 768x576 frames at a quarter
    bad = subprocess.run([sys.executable, "-m", "bench", "contact-sheet", str(jsonl), "--crop", "5,5,1", "--out", str(tmp_path / "x")],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.startswith("error: --crop '5,5,1': expected X1,Y1,X2,Y2")


@pytest.mark.timeout(60)
def test_tracks_names_a_missing_or_broken_jsonl(tmp_path):
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"index": 0, "detections": []}\nnot json\n')
    for path, message in ((tmp_path / "none.jsonl", "not found: give the --jsonl file"), (broken, "line 2 is not JSON")):
        r = subprocess.run([sys.executable, "-m", "bench", "tracks", str(path), "--out", str(tmp_path / "o")],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and r.stderr.startswith("error: ") and message in r.stderr
