"""Chessboard photos -> intrinsics (OpenCV), and each board's pose -> metres of ground truth at the board.

The board is named by its **inner** corners (``9x6`` for a board of 10 x 7 squares, OpenCV's convention) and
its square size in metres. Corners: ``cv2.findChessboardCorners`` (adaptive threshold + normalised image),
refined by ``cv2.cornerSubPix`` (11 x 11 window, as OpenCV's calibration sample). Intrinsics:
``cv2.calibrateCameraExtended`` (5 distortion coefficients, no flags), which also gives the standard deviation
of each intrinsic. A set is refused when the board was found in fewer than ``MIN_VIEWS`` photos, when the RMS
reprojection error exceeds ``max_rms_px``, or when the focal length is not pinned down (its standard deviation
above ``MAX_FOCAL_REL_STD`` of it, or a field of view outside ``HFOV_RANGE_DEG``: all photos taken face-on).

Pose: ``cv2.solvePnP`` with the intrinsics and distortion gives each board's rotation and translation; the
depth of any pixel on the board is where its (undistorted) ray meets the board's plane. Distances are z-depth
(along the optical axis), the product's unit, and scale linearly with the square size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from depthstream.errors import ConfigError

MIN_VIEWS = 5
MAX_FOCAL_REL_STD = 0.02
HFOV_RANGE_DEG = (2.0, 170.0)  # a focal length outside these fields of view is a degenerate solve, not a lens
SUBPIX_WINDOW = (11, 11)
SUBPIX_CRITERIA = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 30, 1e-3)
FIND_FLAGS = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE


@dataclass(frozen=True)
class Board:
    """A chessboard: ``cols`` x ``rows`` inner corners, squares ``square_m`` metres wide."""

    cols: int
    rows: int
    square_m: float

    @classmethod
    def parse(cls, text: str, square_mm: float) -> "Board":
        """``"9x6"`` and a square size in millimetres; ConfigError for anything else."""
        m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text or "")
        if not m or int(m.group(1)) < 2 or int(m.group(2)) < 2:
            raise ConfigError(f"--board must be INNER corners as COLSxROWS, e.g. 9x6 for a board of 10 x 7 squares, "
                              f"got {text!r}")
        if not (np.isfinite(square_mm) and square_mm > 0):
            raise ConfigError(f"--square-mm must be the printed square's side in millimetres (> 0), got {square_mm}")
        return cls(int(m.group(1)), int(m.group(2)), square_mm / 1000.0)

    @property
    def pattern(self) -> tuple[int, int]:
        return self.cols, self.rows

    def object_points(self) -> np.ndarray:
        """(cols*rows, 3) float32 corner positions on the board plane (z = 0), metres, OpenCV's order."""
        pts = np.zeros((self.rows * self.cols, 3), np.float32)
        pts[:, :2] = np.mgrid[0:self.cols, 0:self.rows].T.reshape(-1, 2) * self.square_m
        return pts


def read_gray(path: Path) -> np.ndarray:
    if not Path(path).is_file():
        raise ConfigError(f"image {path} not found")
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ConfigError(f"cannot read image {path} (missing, corrupt, or not an image)")
    return image


def find_corners(gray: np.ndarray, board: Board) -> np.ndarray | None:
    """(N, 1, 2) float32 sub-pixel inner corners, or None when the whole board is not found."""
    found, corners = cv2.findChessboardCorners(gray, board.pattern, flags=FIND_FLAGS)
    if not found:
        return None
    return cv2.cornerSubPix(gray, corners, SUBPIX_WINDOW, (-1, -1), SUBPIX_CRITERIA)


@dataclass
class Calibration:
    """What ``calibrate_photos`` found: intrinsics at ``size`` (width, height) and how good they are."""

    size: tuple[int, int]
    matrix: np.ndarray  # 3x3
    distortion: np.ndarray  # (5,) k1 k2 p1 p2 k3
    rms_px: float
    std: dict[str, float]  # standard deviation of fx, fy, cx, cy (pixels)
    per_view_rms_px: dict[str, float]
    used: list[str]
    skipped: list[str] = field(default_factory=list)

    @property
    def fx(self) -> float:
        return float(self.matrix[0, 0])

    @property
    def fy(self) -> float:
        return float(self.matrix[1, 1])

    @property
    def cx(self) -> float:
        return float(self.matrix[0, 2])

    @property
    def cy(self) -> float:
        return float(self.matrix[1, 2])

    def summary(self) -> str:
        w, h = self.size
        return (f"{len(self.used)} photos ({len(self.skipped)} without the whole board), RMS reprojection error "
                f"{self.rms_px:.3f} px; at {w}x{h}: fx {self.fx:.1f} px (sd {self.std['fx']:.2f}), fy {self.fy:.1f} "
                f"(sd {self.std['fy']:.2f}), cx {self.cx:.1f} (sd {self.std['cx']:.2f}), cy {self.cy:.1f} "
                f"(sd {self.std['cy']:.2f})")


def calibrate_photos(paths: list[Path], board: Board, *, max_rms_px: float = 1.0,
                     min_views: int = MIN_VIEWS) -> Calibration:
    """Intrinsics from chessboard photos of one camera at one resolution (rules in the module docstring)."""
    if not paths:
        raise ConfigError("no chessboard photos given (expected image files, a folder or a glob)")
    obj, img, used, skipped, size = [], [], [], [], None
    for path in paths:
        gray = read_gray(path)
        here = (gray.shape[1], gray.shape[0])
        if size is None:
            size = here
        elif here != size:
            raise ConfigError(f"{path} is {here[0]}x{here[1]} but {used[0] if used else paths[0]} is {size[0]}x{size[1]}: "
                              f"calibrate one resolution at a time (intrinsics refer to one image size)")
        corners = find_corners(gray, board)
        if corners is None:
            skipped.append(str(path))
            continue
        obj.append(board.object_points())
        img.append(corners)
        used.append(str(path))
    if len(used) < min_views:
        raise ConfigError(f"found the whole {board.cols}x{board.rows} board in {len(used)} of {len(paths)} photos; need at "
                          f"least {min_views} (10-20 is better), at several angles and distances, the whole board in view "
                          f"(check --board: INNER corners, e.g. 9x6 for 10 x 7 squares)")
    rms, k, dist, _, _, std_in, _, per_view = cv2.calibrateCameraExtended(obj, img, size, None, None)
    std_in = std_in.ravel()
    std = {"fx": float(std_in[0]), "fy": float(std_in[1]), "cx": float(std_in[2]), "cy": float(std_in[3])}
    result = Calibration(size, k, dist.ravel()[:5], float(rms), std,
                         {p: float(e) for p, e in zip(used, per_view.ravel())}, used, skipped)
    hfov = 2 * np.degrees(np.arctan(size[0] / (2 * result.fx))) if result.fx > 0 else 0.0
    if not (std["fx"] <= MAX_FOCAL_REL_STD * result.fx and HFOV_RANGE_DEG[0] <= hfov <= HFOV_RANGE_DEG[1]):
        raise ConfigError(f"the photos do not pin down the focal length (fx {result.fx:.0f} px +- {std['fx']:.0f}): "
                          f"add photos with the board tilted by 20-45 degrees and at different distances")
    if result.rms_px > max_rms_px:
        worst = max(result.per_view_rms_px, key=result.per_view_rms_px.get)
        raise ConfigError(f"calibration too poor: RMS reprojection error {result.rms_px:.2f} px > --max-rms "
                          f"{max_rms_px:g} px (worst photo {worst}, {result.per_view_rms_px[worst]:.2f} px); use sharp, "
                          f"well-lit photos of a flat board and leave out blurred ones")
    return result


@dataclass(frozen=True)
class BoardPose:
    """One photo's board: rotation (3x3) and translation (3,) board -> camera, metres."""

    rotation: np.ndarray
    translation: np.ndarray
    corners: np.ndarray  # (N, 1, 2) pixels
    centre_on_board: np.ndarray  # (3,) the middle of the inner corners, board coordinates, metres

    @property
    def centre_depth_m(self) -> float:
        """z-depth of the board's centre (the middle of its inner corners)."""
        return float(self.translation[2] + self.rotation[2] @ self.centre_on_board)


def board_pose(corners: np.ndarray, board: Board, matrix: np.ndarray, distortion: np.ndarray | None) -> BoardPose:
    """solvePnP of the board's corners with known intrinsics; ConfigError when it fails."""
    obj = board.object_points()
    ok, rvec, tvec = cv2.solvePnP(obj, corners, matrix, distortion)
    if not ok:
        raise ConfigError("solvePnP found no pose for the board in this photo")
    rot, _ = cv2.Rodrigues(rvec)
    centre = obj.mean(axis=0).astype(np.float64)
    return BoardPose(rot, tvec.ravel(), corners, centre)


def board_depth_map(pose: BoardPose, shape: tuple[int, int], matrix: np.ndarray,
                    distortion: np.ndarray | None) -> np.ndarray:
    """(H, W) float32 z-depth in metres on the board (inside its inner corners' outline), NaN elsewhere.

    Each pixel's ray is undistorted (``cv2.undistortPoints``) and met with the board's plane
    ``n . X = n . t`` (n = the board's normal in camera coordinates): ``z = (n . t) / (n . (x, y, 1))``.
    """
    h, w = shape
    outline = cv2.convexHull(pose.corners.reshape(-1, 2).astype(np.float32)).astype(np.int32)
    inside = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(inside, outline, 1)
    ys, xs = np.nonzero(inside)
    pts = np.stack([xs, ys], axis=1).astype(np.float64).reshape(-1, 1, 2)
    norm = cv2.undistortPoints(pts, matrix, distortion).reshape(-1, 2)
    normal = pose.rotation[:, 2]
    rays = np.concatenate([norm, np.ones((len(norm), 1))], axis=1)
    z = float(normal @ pose.translation) / (rays @ normal)
    depth = np.full((h, w), np.nan, np.float32)
    depth[ys, xs] = z.astype(np.float32)
    return depth
