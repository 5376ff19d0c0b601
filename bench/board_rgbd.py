"""Chessboard photos -> RGB-D pairs whose depth is known on the board only (``python -m bench board-rgbd``).

With the camera's intrinsics (a camera profile, or calibrated from the same photos) and the printed square
size, ``solvePnP`` gives each board's pose; every pixel inside the board's inner corners gets the z-depth
where its ray meets the board's plane (:func:`stream.calibrate.chessboard.board_depth_map`). The pairs are
written as ``OUT/rgb/NAME.<ext>`` (the photo, copied byte for byte) + ``OUT/depth/NAME.png`` (16-bit
millimetres, 0 off the board), the layout ``python -m bench depth`` and ``python -m stream calibrate rgbd``
read, plus ``OUT/boards.json`` (per photo: the board centre's distance, the board's depth range, pixels).
All distances scale linearly with ``--square-mm``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from depthstream.errors import ConfigError
from stream.calibrate.chessboard import Board, board_depth_map, board_pose, calibrate_photos, find_corners, read_gray
from stream.calibrate.cli import expand_images
from stream.calibrate.rgbd import write_depth_png


def _intrinsics(photos: list[Path], board: Board, camera: str | None) -> tuple[np.ndarray, np.ndarray | None, str]:
    """(K, distortion, where they came from) at the photos' size."""
    if camera is None:
        cal = calibrate_photos(photos, board)
        return cal.matrix, cal.distortion, f"calibrated from these photos ({cal.summary()})"
    from depthstream.schema.camera import load_profile

    profile = load_profile(camera)
    h, w = read_gray(photos[0]).shape
    intr = profile.intrinsics_for(w, h)
    dist = None if intr.distortion is None else np.asarray(intr.distortion, np.float64)
    return np.asarray(intr.matrix, np.float64), dist, f"camera profile {camera} ('{profile.name}') at {w}x{h}"


def write_board_pairs(photos: list[str], board: Board, out: Path, camera: str | None = None,
                      force: bool = False) -> dict:
    """Write the pairs (module docstring) and return what ``boards.json`` holds."""
    paths = expand_images(photos)
    if out.exists() and any(out.iterdir()) and not force:
        raise ConfigError(f"--out {out} exists and is not empty; choose another folder or pass --force")
    matrix, dist, how = _intrinsics(paths, board, camera)
    (out / "rgb").mkdir(parents=True, exist_ok=True)
    (out / "depth").mkdir(parents=True, exist_ok=True)
    rows = []
    for path in paths:
        gray = read_gray(path)
        corners = find_corners(gray, board)
        if corners is None:
            rows.append({"photo": path.name, "board_found": False})
            continue
        pose = board_pose(corners, board, matrix, dist)
        depth = board_depth_map(pose, gray.shape, matrix, dist)
        shutil.copyfile(path, out / "rgb" / path.name)
        write_depth_png(out / "depth" / f"{path.stem}.png", depth)
        on_board = depth[np.isfinite(depth)]
        rows.append({"photo": path.name, "board_found": True, "centre_depth_m": round(pose.centre_depth_m, 4),
                     "board_depth_m": [round(float(on_board.min()), 4), round(float(on_board.max()), 4)],
                     "board_pixels": int(on_board.size)})
    found = [r for r in rows if r["board_found"]]
    if not found:
        raise ConfigError(f"the {board.cols}x{board.rows} board was found in none of the {len(paths)} photos")
    report = {"board": {"inner_corners": [board.cols, board.rows], "square_m": board.square_m},
              "intrinsics": how, "depth_png_scale": 1000, "photos": rows}
    (out / "boards.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def board_markdown(report: dict, out: Path) -> str:
    sq = report["board"]["square_m"] * 1000
    lines = [f"Board distances by solvePnP ({report['board']['inner_corners'][0]}x{report['board']['inner_corners'][1]} "
             f"inner corners, {sq:g} mm squares; intrinsics: {report['intrinsics']}):", "",
             "| photo | board centre (m) | board depth range (m) | board pixels |", "|---|---:|---|---:|"]
    for r in report["photos"]:
        if r["board_found"]:
            lo, hi = r["board_depth_m"]
            lines.append(f"| {r['photo']} | {r['centre_depth_m']:.3f} | {lo:.3f}-{hi:.3f} | {r['board_pixels']} |")
        else:
            lines.append(f"| {r['photo']} | board not found | | |")
    lines += ["", f"RGB-D pairs in {out}/rgb and {out}/depth (16-bit mm, 0 off the board); "
                  f"evaluate with python -m bench depth --data {out} ...", ""]
    return "\n".join(lines)
