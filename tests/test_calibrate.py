"""python -m stream calibrate: intrinsics from OpenCV's own chessboard photos (checked against OpenCV's result),
board distances by solvePnP, a depth model's scale from known distances and from RGB-D pairs (the real
FastDepth-224), and the one-line mistakes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.board_rgbd import write_board_pairs
from depthstream.schema.camera import load_profile
from depthstream.errors import ConfigError
from stream.calibrate.chessboard import Board, board_depth_map, board_pose, calibrate_photos, find_corners, read_gray
from stream.calibrate.cli import main
from stream.calibrate.depthfit import RawModel, Sample, fit_calibration, fit_known_distances, fit_rgbd

from conftest import CHESSBOARD, CHESSBOARD_PHOTOS, DATA, DOG, FASTDEPTH_CARD, ROOT

BOARD = Board(9, 6, 0.025)  # OpenCV's left_intrinsics.yml: board_width 9, board_height 6, square_size 0.025


@pytest.fixture(scope="module")
def opencv_result() -> dict:
    """What OpenCV's calibration sample wrote for the same 13 photos (Debian opencv-doc, left_intrinsics.yml)."""
    fs = cv2.FileStorage(str(CHESSBOARD / "left_intrinsics.yml"), cv2.FILE_STORAGE_READ)
    out = {"K": fs.getNode("camera_matrix").mat(), "dist": fs.getNode("distortion_coefficients").mat().ravel(),
           "rms": fs.getNode("avg_reprojection_error").real(), "extrinsics": fs.getNode("extrinsic_parameters").mat(),
           "square": fs.getNode("square_size").real(), "size": (int(fs.getNode("image_width").real()),
                                                               int(fs.getNode("image_height").real()))}
    fs.release()
    return out


@pytest.fixture(scope="module")
def calibration():
    return calibrate_photos(CHESSBOARD_PHOTOS, BOARD)


def test_intrinsics_agree_with_opencvs_own_result(calibration, opencv_result):
    assert len(CHESSBOARD_PHOTOS) == 13 and calibration.skipped == []
    assert calibration.size == opencv_result["size"] == (640, 480)
    k = opencv_result["K"]
    # Tolerance: 3 standard deviations of our own estimate (about 0.9-1.1 px each, from calibrateCameraExtended):
    # OpenCV's file used the same photos with fx = fy forced (flags 2), a small, legitimate difference.
    for name, ours, theirs in (("fx", calibration.fx, k[0, 0]), ("fy", calibration.fy, k[1, 1]),
                               ("cx", calibration.cx, k[0, 2]), ("cy", calibration.cy, k[1, 2])):
        assert calibration.std[name] < 1.5
        assert abs(ours - theirs) < 3 * calibration.std[name], (name, ours, theirs)
    assert abs(calibration.fx - 535.9) < 1.0
    assert np.allclose(calibration.distortion[:2], opencv_result["dist"][:2], atol=0.01)
    assert abs(calibration.rms_px - opencv_result["rms"]) < 0.05


def test_solvepnp_board_distances_match_opencvs_extrinsics(calibration, opencv_result):
    """Each photo's board translation (first inner corner) against OpenCV's extrinsics, same 25 mm squares."""
    assert opencv_result["square"] == pytest.approx(BOARD.square_m)
    theirs = opencv_result["extrinsics"][:, 3:6]
    centres = []
    for i, path in enumerate(CHESSBOARD_PHOTOS):
        pose = board_pose(find_corners(read_gray(path), BOARD), BOARD, calibration.matrix, calibration.distortion)
        assert np.allclose(pose.translation, theirs[i], atol=0.003), (path.name, pose.translation, theirs[i])
        centres.append(pose.centre_depth_m)
    assert 0.25 < min(centres) and max(centres) < 0.42  # a board held about 30-40 cm from the camera


def test_board_depth_map_is_the_board_plane(calibration):
    gray = read_gray(CHESSBOARD_PHOTOS[0])
    corners = find_corners(gray, BOARD)
    pose = board_pose(corners, BOARD, calibration.matrix, calibration.distortion)
    depth = board_depth_map(pose, gray.shape, calibration.matrix, calibration.distortion)
    assert np.isnan(depth[0, 0]) and np.isfinite(depth).sum() > 20_000
    # at each inner corner, the map equals the corner's own z in camera coordinates
    obj = BOARD.object_points().astype(np.float64)
    z_true = (obj @ pose.rotation.T + pose.translation)[:, 2]
    px = np.round(corners.reshape(-1, 2)).astype(int)
    inside = [i for i, (x, y) in enumerate(px) if np.isfinite(depth[y, x])]
    assert len(inside) > 30
    assert np.allclose(depth[px[inside, 1], px[inside, 0]], z_true[inside], atol=0.002)


def test_cli_chessboard_writes_a_profile(tmp_path, capsys, opencv_result):
    out = tmp_path / "cam.yaml"
    assert main(["chessboard", str(CHESSBOARD), "--board", "9x6", "--square-mm", "25", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "13 photos (0 without the whole board), RMS reprojection error 0.4" in text
    assert "left01.jpg: 0.383 m" in text and f"wrote {out}" in text
    p = load_profile(out)
    assert p.name == "cam" and p.intrinsics.source.method == "chessboard"
    assert (p.intrinsics.width, p.intrinsics.height) == (640, 480) and len(p.intrinsics.distortion) == 5
    assert abs(p.intrinsics.fx - opencv_result["K"][0, 0]) < 3
    # the intrinsics scale: the same camera at 1280x960
    assert p.intrinsics_for(1280, 960).fx == pytest.approx(2 * p.intrinsics.fx)


def _one_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


def test_cli_never_overwrites_a_profile_unless_forced(tmp_path, capsys):
    out = tmp_path / "cam.yaml"
    out.write_text("mine\n")
    args = ["chessboard", str(CHESSBOARD), "--board", "9x6", "--square-mm", "25", "--out", str(out)]
    assert main(args) == 2
    assert "cam.yaml already exists; choose another --out or pass --force" in _one_error(capsys)
    assert out.read_text() == "mine\n"
    assert main(args + ["--force"]) == 0 and load_profile(out).intrinsics is not None


def _fronto_parallel_photos(folder: Path) -> list[Path]:
    """Six synthetic photos of a 10 x 7-square board, all face-on (no tilt): the focal length is not observable."""
    paths = []
    for i, (sq, ox, oy) in enumerate([(30, 20, 20), (36, 100, 50), (40, 150, 60), (24, 300, 200), (28, 60, 150),
                                      (32, 200, 100)]):
        board = np.full((9 * sq, 12 * sq), 255, np.uint8)
        for r in range(7):
            for c in range(10):
                if (r + c) % 2 == 0:
                    board[sq + r * sq: sq + (r + 1) * sq, sq + c * sq: sq + (c + 1) * sq] = 0
        canvas = np.full((480, 640), 200, np.uint8)
        canvas[oy: oy + board.shape[0], ox: ox + board.shape[1]] = board
        paths.append(folder / f"face_on_{i}.png")
        cv2.imwrite(str(paths[-1]), canvas)
    return paths


@pytest.mark.parametrize("case, message", [
    ("few", r"found the whole 9x6 board in 3 of 3 photos; need at least 5 \(10-20 is better\)"),
    ("no board", r"found the whole 9x6 board in 0 of 2 photos"),
    ("poor", r"calibration too poor: RMS reprojection error 0.41 px > --max-rms 0.3 px \(worst photo .*left02.jpg"),
    ("face-on", r"the photos do not pin down the focal length .* add photos with the board tilted"),
    ("sizes", r"is 320x240 but .* is 640x480: calibrate one resolution at a time"),
    ("board", r"--board must be INNER corners as COLSxROWS, e.g. 9x6 .* got '9-6'"),
    ("square", r"--square-mm must be the printed square's side in millimetres \(> 0\), got -25"),
    ("missing", r"nowhere/\*.jpg: no such image, folder of images or glob"),
])
def test_cli_chessboard_mistakes_are_one_line(tmp_path, capsys, case, message):
    photos = [str(p) for p in CHESSBOARD_PHOTOS]
    extra, board, square = [], "9x6", "25"
    if case == "few":
        photos = photos[:3]
    elif case == "no board":
        flipped = tmp_path / "dog_flipped.jpg"
        cv2.imwrite(str(flipped), cv2.flip(cv2.imread(str(DOG)), 1))
        photos = [str(DOG), str(flipped)]
    elif case == "poor":
        extra = ["--max-rms", "0.3"]
    elif case == "face-on":
        photos = [str(p) for p in _fronto_parallel_photos(tmp_path)]
    elif case == "sizes":
        small = tmp_path / "small.jpg"
        cv2.imwrite(str(small), cv2.resize(cv2.imread(photos[0]), (320, 240)))
        photos = photos + [str(small)]
    elif case == "board":
        board = "9-6"
    elif case == "square":
        square = "-25"
    elif case == "missing":
        photos = [str(tmp_path / "nowhere" / "*.jpg")]
    out = tmp_path / "cam.yaml"
    assert main(["chessboard", *photos, "--board", board, "--square-mm", square, "--out", str(out), *extra]) == 2
    assert re.search(message, _one_error(capsys))
    assert not out.exists()


def test_python_m_stream_dispatches_calibrate_and_keeps_the_run_cli(tmp_path):
    run = lambda *a: subprocess.run([sys.executable, "-m", "stream", *a], cwd=ROOT, capture_output=True,  # noqa: E731
                                    text=True, timeout=60)
    help_ = run("calibrate", "--help")
    assert help_.returncode == 0 and "chessboard" in help_.stdout and "rgbd" in help_.stdout
    none = run("calibrate")
    assert none.returncode == 2 and none.stderr.startswith("error: ") and none.stderr.count("\n") == 1
    main_help = run("--help")
    assert main_help.returncode == 0 and "--closer-than" in main_help.stdout and "calibrate --help" in main_help.stdout


# -- a depth model's scale -------------------------------------------------------------------------


def test_fit_calibration_hand_values():
    d = np.array([1.0, 2.0, 4.0])
    # metric model reading 3x too far: scale = median(d / y) = 1/3, exact, so the residual is 0
    f = fit_calibration(3 * d, d, "metric")
    assert (f.fit, f.scale, f.shift, f.samples, f.range_m) == ("scale", pytest.approx(1 / 3), 0.0, 3, (1.0, 4.0))
    assert f.residual_abs_rel == pytest.approx(0.0, abs=1e-12)
    # relative-inverse: y = 2 / d + 0.5  ->  1 / d = 0.5 y - 0.25
    f = fit_calibration(2 / d + 0.5, d, "relative-inverse")
    assert (f.fit, f.scale, f.shift) == ("scale-shift", pytest.approx(0.5), pytest.approx(-0.25))
    assert f.metres(2 / d + 0.5) == pytest.approx(d)
    # relative-depth: y = (d - 1) / 2  ->  d = 2 y + 1
    f = fit_calibration((d - 1) / 2, d, "relative-depth", "scale-shift")
    assert (f.scale, f.shift) == (pytest.approx(2.0), pytest.approx(1.0))
    # one sample, two parameters: an exact fit measures nothing
    assert fit_calibration(np.array([3.0]), np.array([1.0]), "metric").residual_abs_rel is None
    with pytest.raises(ConfigError, match=r"needs samples at two or more distances at least 10 % apart, got 2 "
                                          r"between 2.00 and 2.05 m"):
        fit_calibration(np.array([1.0, 1.1]), np.array([2.0, 2.05]), "relative-inverse")
    with pytest.raises(ConfigError, match="--fit must be one of auto, scale, scale-shift"):
        fit_calibration(d, d, "metric", "affine")


def _board_box(path: Path) -> tuple[float, float, float, float]:
    xy = find_corners(read_gray(path), BOARD).reshape(-1, 2)
    return float(xy[:, 0].min()), float(xy[:, 1].min()), float(xy[:, 0].max()), float(xy[:, 1].max())


def test_known_distance_at_the_board_gives_fastdepth_a_scale(calibration):
    """The real FastDepth-224 at a chessboard whose distance solvePnP measured: it reads the 0.38 m board as
    metres away (below NYU's range), and the known distance scales it."""
    a, b = CHESSBOARD_PHOTOS[0], CHESSBOARD_PHOTOS[6]  # left01 (0.383 m), left07 (0.405 m)
    truth = [board_pose(find_corners(read_gray(p), BOARD), BOARD, calibration.matrix,
                        calibration.distortion).centre_depth_m for p in (a, b)]
    with RawModel(FASTDEPTH_CARD) as model:
        assert (model.name, model.output) == ("fastdepth-224-nyu", "metric")
        fit, rows = fit_known_distances(model, [Sample(a, _board_box(a), truth[0]),
                                                Sample(b, _board_box(b), truth[1])])
    outputs = np.array([r["model_output"] for r in rows])
    assert outputs.min() > 1.5  # the metres FastDepth gives for boards 0.38-0.41 m away
    assert fit.fit == "scale" and 0.05 < fit.scale < 0.3 and fit.samples == 2
    assert fit.scale == pytest.approx(np.median(np.array(truth) / outputs))
    fitted = fit.scale * outputs
    assert [r["fitted_m"] for r in rows] == pytest.approx(fitted)
    # two boards at nearly the same distance, FastDepth's readings differ a lot: one scale leaves a large residual
    assert fit.residual_abs_rel == pytest.approx(np.mean(np.abs(fitted - truth) / truth)) and fit.residual_abs_rel > 0.05


def test_cli_distance_and_rgbd_update_a_profile(tmp_path, capsys):
    profile = tmp_path / "cam.yaml"
    assert main(["chessboard", str(CHESSBOARD), "--board", "9x6", "--square-mm", "25", "--out", str(profile)]) == 0
    a = CHESSBOARD_PHOTOS[0]
    box = [f"{v:.0f}" for v in _board_box(a)]
    assert main(["distance", "--depth-model", str(FASTDEPTH_CARD), "--box", str(a), *box, "0.383",
                 "--profile", str(profile), "--out", str(profile)]) == 2
    assert "already exists" in _one_error(capsys)
    assert main(["distance", "--depth-model", str(FASTDEPTH_CARD), "--box", str(a), *box, "0.383",
                 "--profile", str(profile), "--out", str(profile), "--force"]) == 0
    out = capsys.readouterr().out
    assert "exact fit (add samples to measure the residual)" in out
    p = load_profile(profile)
    cal = p.depth_calibration_for("fastdepth-224-nyu")
    assert p.intrinsics.source.method == "chessboard"  # the other parts are kept
    assert cal.source.method == "known-distance" and cal.samples == 1 and cal.residual_abs_rel is None
    assert cal.range_m == (0.383, 0.383) and 0.05 < cal.scale < 0.3

    pairs = tmp_path / "pairs"
    write_board_pairs([str(CHESSBOARD)], BOARD, pairs, camera=str(profile))
    assert main(["rgbd", "--depth-model", str(FASTDEPTH_CARD), "--data", str(pairs), "--profile", str(profile),
                 "--out", str(profile), "--force"]) == 0
    out = capsys.readouterr().out
    assert "left01: " in out and "its own scale" in out
    rgbd = load_profile(profile).depth_calibration_for("fastdepth-224-nyu")
    assert rgbd.source.method == "rgbd" and rgbd.samples > 100_000 and 0.2 < rgbd.range_m[0] < rgbd.range_m[1] < 0.45
    assert rgbd.scale == pytest.approx(cal.scale, rel=0.3)  # the board pixels of 13 photos vs one box
    assert len(load_profile(profile).depth_calibrations) == 1  # replaced, not appended


@pytest.mark.parametrize("args, message", [
    (["--point", "IMG", "700", "20", "2.0"], r"left01.jpg point 700 20 = 2 m: the point is outside the 640x480 image"),
    (["--box", "IMG", "10", "10", "5", "50", "2.0"], r"the box must be x1 < x2 <= 640 and y1 < y2 <= 480"),
    (["--point", "IMG", "100", "100", "-1"], r"the distance must be a positive number of metres"),
    (["--point", "IMG", "a", "100", "2"], r"--point .* coordinates and METRES must be numbers"),
    (["--point", "IMG", "100", "100", "2", "--fit", "scale-shift"], r"a scale-shift fit needs samples at two or more"),
    ([], r"give at least one known distance: --point IMAGE X Y METRES or --box"),
    (["--point", "nothere.jpg", "1", "2", "3"], r"nothere.jpg point 1 2 = 3 m: image nothere.jpg not found"),
])
def test_cli_distance_mistakes_are_one_line(tmp_path, capsys, args, message):
    args = [str(CHESSBOARD_PHOTOS[0]) if a == "IMG" else a for a in args]
    out = tmp_path / "cam.yaml"
    assert main(["distance", "--depth-model", str(FASTDEPTH_CARD), *args, "--out", str(out)]) == 2
    assert re.search(message, _one_error(capsys))
    assert not out.exists()


def test_cli_depth_model_mistakes(tmp_path, capsys, fastdepth_onnx):
    out = str(tmp_path / "cam.yaml")
    assert main(["rgbd", "--depth-model", str(tmp_path / "none.yaml"), "--data", str(tmp_path), "--out", out]) == 2
    assert "none.yaml: file not found" in _one_error(capsys)
    assert main(["rgbd", "--depth-model", str(fastdepth_onnx), "--data", str(tmp_path), "--out", out]) == 2
    assert "has no model card beside it" in _one_error(capsys)


def test_fit_rgbd_needs_valid_pixels(tmp_path):
    pairs = tmp_path / "p"
    (pairs / "rgb").mkdir(parents=True)
    (pairs / "depth").mkdir()
    cv2.imwrite(str(pairs / "rgb" / "a.png"), cv2.imread(str(CHESSBOARD_PHOTOS[0])))
    cv2.imwrite(str(pairs / "depth" / "a.png"), np.zeros((480, 640), np.uint16))
    with RawModel(FASTDEPTH_CARD) as model, pytest.raises(ConfigError, match="no pixel has a valid depth"):
        fit_rgbd(model, pairs)


def test_fit_calibration_refusals():
    with pytest.raises(ConfigError, match="no usable sample: the model gave no finite output"):
        fit_calibration(np.array([np.nan]), np.array([1.0]), "metric")
    with pytest.raises(ConfigError, match="a scale-only fit needs a positive model output at every sample"):
        fit_calibration(np.array([-1.0, 2.0]), np.array([1.0, 2.0]), "relative-depth", "scale")
    with pytest.raises(ConfigError, match="the fit found no scale"):
        fit_calibration(np.array([1.0, 1.0]), np.array([1.0, 2.0]), "relative-depth", "scale-shift")
    # samples that disagree with the model: the line through them is -2.97 y + 7.03, negative at y = 3
    with pytest.raises(ConfigError, match="gives non-positive metres at some samples"):
        fit_calibration(np.array([0.0, 1.0, 2.0, 3.0]), np.array([10.0, 0.1, 0.1, 0.1]), "relative-depth", "scale-shift")


def test_cli_rgbd_depth_scale_must_be_positive(tmp_path, capsys):
    assert main(["rgbd", "--depth-model", str(FASTDEPTH_CARD), "--data", str(tmp_path), "--depth-scale", "0",
                 "--out", str(tmp_path / "c.yaml")]) == 2
    assert "--depth-scale must be > 0" in _one_error(capsys)
