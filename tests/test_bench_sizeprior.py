"""`python -m bench size-prior`: the figures of README 'Size priors and automatic scale' come from this command."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.mark.timeout(180)
def test_size_prior_bench_writes_its_report(tmp_path):
    r = subprocess.run([sys.executable, "-m", "bench", "size-prior", "--frames", "12", "--no-plot", "--out", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True, timeout=170)
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "size-prior.json").read_text())
    assert report["kind"] == "size-prior" and report["settings"]["frames"] == 12
    persons = next(a for a in report["agreement"]["profile"] if a["class"] == "person" and a["boxes"] == "references")
    assert persons["n"] >= 20 and persons["median_abs_rel"] < 0.15
    rows = {row["source"]: row for row in report["autoscale"]}
    assert abs(rows["ground plane / 3"]["error"]) < 0.15 and rows["ground plane / 3"]["calibrated"]
    assert rows["fastdepth x 3"]["error"] == pytest.approx(0.0, abs=1e-3)  # the fit follows the factor
    verdicts = {(c["source"], c["scene"].split(" ")[0]): c["verdict"] for c in report["crosscheck"]}
    assert verdicts[("fastdepth-224-nyu", "bundled")] == "out of domain" and verdicts[("ground-plane", "bundled")] == "agrees"
    assert verdicts[("fastdepth-224-nyu", "coco_val2017_000000000139.jpg")] == "agrees"
    assert verdicts[("fastdepth-224-nyu", "coco_val2017_000000001532.jpg")] == "out of domain"
    md = (tmp_path / "size-prior.md").read_text()
    assert "### 1. Size-prior distance vs the ground plane's" in md and "### 3. Cross-check" in md
    assert "size-prior.md" in r.stdout
