"""The serial layout made sound (issue 10): on the bundled clip, with ground-plane depth and with the bundled network,
the serial layout finds the objects the parallel layout finds; the old mask (grey, not grown) lost objects and
invented kites, boats and airplanes from its outline. Counts come from python -m bench layouts-agree's own code."""

from __future__ import annotations

import pytest

from bench.__main__ import main
from bench.layouts_agree import agree_on

from conftest import FASTDEPTH_CARD

OLD_MASK = ["mask.fill=grey", "mask.grow_height_m=0"]
FRAMES = 15


def shares(totals: dict) -> tuple[float, float]:
    """(share of parallel's boxes serial also found, boxes only serial found per parallel box)."""
    return totals["both"] / totals["parallel"], totals["serial_only"] / totals["parallel"]


@pytest.mark.timeout(120)
def test_ground_plane_serial_finds_what_parallel_finds():
    new = agree_on("demo", closer_than=30, max_frames=FRAMES)
    old = agree_on("demo", closer_than=30, max_frames=FRAMES, sets=OLD_MASK)
    assert new["depth"]["source"] == "ground-plane" and new["totals"]["parallel"] >= 40
    found, invented = shares(new["totals"])
    assert found >= 0.95 and invented <= 0.05, new["totals"]
    # the old mask cut the people standing near the band's edge: their boxes shrank to their legs, or vanished
    assert shares(old["totals"])[0] < 0.85, old["totals"]


@pytest.mark.timeout(180)
def test_learned_depth_serial_invents_nothing_from_the_mask():
    new = agree_on("demo", closer_than=2.5, max_frames=FRAMES, depth_model=str(FASTDEPTH_CARD))
    old = agree_on("demo", closer_than=2.5, max_frames=FRAMES, depth_model=str(FASTDEPTH_CARD), sets=OLD_MASK)
    assert new["depth"]["source"] == "fastdepth-224-nyu" and new["totals"]["parallel"] >= 20
    found, invented = shares(new["totals"])
    assert found >= 0.9 and invented <= 0.1, new["totals"]
    # the grey outline of a learned depth map's mask reads as things that fly
    flying = sum(old["classes"].get(c, {}).get("serial_only", 0) for c in ("kite", "bird", "airplane"))
    assert flying >= 5 and not any(c in new["classes"] for c in ("kite", "bird", "airplane")), old["classes"]


@pytest.mark.timeout(120)
def test_cli_writes_the_counts(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["layouts-agree", "--source", "demo", "--closer-than", "30", "--max-frames", "3", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| class | parallel | serial | both | serial only (invented) | parallel only (lost) |" in text
    assert (out / "layouts.json").is_file() and (out / "layouts.md").is_file()
    assert main(["layouts-agree", "--source", "demo", "--max-frames", "3", "--out", str(out)]) == 2
    assert "give a band (--closer-than and/or --further-than)" in capsys.readouterr().err
