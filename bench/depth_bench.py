"""Depth accuracy on RGB-D pairs: AbsRel, RMSE, δ<1.25 and the seed reports' own metric.

Pairs: ``DATA/rgb/NAME.(png|jpg|jpeg)`` with ``DATA/depth/NAME.png``, or ``NAME_rgb.*`` with
``NAME_depth.png`` side by side in DATA. Depth PNGs are 16-bit, one channel; metres = value / scale
(1000 for millimetres; TUM RGB-D uses 5000); 0 means no depth.

Per image, over the pixels where the ground truth is valid (> ``min_depth``, <= ``max_depth`` when given)
and the prediction is a finite positive depth:

- AbsRel = mean(|pred - gt| / gt); RMSE = sqrt(mean((pred - gt)^2)) in metres;
  δ<1.25 = share of pixels with max(pred / gt, gt / pred) < 1.25.
- seed reports' metric: both maps min-max normalised to [0, 1] over those pixels, rounded to ``decimals``
  decimals (0: each pixel becomes 0 or 1), share of pixels where the two agree. It ignores units and any
  positive scale and shift of the prediction, so alignment does not change it.

The reported figures are the means of the per-image figures. The prediction is the product's own depth
stage (the model card's preprocessing, output -> metres, resized to the RGB frame); when the depth PNG has
another size, the prediction is resized to it with nearest-neighbour.

Alignment (``--align``): ``none`` (metric models); ``median`` (pred x median(gt) / median(pred), per
image); ``scale-shift`` (least squares per image: for relative-inverse models in inverse depth, as MiDaS
evaluates, then inverted; otherwise in depth). ``auto`` = ``scale-shift`` for a relative model without a
calibration (its raw output, no unit) and ``none`` for everything else.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import cv2
import numpy as np

from depthstream.schema.config import load_config
from depthstream.schema.card import RELATIVE_KINDS, Calibration, load_card
from stream.depth import GroundPlaneDepth, OnnxDepth
from depthstream.errors import ConfigError, DepthError

from .env import usable_cores

log = logging.getLogger(__name__)

RGB_EXTS = (".png", ".jpg", ".jpeg")


# -- data ----------------------------------------------------------------------------------------


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


# -- metrics (pure) ------------------------------------------------------------------------------


def valid_mask(pred: np.ndarray, gt: np.ndarray, min_depth: float = 1e-3, max_depth: float | None = None) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(gt) & (gt > min_depth) & np.isfinite(pred) & (pred > 0)
        if max_depth is not None:
            ok &= gt <= max_depth
    return ok


def depth_metrics(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """AbsRel, RMSE (m) and δ<1.25 of paired 1-D arrays of valid depths (metres, > 0)."""
    if pred.size == 0:
        raise ValueError("no pixel has both a valid ground truth and a valid prediction")
    p, g = pred.astype(np.float64), gt.astype(np.float64)
    ratio = np.maximum(p / g, g / p)
    return {
        "abs_rel": float(np.mean(np.abs(p - g) / g)),
        "rmse_m": float(np.sqrt(np.mean((p - g) ** 2))),
        "delta_1_25": float(np.mean(ratio < 1.25)),
    }


def _minmax(x: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    if hi == lo:
        return np.zeros_like(x, dtype=np.float64)
    return (x.astype(np.float64) - lo) / (hi - lo)


def seed_metric(pred: np.ndarray, gt: np.ndarray, decimals: int = 0) -> float:
    """The seed reports' metric: both maps normalised to [0, 1], rounded, share of equal pixels."""
    if pred.size == 0:
        raise ValueError("no pixel has both a valid ground truth and a valid prediction")
    return float(np.mean(np.round(_minmax(pred), decimals) == np.round(_minmax(gt), decimals)))


def align_median(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, float, float]:
    """pred x median(gt) / median(pred); returns (aligned, scale, 0)."""
    s = float(np.median(gt) / np.median(pred))
    return pred * s, s, 0.0


def align_scale_shift(pred: np.ndarray, gt: np.ndarray, inverse: bool) -> tuple[np.ndarray, float, float]:
    """Least-squares s, t with s*x + t ~ y; x, y are depths, or inverse depths when ``inverse`` (then the
    result is inverted back to depth; non-positive fitted inverse depths become NaN)."""
    x = 1.0 / pred.astype(np.float64) if inverse else pred.astype(np.float64)
    y = 1.0 / gt.astype(np.float64) if inverse else gt.astype(np.float64)
    a = np.stack([x, np.ones_like(x)], axis=1)
    (s, t), *_ = np.linalg.lstsq(a, y, rcond=None)
    fitted = s * x + t
    if inverse:
        with np.errstate(divide="ignore"):
            fitted = np.where(fitted > 0, 1.0 / fitted, np.nan)
    return fitted, float(s), float(t)


def evaluate(pred: np.ndarray, gt: np.ndarray, *, align: str, inverse: bool, min_depth: float = 1e-3,
             max_depth: float | None = None, decimals: int = 0) -> dict[str, float]:
    """Every metric of one image: (H, W) predicted and true metres (NaN = invalid)."""
    if pred.shape != gt.shape:
        pred = cv2.resize(pred, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_NEAREST)
    ok = valid_mask(pred, gt, min_depth, max_depth)
    p, g = pred[ok], gt[ok]
    if p.size == 0:
        raise ValueError("no pixel has both a valid ground truth and a valid prediction")
    scale, shift = 1.0, 0.0
    if align == "median":
        p, scale, shift = align_median(p, g)
    elif align == "scale-shift":
        p, scale, shift = align_scale_shift(p, g, inverse)
        keep = np.isfinite(p) & (p > 0)
        p, g = p[keep], g[keep]
    elif align != "none":
        raise ConfigError(f"--align must be none, median or scale-shift, got {align!r}")
    out = depth_metrics(p, g)
    out["seed_equal_share"] = seed_metric(p, g, decimals)
    out["valid_pixels"] = int(p.size)
    out["scale"], out["shift"] = scale, shift
    return out


# -- the benchmark -------------------------------------------------------------------------------


def _provider(source: str, cfg):
    """(provider, kind label, inverse-depth?, relative-without-calibration?) for ``source``."""
    if source == "ground-plane":
        return GroundPlaneDepth(cfg.depth.ground_plane), "geometric", False, False
    path = Path(source)
    card_path = path if path.suffix.lower() in (".yaml", ".yml") else path.with_suffix(".yaml")
    card = load_card(card_path)
    raw = card.kind in RELATIVE_KINDS and card.calibration is None
    if raw:
        # Identity calibration: relative-depth gives y, relative-inverse 1 / y, aligned per image below.
        card = dataclasses.replace(card, calibration=Calibration(1.0, 0.0))
    return OnnxDepth(card, threads=usable_cores()), card.kind, card.kind == "relative-inverse", raw


def bench_depth(*, data: Path, depth_model: str | None, depth_scale: float, align: str, min_depth: float,
                max_depth: float | None, seed_decimals: int, config: str | None, sets) -> tuple[dict, dict]:
    """(results, timing notes) of the depth report."""
    if depth_scale <= 0:
        raise ConfigError(f"--depth-scale must be > 0 (depth PNG units per metre), got {depth_scale}")
    pairs = find_pairs(data)
    cfg = load_config(config, list(sets), {"depth.source": depth_model})
    provider, kind, inverse, raw = _provider(cfg.depth.source, cfg)
    mode = align if align != "auto" else ("scale-shift" if raw else "none")
    if raw and mode == "none":
        raise DepthError(f"{cfg.depth.source} is a {kind} model without a calibration: its output has no unit; "
                         f"use --align scale-shift or median")
    how = {
        "none": "none (the model's metres as they are)",
        "median": "median scaling per image (pred x median(gt) / median(pred))",
        "scale-shift": "least-squares scale and shift per image" + (" in inverse depth (MiDaS protocol)" if inverse
                                                                    else " in depth"),
    }[mode]
    per_image = []
    from depthstream.types import Frame

    with provider:
        for i, (name, rgb_path, depth_path) in enumerate(pairs):
            image = cv2.imread(str(rgb_path), cv2.IMREAD_COLOR)
            if image is None:
                raise ConfigError(f"cannot read image {rgb_path} (corrupt, or not an image)")
            gt = read_depth_png(depth_path, depth_scale)
            pred = provider(Frame(image, i, None, 0, str(rgb_path))).metres
            try:
                m = evaluate(pred, gt, align=mode, inverse=inverse, min_depth=min_depth, max_depth=max_depth,
                             decimals=seed_decimals)
            except ValueError as exc:
                raise DepthError(f"{name}: {exc}") from exc
            per_image.append({"name": name, **{k: round(v, 6) if isinstance(v, float) else v for k, v in m.items()}})
    keys = ("abs_rel", "rmse_m", "delta_1_25", "seed_equal_share")
    metrics = {k: round(float(np.mean([r[k] for r in per_image])), 6) for k in keys}
    results = {
        "settings": {"data": str(data), "depth_scale": depth_scale, "min_depth_m": min_depth, "max_depth_m": max_depth,
                     "seed_decimals": seed_decimals, "align": align},
        "model": f"{cfg.depth.source} ({kind})",
        "alignment": how,
        "pairs": len(pairs),
        "metrics": metrics,
        "per_image": per_image,
    }
    timing = {
        "pixels": f"ground truth > {min_depth} m" + (f" and <= {max_depth} m" if max_depth else "")
                  + ", prediction finite and > 0",
        "averaging": "the mean of the per-image figures",
        "seed reports' metric": f"both maps min-max normalised to [0, 1], rounded to {seed_decimals} decimals, share "
                                f"of equal pixels; blind to units and to any positive scale/shift",
        "prediction": "the product's depth stage (card preprocessing, output -> metres, resized to the RGB frame); "
                      "nearest-neighbour to the depth map's size when it differs",
    }
    return results, timing
