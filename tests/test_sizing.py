"""`python -m stream` with size priors, run as a user runs it: the size-prior source, a network's automatic scale
and cross-check, read back from the JSONL and the summary (stream/depth/sizing.py, stream/app.py)."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys

import pytest

from conftest import DATA, FASTDEPTH_CARD, ROOT
from depthstream.store import locate
from fastdepth_variants import write_variant

pytestmark = pytest.mark.slow


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stream", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def read(jsonl) -> list[dict]:
    return [json.loads(line) for line in jsonl.read_text().splitlines()]


@pytest.mark.timeout(150)
def test_size_prior_source_on_the_demo_clip_uses_its_profile(tmp_path):
    jsonl = tmp_path / "sp.jsonl"
    r = run_cli("--source", "demo", "--set", "depth.source=size-prior", "--max-frames", "6", "--closer-than", "40",
                "--jsonl", str(jsonl), "--output", str(tmp_path / "sp.mp4"))
    assert r.returncode == 0, r.stderr
    assert "size priors: f 1195 px (camera profile 'pets2009-view001'), pitch 16.5 deg" in r.stdout
    lines = read(jsonl)
    assert len(lines) == 6
    for rec in lines:
        depth = rec["depth"]
        assert depth["source"] == "size-prior" and depth["kind"] == "size-prior" and depth["camera"] == "pets2009-view001"
        assert depth["size_prior"]["focal_px"] == 1194.6 and depth["size_prior"]["focal_assumed"] is False
    persons = [d for rec in lines for d in rec["detections"] if d["class"] == "person"]
    assert len(persons) >= 10
    # the clip's pedestrians are 16-58 m away (its ground plane); the band keeps those nearer than 40 m
    assert all(d["depth_m"] is not None and 12 < d["depth_m"] < 40 and d["depth_spread_m"] > 0 for d in persons)
    assert sum(d["depth_reliable"] for d in persons) >= 0.5 * len(persons)  # the rest: shortened boxes, bounds


@pytest.mark.timeout(150)
def test_size_prior_source_without_a_profile_states_the_assumed_focal_length_and_flags_every_distance(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(DATA / "basketball2.png", photos / "office.png")
    jsonl = tmp_path / "sp.jsonl"
    r = run_cli("--source", str(photos), "--set", "depth.source=size-prior", "--jsonl", str(jsonl))
    assert r.returncode == 0, r.stderr
    assert "size priors: f 457 px (assumed: hfov 70 deg)" in r.stdout
    (rec,) = read(jsonl)
    assert rec["depth"]["size_prior"]["focal_px"] == round(320 / math.tan(math.radians(35)), 1)
    assert rec["depth"]["size_prior"]["focal_assumed"] is True and "assumed" in rec["depth"]["state"]
    standing = [d for d in rec["detections"] if d["class"] == "person" and d["depth_m"] is not None]
    assert standing and all(1 < d["depth_m"] < 6 for d in standing)  # two people a few metres away in an office
    assert all(not d["depth_reliable"] and "focal length assumed" in d["depth_note"] for d in standing)


@pytest.mark.timeout(150)
def test_fastdepth_on_the_street_clip_is_flagged_out_of_domain_and_scaled(tmp_path):
    jsonl = tmp_path / "fd.jsonl"
    r = run_cli("--source", "demo", "--depth-model", str(FASTDEPTH_CARD), "--max-frames", "10", "--jsonl", str(jsonl))
    assert r.returncode == 0, r.stderr
    assert "fastdepth-224-nyu looks out of its domain" in r.stdout and "automatic scale: calibrated in" in r.stdout
    last = read(jsonl)[-1]
    depth = last["depth"]
    assert depth["crosscheck"]["verdict"] == "out of domain" and depth["crosscheck"]["ratio"] < 0.5
    assert depth["scale"]["fit"] == "scale" and depth["scale"]["state"] == "calibrated" and depth["scale"]["applied"]
    assert depth["scale"]["scale"] > 2 and depth["scale"]["spread"] > 0
    assert depth["valid_range_m"][1] == pytest.approx(10.0 * depth["scale"]["scale"], rel=1e-3)  # scaled with it
    persons = [d for d in last["detections"] if d["class"] == "person"]
    assert persons and all(10 < d["depth_m"] < 80 for d in persons)  # scaled from FastDepth's 2-5 m
    assert not any(d["depth_reliable"] for d in last["detections"])
    assert all("out of domain by the size priors' cross-check" in d["depth_note"] for d in last["detections"])


@pytest.mark.timeout(150)
def test_a_relative_network_says_uncalibrated_where_nothing_has_a_known_size(tmp_path):
    """An inverse-depth network (FastDepth's metres turned into 1 / (3 m)) without a calibration, on a folder of
    two photos: a bedroom (nothing of known size: uncalibrated, no metres) and an office (one standing man: still
    fewer references than the default two per frame)."""
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(locate("coco_val2017_000000000632.jpg"), photos / "a_bedroom.jpg")
    shutil.copy(DATA / "basketball2.png", photos / "b_office.png")
    card = write_variant(tmp_path, 3.0, True)
    jsonl = tmp_path / "rel.jsonl"
    r = run_cli("--source", str(photos), "--depth-model", str(card), "--jsonl", str(jsonl))
    assert r.returncode == 0, r.stderr
    lines = read(jsonl)
    assert len(lines) == 2
    for rec in lines:
        assert rec["depth"]["kind"] == "relative+autoscaled" and rec["depth"]["scale"]["state"] == "uncalibrated"
        assert "uncalibrated" in rec["depth"]["state"]
        assert rec["detections"] and all(d["depth_m"] is None and not d["depth_reliable"] for d in rec["detections"])
        assert all("uncalibrated: too few references" in d["depth_note"] for d in rec["detections"])
    assert lines[0]["depth"]["size_prior"]["references"] == 0 and lines[1]["depth"]["size_prior"]["references"] == 1
    r = run_cli("--source", str(photos), "--depth-model", str(card), "--set", "depth.autoscale.mode=never")
    assert r.returncode == 2 and r.stderr.startswith("error: depth model") and "has no calibration" in r.stderr
