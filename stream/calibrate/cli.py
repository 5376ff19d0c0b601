"""``python -m stream calibrate``: write a camera profile from what you have.

    python -m stream calibrate chessboard PHOTOS... --board 9x6 --square-mm 25 --out camera.yaml
    python -m stream calibrate distance --depth-model CARD --box IMAGE X1 Y1 X2 Y2 METRES ... --out camera.yaml
    python -m stream calibrate rgbd --depth-model CARD --data FOLDER --out camera.yaml

``--profile FILE`` starts from an existing profile (its other parts are kept); ``--out`` is never replaced
unless ``--force`` is given (then atomically). Mistakes are one ``error:`` line, exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import glob
import math
import sys
from pathlib import Path

from depthstream.schema.camera import CameraProfile, DepthCalibration, Intrinsics, Source, load_profile, save_profile
from depthstream.errors import ConfigError, guarded_main

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

EPILOG = """examples:
  python -m stream calibrate chessboard photos/ --board 9x6 --square-mm 25 --out camera.yaml
  python -m stream calibrate distance --profile camera.yaml --out camera.yaml --force --depth-model models/my-depth.yaml \\
      --box frame1.jpg 300 200 380 260 2.5 --point frame2.jpg 320 240 4.0
  python -m stream calibrate rgbd --profile camera.yaml --out camera.yaml --force --depth-model models/my-depth.yaml --data pairs/

--board counts INNER corners (9x6 for a board of 10 x 7 squares); --square-mm is the printed square's side.
A box or point is in pixels of that image; METRES is the true distance along the optical axis."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one clear line, no usage block
        self.exit(2, f"error: {message} (see python -m stream calibrate --help)\n")


def _number(kind, name: str):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{name} must be finite, got {text}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m stream calibrate", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
                description="Write a camera profile (intrinsics, depth calibration) from chessboard photos, known "
                            "distances or RGB-D pairs.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def common(sp):
        sp.add_argument("--out", required=True, metavar="YAML", help="the camera profile to write")
        sp.add_argument("--profile", metavar="YAML", help="start from this profile (its other parts are kept)")
        sp.add_argument("--name", help="the camera's name (default: the --profile's, else the --out file's stem)")
        sp.add_argument("--force", action="store_true", help="replace --out when it exists")

    cb = sub.add_parser("chessboard", help="intrinsics from photos of a printed chessboard",
                        description="Intrinsics (focal length, principal point, distortion) from 10-20 photos of a "
                                    "flat chessboard at several angles and distances, all at one resolution.")
    cb.add_argument("photos", nargs="+", metavar="PHOTO", help="image files, folders of images, or globs")
    cb.add_argument("--board", required=True, metavar="COLSxROWS", help="inner corners, e.g. 9x6 (10 x 7 squares)")
    cb.add_argument("--square-mm", required=True, type=_number(float, "--square-mm"), metavar="MM",
                    help="the printed square's side in millimetres (distances scale with it)")
    cb.add_argument("--max-rms", type=_number(float, "--max-rms"), default=1.0, metavar="PX",
                    help="refuse a calibration whose RMS reprojection error is above this (default 1.0 px)")
    common(cb)

    for name, helptext in (("distance", "a depth model's scale from known distances at points or boxes"),
                           ("rgbd", "a depth model's scale from a folder of RGB-D pairs")):
        sp = sub.add_parser(name, help=helptext, description=helptext + " (python -m stream calibrate --help).")
        sp.add_argument("--depth-model", required=True, metavar="CARD",
                        help="the depth model card (.yaml) or an .onnx with its card beside it")
        sp.add_argument("--fit", choices=["auto", "scale", "scale-shift"], default="auto",
                        help="auto: scale for a metric model, scale-shift for a relative one")
        if name == "distance":
            sp.add_argument("--point", nargs=4, action="append", default=[], metavar=("IMAGE", "X", "Y", "METRES"),
                            help="the true distance of what is at pixel (X, Y) of IMAGE (repeatable)")
            sp.add_argument("--box", nargs=6, action="append", default=[],
                            metavar=("IMAGE", "X1", "Y1", "X2", "Y2", "METRES"),
                            help="the true distance of a surface filling this box of IMAGE (repeatable)")
        else:
            sp.add_argument("--data", required=True, help="rgb/NAME.png + depth/NAME.png, or NAME_rgb.* + NAME_depth.png")
            sp.add_argument("--depth-scale", type=_number(float, "--depth-scale"), default=1000.0,
                            help="depth PNG units per metre (default 1000: millimetres)")
            sp.add_argument("--min-depth", type=_number(float, "--min-depth"), default=1e-3, metavar="M")
            sp.add_argument("--max-depth", type=_number(float, "--max-depth"), default=None, metavar="M")
        sp.add_argument("--threads", type=_number(int, "--threads"), default=1, help="CPU threads of the model")
        common(sp)
    return p


def expand_images(items: list[str]) -> list[Path]:
    """Files, folders (their images) and globs -> sorted image paths; ConfigError for what matches nothing."""
    out: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTS)
        elif path.is_file():
            found = [path]
        else:
            found = sorted(Path(p) for p in glob.glob(item) if Path(p).suffix.lower() in IMAGE_EXTS)
        if not found:
            raise ConfigError(f"{item}: no such image, folder of images or glob")
        out += found
    return list(dict.fromkeys(out))


def _start(args) -> CameraProfile:
    """The profile to build on: --profile's, or a new one named --name / after --out."""
    if args.profile:
        profile = load_profile(args.profile)
        return dataclasses.replace(profile, name=args.name) if args.name else profile
    out = Path(args.out)
    name = args.name or out.name.split(".")[0] or "camera"
    return CameraProfile(name=name)


def _check_out(args) -> None:
    """Refuse an existing --out before any work (the same check runs again when writing)."""
    out = Path(args.out)
    if out.exists() and not args.force:
        raise ConfigError(f"camera profile {out} already exists; choose another --out or pass --force to replace it")
    if not out.parent.is_dir():
        raise ConfigError(f"--out {out}: folder {out.parent} does not exist")


def _today() -> str:
    return _dt.date.today().isoformat()


def cmd_chessboard(args) -> CameraProfile:
    import numpy as np

    from .chessboard import Board, board_pose, calibrate_photos, find_corners, read_gray

    board = Board.parse(args.board, args.square_mm)
    photos = expand_images(args.photos)
    profile = _start(args)
    cal = calibrate_photos(photos, board, max_rms_px=args.max_rms)
    w, h = cal.size
    out = sys.stdout
    out.write(cal.summary() + "\n")
    out.write(f"board distance by solvePnP (z-depth of the board's centre; {board.cols}x{board.rows} inner corners, "
              f"{args.square_mm:g} mm squares):\n")
    for path in cal.used:
        pose = board_pose(find_corners(read_gray(Path(path)), board), board, cal.matrix, cal.distortion)
        out.write(f"  {Path(path).name}: {pose.centre_depth_m:.3f} m   reprojection RMS {cal.per_view_rms_px[path]:.2f} px\n")
    for path in cal.skipped:
        out.write(f"  {Path(path).name}: board not found (left out)\n")
    intr = Intrinsics(width=w, height=h, fx=round(cal.fx, 3), fy=round(cal.fy, 3), cx=round(cal.cx, 3),
                      cy=round(cal.cy, 3), distortion=[float(f"{v:.6g}") for v in np.asarray(cal.distortion).ravel()],
                      source=Source(method="chessboard", detail=(
                          f"python -m stream calibrate chessboard on {_today()}: {board.cols}x{board.rows} inner corners, "
                          f"{args.square_mm:g} mm squares; {cal.summary()}")))
    return dataclasses.replace(profile, intrinsics=intr)


def _depth_calibration(model, fit, method: str, detail: str) -> DepthCalibration:
    residual = None if fit.residual_abs_rel is None else round(fit.residual_abs_rel, 4)
    return DepthCalibration(model=model.name, output=fit.output, fit=fit.fit, scale=float(f"{fit.scale:.6g}"),
                            shift=float(f"{fit.shift:.6g}"), samples=fit.samples, residual_abs_rel=residual,
                            range_m=(round(fit.range_m[0], 3), round(fit.range_m[1], 3)),
                            source=Source(method=method, detail=detail))


def _fit_line(fit) -> str:
    res = "exact fit (add samples to measure the residual)" if fit.residual_abs_rel is None else \
        f"residual AbsRel {fit.residual_abs_rel:.3f}"
    space = "1/metres" if fit.output == "relative-inverse" else "metres"
    return (f"{fit.fit} fit ({space} = {fit.scale:.6g} * y + {fit.shift:.6g}) over {fit.samples} samples, true "
            f"distances {fit.range_m[0]:.2f}-{fit.range_m[1]:.2f} m; {res}")


def cmd_distance(args) -> CameraProfile:
    from .depthfit import RawModel, Sample, fit_known_distances

    samples = []
    for values, flag in [(v, "--point") for v in args.point] + [(v, "--box") for v in args.box]:
        image, *numbers = values
        try:
            nums = [float(n) for n in numbers]
        except ValueError:
            raise ConfigError(f"{flag} {' '.join(values)}: coordinates and METRES must be numbers") from None
        if not all(math.isfinite(n) for n in nums):
            raise ConfigError(f"{flag} {' '.join(values)}: coordinates and METRES must be finite numbers")
        samples.append(Sample(Path(image), tuple(nums[:-1]), nums[-1]))
    profile = _start(args)
    with RawModel(args.depth_model, threads=args.threads) as model:
        fit, rows = fit_known_distances(model, samples, args.fit)
    for row in rows:
        sys.stdout.write(f"  {row['sample']}: model output {row['model_output']:.4g} -> {row['fitted_m']:.3f} m after "
                         f"the fit\n")
    sys.stdout.write(f"{model.name}: {_fit_line(fit)}\n")
    detail = (f"python -m stream calibrate distance on {_today()}: "
              + "; ".join(r["sample"] for r in rows))
    return profile.with_depth_calibration(_depth_calibration(model, fit, "known-distance", detail))


def cmd_rgbd(args) -> CameraProfile:
    from .depthfit import RawModel, fit_rgbd

    profile = _start(args)
    with RawModel(args.depth_model, threads=args.threads) as model:
        fit, rows = fit_rgbd(model, Path(args.data), depth_scale=args.depth_scale, min_depth=args.min_depth,
                             max_depth=args.max_depth, fit=args.fit)
    used = [r for r in rows if r["pixels"]]
    for row in rows:
        line = (f"  {row['pair']}: {row['pixels']} pixels, true median {row['true_median_m']:.3f} m, its own scale "
                f"{row['own_scale']:.4g}") if row["pixels"] else f"  {row['pair']}: no valid pixel (left out)"
        sys.stdout.write(line + "\n")
    sys.stdout.write(f"{model.name}: {_fit_line(fit)}\n")
    own = [r["own_scale"] for r in used]
    detail = (f"python -m stream calibrate rgbd on {_today()}: {len(used)} pairs in {args.data} (depth PNG / "
              f"{args.depth_scale:g}); per-pair scale {min(own):.4g}-{max(own):.4g}")
    return profile.with_depth_calibration(_depth_calibration(model, fit, "rgbd", detail))


COMMANDS = {"chessboard": cmd_chessboard, "distance": cmd_distance, "rgbd": cmd_rgbd}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        _check_out(args)
        profile = COMMANDS[args.command](args)
        path = save_profile(profile, args.out, force=args.force,
                            header=f"Written by python -m stream calibrate {args.command} on {_today()}.")
        sys.stdout.write(f"wrote {path}\n")
        return 0

    return guarded_main(body)
