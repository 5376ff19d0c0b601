"""Per-box depth statistics on small synthetic depth maps with hand-computed answers."""

from __future__ import annotations

import time

import numpy as np
import pytest

from depthstream.errors import ConfigError
from depthstream.schema.config import load_config
from depthstream.types import DepthMap, Detections
from stream.boxdepth import BoxStat, assign_box_depth, parse_box_stat


def dets(*boxes) -> Detections:
    n = len(boxes)
    return Detections(np.array(boxes, np.float32).reshape(n, 4), np.ones(n, np.float32), np.zeros(n, np.int32))


def dmap(metres: np.ndarray) -> DepthMap:
    return DepthMap(np.asarray(metres, np.float32), "test", "metric")


@pytest.fixture()
def near_centre() -> DepthMap:
    """10 x 10 map at 4 m with a 2 m object in rows/columns 3..6 (16 pixels)."""
    m = np.full((10, 10), 4.0, np.float32)
    m[3:7, 3:7] = 2.0
    return dmap(m)


def one(d: Detections) -> tuple[float, float, float]:
    assert len(d) == 1
    return float(d.depth_m[0]), float(d.depth_valid_frac[0]), float(d.depth_spread_m[0])


def test_center_mean_samples_central_40_percent(near_centre):
    # Box 0..10: central 40 % is [3, 7) -> exactly the 16 pixels of the 2 m object.
    out = assign_box_depth(dets([0, 0, 10, 10]), near_centre, "center_mean")
    assert one(out) == pytest.approx((2.0, 1.0, 0.0))
    assert out.depth_m.dtype == np.float32


def test_center_mean_roi_whole_box(near_centre):
    # roi 1: all 100 pixels, (84 * 4 + 16 * 2) / 100 = 3.68 m; p25 = 4 and p75 = 4 -> spread 0.
    assert one(assign_box_depth(dets([0, 0, 10, 10]), near_centre, "center_mean", roi=1.0)) == pytest.approx((3.68, 1.0, 0.0))


def test_median_and_percentiles(near_centre):
    box = dets([0, 0, 10, 10])
    assert one(assign_box_depth(box, near_centre, "median"))[0] == pytest.approx(4.0)
    # percentile:0 is the minimum, the nearest surface.
    assert one(assign_box_depth(box, near_centre, "percentile:0"))[0] == pytest.approx(2.0)
    # 16 % of the pixels are 2 m: the 10th percentile (index 9.9 of 100 sorted) is still 2 m, the 50th 4 m.
    assert one(assign_box_depth(box, near_centre, "percentile:10"))[0] == pytest.approx(2.0)
    assert one(assign_box_depth(box, near_centre, "percentile:50"))[0] == pytest.approx(4.0)
    assert one(assign_box_depth(box, near_centre, "percentile:100"))[0] == pytest.approx(4.0)


def test_percentile_interpolates_and_spread_is_iqr():
    # One row 1, 2, 3, 4, 5 m: p25 = 2, p75 = 4 -> spread 2; p10 = 1 + 0.4 = 1.4; median 3.
    m = dmap(np.arange(1, 6, dtype=np.float32)[None, :])
    box = dets([0, 0, 5, 1])
    assert one(assign_box_depth(box, m, "percentile:10")) == pytest.approx((1.4, 1.0, 2.0))
    assert one(assign_box_depth(box, m, "median")) == pytest.approx((3.0, 1.0, 2.0))


def test_invalid_pixels_excluded_and_counted():
    m = np.full((10, 10), 3.0, np.float32)
    m[0:5, 0:5] = np.nan  # 25 NaN
    m[9, 9] = -1.0  # 1 negative
    m[9, 8] = 0.0  # 1 zero
    out = assign_box_depth(dets([0, 0, 10, 10]), dmap(m), "median")
    assert one(out) == pytest.approx((3.0, 0.73, 0.0))
    # Mean is not dragged by the invalid pixels either.
    assert one(assign_box_depth(dets([0, 0, 10, 10]), dmap(m), "center_mean", roi=1.0))[0] == pytest.approx(3.0)


def test_no_valid_pixel():
    m = np.full((10, 10), np.nan, np.float32)
    d, frac, spread = one(assign_box_depth(dets([2, 2, 8, 8]), dmap(m), "median"))
    assert np.isnan(d) and frac == 0.0 and np.isnan(spread)


def test_bottom_uses_bottom_rows_of_central_width():
    # Depth = row + 1 (40 rows). Outer columns are NaN: bottom must only sample the central 40 % (columns 3..6).
    m = np.repeat(np.arange(1, 41, dtype=np.float32)[:, None], 10, axis=1)
    m[:, :3] = np.nan
    m[:, 7:] = np.nan
    depth = dmap(m)
    # Box height 40: round(0.05 * 40) = 2 rows (38, 39) x 4 columns = four 39s and four 40s -> median 39.5;
    # p25 at sorted index 0.25 * 7 = 1.75 -> 39, p75 at 5.25 -> 40: spread 1.
    assert one(assign_box_depth(dets([0, 0, 10, 40]), depth, "bottom")) == pytest.approx((39.5, 1.0, 1.0))
    # Box height 30 (rows 0..29): round(1.5) = 2 rows (28, 29) -> median(29, 30) = 29.5.
    assert one(assign_box_depth(dets([0, 0, 10, 30]), depth, "bottom"))[0] == pytest.approx(29.5)
    # Box height 10 (rows 5..14): max(1, round(0.5)) = 1 row (14) -> 15.
    assert one(assign_box_depth(dets([0, 5, 10, 15]), depth, "bottom"))[0] == pytest.approx(15.0)
    # Median over the whole box instead sees rows 1..40 -> 20.5.
    assert one(assign_box_depth(dets([0, 0, 10, 40]), depth, "median")) == pytest.approx((20.5, 0.4, 19.5))


def test_boxes_clipped_to_the_map():
    # Depth = column + 1 on a 10 x 10 map.
    depth = dmap(np.tile(np.arange(1, 11, dtype=np.float32), (10, 1)))
    out = assign_box_depth(dets([-5, -5, 5, 5], [8, 0, 15, 10], [20, 20, 30, 30]), depth, "median")
    # [-5, 5] -> columns 0..4 -> median 3; [8, 15] -> columns 8, 9 -> 9.5; fully outside -> NaN.
    assert out.depth_m[:2] == pytest.approx([3.0, 9.5])
    assert out.depth_valid_frac[:2] == pytest.approx([1.0, 1.0])
    assert np.isnan(out.depth_m[2]) and out.depth_valid_frac[2] == 0 and np.isnan(out.depth_spread_m[2])
    # center_mean on the clipped box [8, 10]: central 40 % is [8.6, 9.4] -> at least the pixel under the centre (9).
    assert assign_box_depth(dets([8, 0, 15, 10]), depth, "center_mean").depth_m[0] == pytest.approx(10.0)


def test_degenerate_and_subpixel_boxes():
    depth = dmap(np.tile(np.arange(1, 11, dtype=np.float32), (10, 1)))
    out = assign_box_depth(dets([3, 3, 3, 8], [4, 6, 9, 6], [2.2, 2.2, 2.6, 2.6]), depth, "median")
    assert np.isnan(out.depth_m[:2]).all() and (out.depth_valid_frac[:2] == 0).all() and np.isnan(out.depth_spread_m[:2]).all()
    # A box smaller than a pixel samples the pixel under its centre: column 2 -> 3 m.
    assert out.depth_m[2] == pytest.approx(3.0) and out.depth_valid_frac[2] == 1.0


def test_empty_detections_and_input_unchanged(near_centre):
    empty = assign_box_depth(Detections.empty(), near_centre, "median")
    assert len(empty) == 0 and empty.depth_m.shape == (0,)
    d = dets([0, 0, 10, 10])
    assign_box_depth(d, near_centre, "median")
    assert np.isnan(d.depth_m).all()


def test_fast_enough_for_50_boxes():
    rng = np.random.default_rng(0)
    depth = dmap(rng.uniform(1, 50, (576, 768)).astype(np.float32))
    xy = rng.uniform(0, 1, (50, 2)) * (568, 376)
    wh = rng.uniform(20, 200, (50, 2))
    boxes = dets(*np.concatenate([xy, xy + wh], axis=1))
    for stat in ("center_mean", "median", "percentile:10", "bottom"):
        start = time.perf_counter()
        out = assign_box_depth(boxes, depth, stat)
        assert time.perf_counter() - start < 0.5
        assert np.isfinite(out.depth_m).all()


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("center_mean", BoxStat("center_mean")), ("median", BoxStat("median")), ("bottom", BoxStat("bottom")),
     ("percentile:0", BoxStat("percentile", 0.0)), ("percentile:12.5", BoxStat("percentile", 12.5)),
     ("percentile:100", BoxStat("percentile", 100.0))],
)
def test_parse_box_stat(spec, expected):
    assert parse_box_stat(spec) == expected


FORMS = r"expected auto \| center_mean \| median \| percentile:P \(0 <= P <= 100\) \| bottom$"


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("mean", r"^depth\.box_stat: got 'mean', " + FORMS),
        ("", r"^depth\.box_stat: got '', " + FORMS),
        (False, r"^depth\.box_stat: got False, " + FORMS),
        ("percentile:101", r"^depth\.box_stat: got 'percentile:101', " + FORMS),
        ("percentile:-1", r"^depth\.box_stat: got 'percentile:-1', " + FORMS),
        ("percentile:ten", r"^depth\.box_stat: got 'percentile:ten', " + FORMS),
        ("percentile:nan", r"^depth\.box_stat: got 'percentile:nan', " + FORMS),
    ],
)
def test_box_stat_errors(spec, match):
    """depth.box_stat is checked when the config loads, before any frame."""
    with pytest.raises(ConfigError, match=match):
        load_config(overrides={"depth.box_stat": spec})


@pytest.mark.parametrize("roi", [0, 1.5, -0.2, "0.4"])
def test_roi_validated(roi):
    with pytest.raises(ConfigError, match=r"^depth\.roi: got .*, expected a fraction in \(0, 1\]$"):
        load_config(overrides={"depth.roi": roi})
