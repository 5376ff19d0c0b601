"""`python -m stream` with size priors, run as a user runs it: the size-prior source, a network's automatic scale
and cross-check, read back from the JSONL and the summary (stream/depth/sizing.py, stream/app.py)."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT
from depthstream.store import locate
from fastdepth_variants import write_variant

pytestmark = pytest.mark.slow


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stream", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.timeout(150)
def test_size_prior_source_ranges_every_box_and_states_the_assumed_focal_length(tmp_path):
    jsonl = tmp_path / "sp.jsonl"
    r = run_cli("--source", "demo", "--set", "depth.source=size-prior", "--max-frames", "6", "--closer-than", "40",
                "--jsonl", str(jsonl), "--output", str(tmp_path / "sp.mp4"))
    assert r.returncode == 0, r.stderr
    assert "size priors: f 548 px (assumed: hfov 70 deg)" in r.stdout
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(lines) == 6
    for rec in lines:
        depth = rec["depth"]
        assert depth["source"] == "size-prior" and depth["kind"] == "size-prior"
        assert depth["size_prior"]["focal_px"] == round(384 / math.tan(math.radians(35)), 1)
        assert depth["size_prior"]["focal_assumed"] is True and "assumed" in depth["state"]
    persons = [d for rec in lines for d in rec["detections"] if d["class"] == "person"]
    assert len(persons) >= 20
    assert all(d["depth_m"] is not None and 0 < d["depth_m"] < 40 and d["depth_spread_m"] > 0 for d in persons)
    assert not any(d["depth_reliable"] for d in persons)  # an assumed focal length: every distance is a guess


@pytest.mark.timeout(150)
def test_fastdepth_on_the_street_clip_is_flagged_out_of_domain_and_scaled(tmp_path, fastdepth_card):
    jsonl = tmp_path / "fd.jsonl"
    r = run_cli("--source", "demo", "--depth-model", str(fastdepth_card), "--max-frames", "10", "--jsonl", str(jsonl))
    assert r.returncode == 0, r.stderr
    assert "fastdepth-224 looks out of its domain" in r.stdout and "automatic scale: calibrated in" in r.stdout
    last = json.loads(jsonl.read_text().splitlines()[-1])
    depth = last["depth"]
    assert depth["crosscheck"]["verdict"] == "out of domain" and depth["crosscheck"]["ratio"] < 0.5
    assert depth["scale"]["fit"] == "scale" and depth["scale"]["state"] == "calibrated" and depth["scale"]["applied"]
    assert depth["scale"]["scale"] > 2 and depth["scale"]["spread"] > 0
    assert last["detections"] and not any(d["depth_reliable"] for d in last["detections"])


@pytest.mark.timeout(150)
def test_a_relative_network_says_uncalibrated_where_nothing_has_a_known_size(tmp_path):
    """An inverse-depth network (FastDepth's metres turned into 1 / (3 m)) without a calibration, on a folder of
    two photos: a bedroom (nothing of known size: uncalibrated, no metres) and an office (one standing man: still
    fewer references than the default two per frame)."""
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(locate("coco_val2017_000000000632.jpg"), photos / "a_bedroom.jpg")
    shutil.copy(ROOT / "tests" / "data" / "basketball2.png", photos / "b_office.png")
    card = write_variant(tmp_path, 3.0, True)
    jsonl = tmp_path / "rel.jsonl"
    r = run_cli("--source", str(photos), "--depth-model", str(card), "--jsonl", str(jsonl))
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(lines) == 2
    for rec in lines:
        assert rec["depth"]["kind"] == "relative+autoscaled" and rec["depth"]["scale"]["state"] == "uncalibrated"
        assert "uncalibrated" in rec["depth"]["state"]
        assert rec["detections"] and all(d["depth_m"] is None and not d["depth_reliable"] for d in rec["detections"])
    assert lines[0]["depth"]["size_prior"]["references"] == 0 and lines[1]["depth"]["size_prior"]["references"] == 1
    r = run_cli("--source", str(photos), "--depth-model", str(card), "--set", "depth.autoscale.mode=never")
    assert r.returncode == 2 and r.stderr.startswith("error: depth model") and "has no calibration" in r.stderr
