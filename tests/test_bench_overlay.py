"""python -m bench overlay: the hide measure on hand-made pictures, and the product measured on real frames."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.__main__ import main
from bench.overlay_bench import COVERED, inner_box, painted_fractions, summarise_measures, FrameMeasure


def test_inner_box_is_the_box_less_15_percent_per_side() -> None:
    assert inner_box([0, 0, 100, 200], 640, 480) == (15, 30, 86, 171)
    assert inner_box([600, 400, 700, 500], 640, 480) == (615, 415, 640, 480)  # clipped to the frame
    assert inner_box([10, 10, 11, 11], 640, 480) is None  # nothing left inside


def test_painted_fractions_count_what_changed_inside_each_box() -> None:
    source = np.full((100, 200, 3), 100, np.uint8)
    out = source.copy()
    a, b, c = [10, 10, 50, 90], [60, 10, 100, 90], [110, 10, 150, 90]
    out[10:90, 10:50] = (0, 0, 255)        # a: painted all over
    out[10:22, 60:100] = (0, 0, 255)       # b: only the top strip that is not its inner area (a label at its edge)
    out[10:90, 110:150] = 100 + 20         # c: changed by 20 levels: not painted (threshold 24)
    fractions = painted_fractions(source, out, [a, b, c])
    assert fractions == [1.0, 0.0, 0.0]
    out[10:90, 110:130] = 100 + 30         # c: its left half changed by 30 levels
    assert painted_fractions(source, out, [c])[0] == pytest.approx(0.5, abs=0.05)


def test_painted_fractions_need_frames_of_one_size() -> None:
    with pytest.raises(ValueError, match="differ in size"):
        painted_fractions(np.zeros((10, 10, 3), np.uint8), np.zeros((10, 12, 3), np.uint8), [])


def test_hidden_share_counts_boxes_over_the_threshold() -> None:
    frames = [FrameMeasure("a.png", (10, 10), [0.0, COVERED + 0.01], 1.0), FrameMeasure("b.png", (10, 10), [COVERED], 2.0)]
    s = summarise_measures(frames)
    assert (s["frames"], s["boxes"], s["hidden"]) == (2, 3, 1)
    assert s["hidden_share"] == pytest.approx(1 / 3, abs=1e-4)


@pytest.mark.timeout(300)
def test_overlay_bench_on_demo_frames_hides_at_most_5_percent(tmp_path) -> None:
    """The real product (detector, ground plane, overlay) on the first demo frames, as a user runs it."""
    keep = tmp_path / "frames"
    assert main(["overlay", "--source", "demo", "--frames", "6", "--out", str(tmp_path), "--keep", str(keep)]) == 0
    report = json.loads((tmp_path / "overlay.json").read_text())
    assert report["kind"] == "overlay" and report["settings"]["frames"] == 6
    assert report["settings"]["frame_sizes"] == ["768x576"]
    assert report["all"]["boxes"] >= 30  # the walkway's pedestrians
    assert report["all"]["hidden_share"] <= 0.05
    assert report["overlay_ms"]["n"] == 6 and report["draw_ms"]["n"] == 6
    assert len(list((keep / "annotated").glob("frame_*.png"))) == 6
    assert "| all (6) |" in (tmp_path / "overlay.md").read_text()


def test_overlay_bench_usage_errors(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["overlay", "--size", "640by360"])
    assert exit_.value.code == 2
    assert "error: argument --size: --size must be WIDTHxHEIGHT in pixels" in capsys.readouterr().err
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x.txt").write_text("mine")
    assert main(["overlay", "--keep", str(busy), "--out", str(tmp_path)]) == 2
    assert "--keep" in capsys.readouterr().err and (busy / "x.txt").read_text() == "mine"
