"""RGB-D pairs on disk: find them in a folder and read their depth in metres.

Layouts: ``DATA/rgb/NAME.(png|jpg|jpeg)`` with ``DATA/depth/NAME.png``, or ``NAME_rgb.*`` with
``NAME_depth.png`` side by side in DATA. Depth PNGs are 16-bit, one channel; metres = value / scale (1000 for
millimetres; TUM RGB-D uses 5000); 0 means no depth. Used by ``python -m stream calibrate rgbd`` and by
``python -m bench depth``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from depthstream.errors import ConfigError

RGB_EXTS = (".png", ".jpg", ".jpeg")


def find_pairs(data: Path) -> list[tuple[str, Path, Path]]:
    """(name, rgb, depth) for every pair in ``data`` (layouts in the module docstring), sorted by name."""
    if not data.is_dir():
        raise ConfigError(f"--data {data}: not a folder (expected rgb/ and depth/ folders, or NAME_rgb.* with NAME_depth.png)")
    pairs: dict[str, tuple[Path, Path]] = {}
    if (data / "rgb").is_dir() and (data / "depth").is_dir():
        for rgb in sorted((data / "rgb").iterdir()):
            if rgb.suffix.lower() in RGB_EXTS:
                depth = data / "depth" / f"{rgb.stem}.png"
                if not depth.is_file():
                    raise ConfigError(f"--data: {rgb} has no depth map {depth}")
                pairs[rgb.stem] = (rgb, depth)
    else:
        for rgb in sorted(data.iterdir()):
            if rgb.suffix.lower() in RGB_EXTS and rgb.stem.endswith("_rgb"):
                name = rgb.stem[: -len("_rgb")]
                depth = data / f"{name}_depth.png"
                if not depth.is_file():
                    raise ConfigError(f"--data: {rgb} has no depth map {depth}")
                pairs[name] = (rgb, depth)
    if not pairs:
        raise ConfigError(f"--data {data}: no RGB-D pairs found (expected rgb/NAME.png + depth/NAME.png, or "
                          f"NAME_rgb.png + NAME_depth.png)")
    return [(name, rgb, depth) for name, (rgb, depth) in sorted(pairs.items())]


def read_depth_png(path: Path, scale: float) -> np.ndarray:
    """A 16-bit one-channel PNG -> (H, W) float32 metres (value / scale), NaN where the value is 0."""
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise ConfigError(f"cannot read depth map {path} (corrupt, or not an image)")
    if raw.dtype != np.uint16 or raw.ndim != 2:
        chans = 1 if raw.ndim == 2 else raw.shape[2]
        raise ConfigError(f"depth map {path} is {raw.dtype} with {chans} channel(s); expected a 16-bit one-channel "
                          f"PNG (metres = value / --depth-scale, 0 = no depth)")
    metres = raw.astype(np.float32) / np.float32(scale)
    metres[raw == 0] = np.nan
    return metres


def write_depth_png(path: Path, metres: np.ndarray, scale: float = 1000.0) -> Path:
    """(H, W) metres (NaN = no depth) -> a 16-bit PNG of round(metres * scale), 0 where there is no depth."""
    finite = np.isfinite(metres)
    top = 65535 / scale
    if finite.any() and float(np.nanmax(metres)) > top:
        raise ConfigError(f"depth up to {float(np.nanmax(metres)):.1f} m does not fit a 16-bit PNG at {scale:g} "
                          f"units per metre (at most {top:.1f} m)")
    raw = np.where(finite, np.round(np.nan_to_num(metres) * scale), 0).astype(np.uint16)
    if not cv2.imwrite(str(path), raw):
        raise ConfigError(f"cannot write depth map {path}")
    return path
