"""Depth accuracy by the published protocol (BTS / AdaBins / ZoeDepth / Depth Anything evaluations), pure numpy.

Per image, in this order:

1. The prediction is resized to the ground truth's resolution, **bilinear** (``cv2.INTER_LINEAR``: pixel
   centres aligned, as ``torch``'s ``align_corners=False``; ZoeDepth / Depth Anything interpolate with
   ``align_corners=True``, a sub-pixel difference).
2. Valid pixels: ground truth finite, ``min_depth < gt < max_depth`` (strict, as BTS), and inside the crop:
   ``eigen`` = rows 45:471, columns 41:601 of a 480 x 640 NYU frame (Eigen et al. 2014); ``garg`` = rows
   0.40810811 h : 0.99189189 h, columns 0.03594771 w : 0.96405229 w of a KITTI frame (Garg et al. 2016,
   any size); ``none``.
3. Alignment on the valid pixels (``none`` for metric models): ``median`` = pred x median(gt) / median(pred);
   ``lstsq`` = least-squares scale and shift, in inverse depth for inverse-depth models (MiDaS's protocol,
   then inverted) and in depth otherwise.
4. The prediction is capped to ``[min_depth, max_depth]`` (NaN -> min_depth, +inf -> max_depth, as BTS).
5. AbsRel = mean(|p - g| / g); SqRel = mean((p - g)^2 / g); RMSE = sqrt(mean((p - g)^2)) m;
   RMSE log = sqrt(mean((ln p - ln g)^2)); log10 = mean(|log10 p - log10 g|); δn = share of max(p/g, g/p) <
   1.25^n; the seed reports' metric ``seed_equal_share``: both maps min-max normalised to [0, 1] over the valid
   pixels, rounded to ``decimals`` decimals, share of equal pixels (blind to units, scale and shift).

The data set's figure is the **mean over images** of each per-image figure (BTS's ``eval``, AdaBins's and
ZoeDepth's ``RunningAverageDict``, Depth Anything V2's metric evaluation all average per-image metrics), not a
pool of all pixels. Presets: NYU Depth v2 = 1e-3 .. 10 m with the Eigen crop; KITTI = 1e-3 .. 80 m with the
Garg crop.
"""

from __future__ import annotations

import cv2
import numpy as np

PRESETS = {"nyu": {"min_depth": 1e-3, "max_depth": 10.0, "crop": "eigen"},
           "kitti": {"min_depth": 1e-3, "max_depth": 80.0, "crop": "garg"}}
CROPS = ("none", "eigen", "garg")
ALIGNS = ("none", "median", "lstsq")
EIGEN_NYU = (45, 471, 41, 601)  # rows top:bottom, columns left:right of a 480 x 640 frame
GARG_KITTI = (0.40810811, 0.99189189, 0.03594771, 0.96405229)
METRIC_KEYS = ("abs_rel", "sq_rel", "rmse_m", "rmse_log", "log10", "delta_1", "delta_2", "delta_3", "seed_equal_share")


def crop_mask(shape: tuple[int, int], crop: str) -> np.ndarray:
    """(H, W) bool: True inside the evaluation crop; ValueError for an Eigen crop of a frame that is not 480x640."""
    h, w = shape
    mask = np.zeros((h, w), bool)
    if crop == "none":
        mask[:] = True
    elif crop == "eigen":
        if (h, w) != (480, 640):
            raise ValueError(f"the Eigen crop is defined on NYU's 480x640 frames, the ground truth is {h}x{w} "
                             f"(use --crop none, or --crop garg for KITTI-style frames)")
        top, bottom, left, right = EIGEN_NYU
        mask[top:bottom, left:right] = True
    elif crop == "garg":
        t, b, l, r = GARG_KITTI
        mask[int(t * h):int(b * h), int(l * w):int(r * w)] = True
    else:
        raise ValueError(f"crop must be one of {', '.join(CROPS)}, got {crop!r}")
    return mask


def resize_bilinear(pred: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``pred`` at ``shape`` (H, W), bilinear. A NaN (no prediction) spreads to the pixels interpolated from it;
    they are scored as the protocol scores a missing prediction (capped to ``min_depth``)."""
    if pred.shape == tuple(shape):
        return pred.astype(np.float32, copy=False)
    return cv2.resize(pred.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def align(pred: np.ndarray, gt: np.ndarray, how: str, inverse: bool) -> tuple[np.ndarray, float, float]:
    """(aligned pred, scale, shift) of 1-D valid pixels; see the module docstring."""
    p, g = pred.astype(np.float64), gt.astype(np.float64)
    if how == "none":
        return p, 1.0, 0.0
    usable = np.isfinite(p) & (p > 0)
    if not usable.any():
        raise ValueError("the prediction has no finite positive value to align")
    if how == "median":
        s = float(np.median(g[usable]) / np.median(p[usable]))
        return p * s, s, 0.0
    if how != "lstsq":
        raise ValueError(f"align must be one of {', '.join(ALIGNS)}, got {how!r}")
    x = 1.0 / p[usable] if inverse else p[usable]
    y = 1.0 / g[usable] if inverse else g[usable]
    (s, t), *_ = np.linalg.lstsq(np.stack([x, np.ones_like(x)], axis=1), y, rcond=None)
    with np.errstate(divide="ignore", invalid="ignore"):
        fitted = s * (1.0 / p if inverse else p) + t
        out = np.where(fitted > 0, 1.0 / fitted, np.nan) if inverse else fitted
    return out, float(s), float(t)


def cap(pred: np.ndarray, min_depth: float, max_depth: float) -> np.ndarray:
    """BTS's cap: NaN -> min_depth, +inf -> max_depth, then clip to [min_depth, max_depth]."""
    p = np.where(np.isnan(pred), min_depth, pred)
    return np.clip(np.where(np.isposinf(p), max_depth, p), min_depth, max_depth)


def _minmax(x: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    return np.zeros_like(x, dtype=np.float64) if hi == lo else (x.astype(np.float64) - lo) / (hi - lo)


def seed_metric(pred: np.ndarray, gt: np.ndarray, decimals: int = 0) -> float:
    """The seed reports' metric: both maps normalised to [0, 1], rounded, share of equal pixels."""
    if pred.size == 0:
        raise ValueError("no valid pixel")
    return float(np.mean(np.round(_minmax(pred), decimals) == np.round(_minmax(gt), decimals)))


def depth_metrics(pred: np.ndarray, gt: np.ndarray, decimals: int = 0) -> dict[str, float]:
    """Every metric of paired 1-D arrays of positive depths (metres): the formulas in the module docstring."""
    if pred.size == 0:
        raise ValueError("no pixel has a valid ground truth inside the crop")
    p, g = pred.astype(np.float64), gt.astype(np.float64)
    ratio = np.maximum(p / g, g / p)
    diff = p - g
    return {
        "abs_rel": float(np.mean(np.abs(diff) / g)),
        "sq_rel": float(np.mean(diff ** 2 / g)),
        "rmse_m": float(np.sqrt(np.mean(diff ** 2))),
        "rmse_log": float(np.sqrt(np.mean((np.log(p) - np.log(g)) ** 2))),
        "log10": float(np.mean(np.abs(np.log10(p) - np.log10(g)))),
        "delta_1": float(np.mean(ratio < 1.25)),
        "delta_2": float(np.mean(ratio < 1.25 ** 2)),
        "delta_3": float(np.mean(ratio < 1.25 ** 3)),
        "seed_equal_share": seed_metric(p, g, decimals),
    }


def evaluate(pred: np.ndarray, gt: np.ndarray, *, align_how: str = "none", inverse: bool = False,
             min_depth: float = 1e-3, max_depth: float = 10.0, crop: str = "none",
             decimals: int = 0) -> dict[str, float]:
    """Every metric of one image: (h, w) predicted metres (any size; NaN = no prediction) against (H, W) true
    metres (NaN = no ground truth), by the protocol in the module docstring; plus the pixel count, the
    alignment's scale and shift, the share of valid pixels the model gave no depth for, and both medians."""
    pred = resize_bilinear(pred, gt.shape)
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(gt) & (gt > min_depth) & (gt < max_depth) & crop_mask(gt.shape, crop)
    p, g = pred[valid], gt[valid].astype(np.float64)
    if g.size == 0:
        raise ValueError("no pixel has a valid ground truth inside the crop")
    no_pred = float(np.mean(~np.isfinite(p) | (p <= 0)))
    p, scale, shift = align(p, g, align_how, inverse)
    p = cap(p, min_depth, max_depth)
    out = depth_metrics(p, g, decimals)
    out.update(valid_pixels=int(g.size), scale=scale, shift=shift, no_prediction_share=no_pred,
               gt_median_m=float(np.median(g)), pred_median_m=float(np.median(p)))
    return out


def mean_over_images(per_image: list[dict]) -> dict[str, float]:
    """The data set's figures: the mean of each per-image metric (module docstring)."""
    return {k: float(np.mean([r[k] for r in per_image])) for k in METRIC_KEYS}
