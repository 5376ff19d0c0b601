"""The published depth-evaluation protocol (bench/depth_metrics.py) against hand-computed values, the Eigen and
Garg crops against their published pixel bounds, and python -m bench depth on real pairs with the real
FastDepth-224 (ground truth on chessboards, by solvePnP)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from bench.__main__ import main
from bench.board_rgbd import write_board_pairs
from bench.depth_metrics import align, cap, crop_mask, depth_metrics, evaluate, mean_over_images, seed_metric
from depthstream.errors import ConfigError
from depthstream.types import Frame
from stream.calibrate.chessboard import Board
from stream.depth import open_depth_model

from conftest import CHESSBOARD_PHOTOS, DOG, FASTDEPTH_CARD


def test_metrics_hand_computed():
    gt = np.array([1.0, 1.0, 1.0, 1.0])
    pred = np.array([1.1, 1.5, 1.9, 3.0])  # ratios 1.1, 1.5, 1.9, 3.0
    m = depth_metrics(pred, gt)
    assert m["abs_rel"] == pytest.approx((0.1 + 0.5 + 0.9 + 2.0) / 4)
    assert m["sq_rel"] == pytest.approx((0.01 + 0.25 + 0.81 + 4.0) / 4)
    assert m["rmse_m"] == pytest.approx(math.sqrt((0.01 + 0.25 + 0.81 + 4.0) / 4))
    assert m["rmse_log"] == pytest.approx(math.sqrt(sum(math.log(v) ** 2 for v in (1.1, 1.5, 1.9, 3.0)) / 4))
    assert m["log10"] == pytest.approx(sum(math.log10(v) for v in (1.1, 1.5, 1.9, 3.0)) / 4)
    # 1.25 = 1.25, 1.25^2 = 1.5625, 1.25^3 = 1.953125
    assert (m["delta_1"], m["delta_2"], m["delta_3"]) == (0.25, 0.5, 0.75)
    gt = np.array([1.0, 2.0, 4.0])
    m = depth_metrics(np.array([2.0, 2.0, 2.0]), gt)
    assert m["abs_rel"] == pytest.approx(0.5) and m["sq_rel"] == pytest.approx(2 / 3)
    assert m["rmse_m"] == pytest.approx(math.sqrt(5 / 3)) and m["rmse_log"] == pytest.approx(math.log(2) * math.sqrt(2 / 3))
    assert m["log10"] == pytest.approx(2 * math.log10(2) / 3)
    assert (m["delta_1"], m["delta_2"], m["delta_3"]) == (pytest.approx(1 / 3),) * 3


def test_seed_metric_normalises_and_rounds():
    gt = np.array([1.0, 2.0, 3.0, 4.0])
    assert seed_metric(gt * 7 + 3, gt) == 1.0  # blind to a positive scale and shift
    assert seed_metric(gt[::-1].copy(), gt) == 0.0  # [1, .67, .33, 0] vs [0, .33, .67, 1], rounded
    assert seed_metric(np.array([1.0, 1.0, 3.0, 4.0]), gt, decimals=1) == 0.75


def test_eigen_crop_is_nyus_published_bounds():
    mask = crop_mask((480, 640), "eigen")
    assert mask.sum() == (471 - 45) * (601 - 41)
    assert mask[45, 41] and mask[470, 600] and not mask[44, 41] and not mask[45, 40]
    assert not mask[471, 600] and not mask[470, 601]
    with pytest.raises(ValueError, match=r"defined on NYU's 480x640 frames, the ground truth is 240x320"):
        crop_mask((240, 320), "eigen")


def test_garg_crop_on_a_kitti_frame():
    mask = crop_mask((375, 1242), "garg")  # KITTI's 375 x 1242: rows 153:371, columns 44:1197
    rows, cols = np.nonzero(mask)
    assert (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1) == (153, 371, 44, 1197)
    assert crop_mask((10, 10), "none").all()
    with pytest.raises(ValueError, match="crop must be one of none, eigen, garg"):
        crop_mask((10, 10), "centre")


def test_cap_is_btss():
    out = cap(np.array([np.nan, np.inf, 20.0, 0.0, 5.0]), 1e-3, 10.0)
    assert out.tolist() == [1e-3, 10.0, 10.0, 1e-3, 5.0]


def test_valid_pixels_cap_and_crop_in_evaluate():
    gt = np.full((4, 4), 9.0, np.float32)
    gt[0, 0] = np.nan  # no ground truth
    gt[0, 1] = 10.0  # at max_depth: left out (strict, as BTS)
    gt[0, 2] = 0.001  # at min_depth: left out
    pred = np.full((4, 4), 12.0, np.float32)  # beyond the range: capped to 10 -> |10 - 9| / 9
    m = evaluate(pred, gt, max_depth=10.0)
    assert m["valid_pixels"] == 13 and m["abs_rel"] == pytest.approx(1 / 9) and m["pred_median_m"] == 10.0
    uncapped = np.mean(np.abs(12.0 - 9.0) / 9.0)
    assert m["abs_rel"] < uncapped  # what the old bench reported: no cap
    # no prediction where the model gave none: NaN -> min_depth, scored, and counted
    pred[3, 3] = np.nan
    m2 = evaluate(pred, gt, max_depth=10.0)
    assert m2["no_prediction_share"] == pytest.approx(1 / 13) and m2["abs_rel"] > m["abs_rel"]


def test_prediction_resized_bilinear_to_the_ground_truth():
    gt = np.full((4, 4), 2.0, np.float32)
    pred = np.tile(np.array([[1.0, 3.0]], np.float32), (2, 1))  # 2x2: left column 1 m, right 3 m
    m = evaluate(pred, gt, max_depth=10.0)
    # bilinear 2 -> 4 columns with centres aligned: 1, 1.5, 2.5, 3 -> |err| / 2 = .5, .25, .25, .5
    assert m["abs_rel"] == pytest.approx((0.5 + 0.25 + 0.25 + 0.5) / 4)


def test_mean_over_images_not_over_pixels():
    a = {"abs_rel": 1.0, **{k: 0.0 for k in ("sq_rel", "rmse_m", "rmse_log", "log10", "delta_1", "delta_2",
                                              "delta_3", "seed_equal_share")}}
    b = dict(a, abs_rel=0.0)
    assert mean_over_images([a, b])["abs_rel"] == 0.5
    small = evaluate(np.full((1, 1), 2.0), np.full((1, 1), 1.0, np.float32), max_depth=10)  # 1 pixel, AbsRel 1
    large = evaluate(np.full((3, 3), 1.0), np.full((3, 3), 1.0, np.float32), max_depth=10)  # 9 pixels, AbsRel 0
    assert mean_over_images([small, large])["abs_rel"] == pytest.approx(0.5)  # pooled pixels would give 0.1


def test_alignment():
    gt = np.array([1.0, 2.0, 3.0, 5.0])
    aligned, s, _ = align(gt / 3, gt, "median", inverse=False)
    assert s == pytest.approx(3.0) and aligned == pytest.approx(gt)
    disparity = 0.5 / gt + 0.2  # a relative-inverse model's output, up to scale and shift
    aligned, s, t = align(1 / disparity, gt, "lstsq", inverse=True)  # given as depth = 1 / disparity
    assert aligned == pytest.approx(gt) and s == pytest.approx(2.0) and t == pytest.approx(-0.4)
    aligned, s, t = align(gt * 2 + 1, gt, "lstsq", inverse=False)
    assert aligned == pytest.approx(gt) and (s, t) == (pytest.approx(0.5), pytest.approx(-0.5))
    with pytest.raises(ValueError, match="align must be one of none, median, lstsq"):
        align(gt, gt, "affine", inverse=False)


def test_bench_protocol_flags_are_checked(tmp_path, capsys):
    (tmp_path / "a_rgb.png").write_bytes(b"")
    assert main(["depth", "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "give --max-depth (metres; predictions are capped to it) or --preset nyu" in capsys.readouterr().err
    assert main(["depth", "--data", str(tmp_path), "--min-depth", "20", "--max-depth", "10"]) == 2
    assert "need 0 < --min-depth < --max-depth, got 20 and 10" in capsys.readouterr().err


# -- the real FastDepth-224 -------------------------------------------------------------------------


def test_fastdepth_card_equals_an_independent_run(fastdepth_onnx, dog_image):
    """The bundled card through the product's depth stage gives what the model's own description says: BGR -> RGB,
    the whole frame stretched to 224 x 224 (bilinear), uint8 NHWC in, [1, 224, 224, 1] metres out, resized back."""
    import cv2
    import onnxruntime as ort

    frame = Frame(dog_image, 0, None, 0, "dog")
    with open_depth_model(FASTDEPTH_CARD) as depth:
        got = depth(frame).metres
    session = ort.InferenceSession(str(fastdepth_onnx), providers=["CPUExecutionProvider"])
    x = cv2.resize(cv2.cvtColor(dog_image, cv2.COLOR_BGR2RGB), (224, 224), interpolation=cv2.INTER_LINEAR)[None]
    raw = session.run(["depth"], {"image": x})[0]
    assert raw.shape == (1, 224, 224, 1) and raw.dtype == np.float32
    want = cv2.resize(raw[0, :, :, 0], (dog_image.shape[1], dog_image.shape[0]), interpolation=cv2.INTER_LINEAR)
    assert got.shape == dog_image.shape[:2] and np.isfinite(got).all()
    assert np.max(np.abs(got - want)) < 1e-4
    assert 0.5 < float(np.median(got)) < 10  # inside NYU's range on an outdoor photo: no unit check is possible here


def test_bench_depth_on_chessboard_ground_truth(tmp_path, capsys):
    """Real pairs: two chessboard photos, their board pixels' depth by solvePnP (25 mm squares)."""
    from stream.calibrate.cli import main as calibrate

    profile = tmp_path / "cam.yaml"  # the intrinsics from all 13 photos, then ground truth for two of them
    assert calibrate(["chessboard", *map(str, CHESSBOARD_PHOTOS), "--board", "9x6", "--square-mm", "25",
                      "--out", str(profile)]) == 0
    pairs = tmp_path / "pairs"
    write_board_pairs([str(p) for p in CHESSBOARD_PHOTOS[:2]], Board(9, 6, 0.025), pairs, camera=str(profile))
    assert json.loads((pairs / "boards.json").read_text())["photos"][0]["centre_depth_m"] == pytest.approx(0.383, abs=0.01)
    out = tmp_path / "out"
    for how in ("none", "median"):
        assert main(["depth", "--data", str(pairs), "--max-depth", "10",  # the default: the bundled FastDepth-224
                     "--align", how, "--out", str(out / how)]) == 0
    none = json.loads((out / "none" / "depth.json").read_text())
    median = json.loads((out / "median" / "depth.json").read_text())
    assert none["settings"]["crop"] == "none" and none["pairs"] == 2
    assert none["model"].startswith("fastdepth-224-nyu: ") and none["model"].endswith("(metric)")
    first = none["per_image"][0]
    assert first["name"] == "left01" and 0.3 < first["gt_median_m"] < 0.45
    assert first["pred_median_m"] > 1.5  # FastDepth reads a board 0.38 m away as metres: below its NYU range
    assert none["metrics"]["abs_rel"] > 2 and none["metrics"]["delta_1"] == 0.0
    m = median["metrics"]
    assert m["abs_rel"] < 0.2 and m["delta_1"] > 0.7  # the board's shape, once the scale is fixed
    assert median["per_image"][0]["pred_median_m"] == pytest.approx(median["per_image"][0]["gt_median_m"], rel=1e-3)
    assert "| **mean over images** |" in (out / "none" / "depth.md").read_text()


def test_board_rgbd_mistakes(tmp_path, capsys):
    from conftest import DATA

    out = tmp_path / "pairs"
    out.mkdir()
    (out / "x.txt").write_text("mine")
    args = ["board-rgbd", str(CHESSBOARD_PHOTOS[0]), "--board", "9x6", "--square-mm", "25", "--out", str(out)]
    assert main(args) == 2
    assert "exists and is not empty; choose another folder or pass --force" in capsys.readouterr().err
    assert (out / "x.txt").read_text() == "mine"
    profile = tmp_path / "cam.yaml"
    profile.write_text("name: c\nintrinsics: {width: 768, height: 576, fx: 600, source: {method: assumed}}\n")
    assert main(["board-rgbd", str(DOG), "--board", "9x6", "--square-mm", "25", "--camera", str(profile),
                 "--out", str(tmp_path / "none")]) == 2
    assert "the 9x6 board was found in none of the 1 photos" in capsys.readouterr().err


def test_depth_png_round_trip_and_range(tmp_path):
    from stream.calibrate.rgbd import read_depth_png, write_depth_png

    metres = np.array([[0.383, np.nan], [65.5, 1.0]], np.float32)
    back = read_depth_png(write_depth_png(tmp_path / "d.png", metres), 1000)
    assert back[0, 0] == pytest.approx(0.383) and np.isnan(back[0, 1]) and back[1, 0] == pytest.approx(65.5)
    with pytest.raises(ConfigError, match=r"depth up to 70.0 m does not fit a 16-bit PNG at 1000 units per metre"):
        write_depth_png(tmp_path / "e.png", np.array([[70.0]], np.float32))
