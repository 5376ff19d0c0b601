"""A depth model's scale (and shift) on one camera, from known distances or from RGB-D pairs.

The model is opened from its card (``depthstream.schema.card.load_card``) so that its **raw output** ``y`` can be read:
metres for ``metric`` / ``normalized`` cards, ``y`` for ``relative-depth``, ``y`` (inverse depth up to scale and
shift) for ``relative-inverse``. The fit is made in the space the model works in, the same meaning as a card's
``calibration`` and a profile's ``depth_calibrations``:

- ``metric`` and ``relative-depth``: ``metres = scale * y + shift``;
- ``relative-inverse``: ``1 / metres = scale * y + shift`` (as MiDaS aligns its output).

Fits: ``scale`` = the median of target / y over the samples (robust; for one sample, their ratio);
``scale-shift`` = least squares of target on y (needs at least two samples at different distances). ``auto``
is ``scale`` for metric models and ``scale-shift`` for relative ones. The residual is the mean
``|fitted metres - true metres| / true metres`` over the samples (None when the fit has as many parameters
as samples: an exact fit measures nothing).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from depthstream.errors import ConfigError
from depthstream.types import Frame

FITS = ("auto", "scale", "scale-shift")
POINT_RADIUS_PX = 2  # a point sample is the median of the (2r+1) x (2r+1) pixels around it


def card_path_of(model: str | Path) -> Path:
    """The card of ``model``: the ``.yaml`` itself, or the ``.yaml`` / ``.yml`` beside an ``.onnx``."""
    path = Path(model)
    if path.suffix.lower() in (".yaml", ".yml"):
        return path
    if path.suffix.lower() == ".onnx":
        for suffix in (".yaml", ".yml"):
            if path.with_suffix(suffix).is_file():
                return path.with_suffix(suffix)
        raise ConfigError(f"--depth-model {path} has no model card beside it ({path.with_suffix('.yaml')}); "
                          f"see README, 'Your depth network'")
    raise ConfigError(f"--depth-model must be a model card (.yaml) or an .onnx with its card beside it, got {path}")


class RawModel:
    """A depth network whose raw output ``y`` is read at the frame's size (see the module docstring)."""

    def __init__(self, model: str | Path, threads: int = 1) -> None:
        from depthstream.schema.card import RELATIVE_KINDS, Calibration, load_card
        from stream.depth import OnnxDepth

        card = load_card(card_path_of(model))
        self.name = card.name
        self.card_kind = card.kind
        self.output = card.kind if card.kind in RELATIVE_KINDS else "metric"
        changes = {}
        if card.kind in RELATIVE_KINDS:
            changes["calibration"] = Calibration(1.0, 0.0)  # metres = y (relative-depth) or 1 / y (inverse)
        if card.kind != "normalized":
            changes["max_depth_m"] = None  # the fit sees the whole output, not the card's valid range
        self._provider = OnnxDepth(dataclasses.replace(card, **changes), threads=threads)

    def __enter__(self) -> "RawModel":
        self._provider.open()
        return self

    def __exit__(self, *exc) -> None:
        self._provider.close()

    def output_for(self, image: np.ndarray, name: str = "") -> np.ndarray:
        """(H, W) float32 raw output at the image's size, NaN where the model gave nothing usable."""
        metres = self._provider(Frame(image, 0, None, 0, name)).metres
        if self.output == "relative-inverse":
            with np.errstate(divide="ignore"):
                return (1.0 / metres).astype(np.float32)
        return metres


@dataclass(frozen=True)
class Fit:
    """A fitted calibration (see the module docstring)."""

    output: str
    fit: str
    scale: float
    shift: float
    samples: int
    residual_abs_rel: float | None
    range_m: tuple[float, float]

    def metres(self, y: np.ndarray) -> np.ndarray:
        z = self.scale * np.asarray(y, np.float64) + self.shift
        with np.errstate(divide="ignore"):
            return 1.0 / z if self.output == "relative-inverse" else z


def fit_calibration(y: np.ndarray, metres: np.ndarray, output: str, fit: str = "auto") -> Fit:
    """Fit ``metres ~ y`` for a model whose output is ``output`` (metric | relative-depth | relative-inverse)."""
    if fit not in FITS:
        raise ConfigError(f"--fit must be one of {', '.join(FITS)}, got {fit!r}")
    y = np.asarray(y, np.float64).ravel()
    metres = np.asarray(metres, np.float64).ravel()
    ok = np.isfinite(y) & np.isfinite(metres) & (metres > 0)
    y, metres = y[ok], metres[ok]
    if y.size == 0:
        raise ConfigError("no usable sample: the model gave no finite output where the distances were given")
    fit = ("scale" if output == "metric" else "scale-shift") if fit == "auto" else fit
    target = 1.0 / metres if output == "relative-inverse" else metres
    if fit == "scale":
        if np.any(y <= 0):
            raise ConfigError("a scale-only fit needs a positive model output at every sample; use --fit scale-shift")
        scale, shift, params = float(np.median(target / y)), 0.0, 1
    else:
        near, far = float(metres.min()), float(metres.max())
        if y.size < 2 or far < 1.1 * near:
            raise ConfigError(f"a scale-shift fit needs samples at two or more distances at least 10 % apart, got "
                              f"{y.size} between {near:.2f} and {far:.2f} m; add samples at another distance, or use "
                              f"--fit scale (a relative model's shift is then assumed 0)")
        if np.ptp(y) <= 1e-9 * max(1.0, float(np.abs(y).max())):
            raise ConfigError("the fit found no scale: the model's output does not change between the samples, "
                              "so no line can map it to their different distances")
        a = np.stack([y, np.ones_like(y)], axis=1)
        (scale, shift), *_ = np.linalg.lstsq(a, target, rcond=None)
        scale, shift, params = float(scale), float(shift), 2
    if scale == 0 or not np.isfinite(scale):
        raise ConfigError("the fit found no scale (the model's output does not change between the samples)")
    result = Fit(output, fit, scale, shift, int(y.size), None, (float(metres.min()), float(metres.max())))
    fitted = result.metres(y)
    if np.any(~np.isfinite(fitted) | (fitted <= 0)):
        raise ConfigError(f"the {fit} fit gives non-positive metres at some samples (scale {scale:.4g}, shift "
                          f"{shift:.4g}): the samples disagree with the model; check them, or try --fit scale")
    residual = float(np.mean(np.abs(fitted - metres) / metres)) if y.size > params else None
    return dataclasses.replace(result, residual_abs_rel=residual)


# -- known distances -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """The true distance (metres, z-depth) of what is at a point or inside a box of one image."""

    image: Path
    region: tuple[float, ...]  # (x, y) or (x1, y1, x2, y2), pixels of the image
    metres: float

    def describe(self) -> str:
        kind = "point" if len(self.region) == 2 else "box"
        return f"{self.image.name} {kind} {' '.join(f'{v:g}' for v in self.region)} = {self.metres:g} m"


def region_value(y: np.ndarray, sample: Sample) -> float:
    """The median raw output at a sample's point (its 5 x 5 neighbourhood) or inside its box."""
    h, w = y.shape
    if len(sample.region) == 2:
        x, yy = sample.region
        if not (0 <= x < w and 0 <= yy < h):
            raise ConfigError(f"{sample.describe()}: the point is outside the {w}x{h} image")
        x0, y0 = int(round(x)), int(round(yy))
        r = POINT_RADIUS_PX
        patch = y[max(0, y0 - r): y0 + r + 1, max(0, x0 - r): x0 + r + 1]
    else:
        x1, y1, x2, y2 = sample.region
        if not (0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h):
            raise ConfigError(f"{sample.describe()}: the box must be x1 < x2 <= {w} and y1 < y2 <= {h} (pixels of "
                              f"the {w}x{h} image)")
        patch = y[int(y1): int(np.ceil(y2)), int(x1): int(np.ceil(x2))]
    vals = patch[np.isfinite(patch)]
    if vals.size == 0:
        raise ConfigError(f"{sample.describe()}: the model gave no depth there")
    return float(np.median(vals))


def fit_known_distances(model: RawModel, samples: list[Sample], fit: str = "auto") -> tuple[Fit, list[dict]]:
    """The fit over known-distance samples, and per sample: the raw output, the fitted metres, the truth."""
    if not samples:
        raise ConfigError("give at least one known distance: --point IMAGE X Y METRES or --box IMAGE X1 Y1 X2 Y2 METRES")
    cache: dict[Path, np.ndarray] = {}
    ys = []
    for s in samples:
        if not (np.isfinite(s.metres) and s.metres > 0):
            raise ConfigError(f"{s.describe()}: the distance must be a positive number of metres")
        if s.image not in cache:
            if not s.image.is_file():
                raise ConfigError(f"{s.describe()}: image {s.image} not found")
            image = cv2.imread(str(s.image), cv2.IMREAD_COLOR)
            if image is None:
                raise ConfigError(f"cannot read image {s.image} (missing, corrupt, or not an image)")
            cache[s.image] = model.output_for(image, str(s.image))
        ys.append(region_value(cache[s.image], s))
    result = fit_calibration(np.array(ys), np.array([s.metres for s in samples]), model.output, fit)
    fitted = result.metres(np.array(ys))
    rows = [{"sample": s.describe(), "model_output": y, "fitted_m": float(f), "true_m": s.metres}
            for s, y, f in zip(samples, ys, fitted)]
    return result, rows


# -- RGB-D pairs ---------------------------------------------------------------------------------

PIXELS_PER_IMAGE = 20_000  # each pair gives at most this many pixels (evenly spaced), so pairs weigh alike


def fit_rgbd(model: RawModel, data: Path, *, depth_scale: float = 1000.0, min_depth: float = 1e-3,
             max_depth: float | None = None, fit: str = "auto") -> tuple[Fit, list[dict]]:
    """The fit over the valid pixels of every RGB-D pair in ``data`` (layouts: :mod:`stream.calibrate.rgbd`),
    and per pair: pixels used, the median truth and the pair's own scale (how much one fit has to bend)."""
    from .rgbd import find_pairs, read_depth_png

    if not (np.isfinite(depth_scale) and depth_scale > 0):
        raise ConfigError(f"--depth-scale must be > 0 (depth PNG units per metre), got {depth_scale}")
    xs, ts, rows = [], [], []
    for name, rgb_path, depth_path in find_pairs(data):
        image = cv2.imread(str(rgb_path), cv2.IMREAD_COLOR)
        if image is None:
            raise ConfigError(f"cannot read image {rgb_path} (corrupt, or not an image)")
        gt = read_depth_png(depth_path, depth_scale)
        y = model.output_for(image, str(rgb_path))
        if y.shape != gt.shape:
            y = cv2.resize(y, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_LINEAR)
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(gt) & (gt > min_depth) & np.isfinite(y)
            if max_depth is not None:
                ok &= gt < max_depth
        idx = np.flatnonzero(ok)
        if idx.size == 0:
            rows.append({"pair": name, "pixels": 0})
            continue
        idx = idx[np.linspace(0, idx.size - 1, min(idx.size, PIXELS_PER_IMAGE)).astype(np.int64)]
        x, t = y.ravel()[idx].astype(np.float64), gt.ravel()[idx].astype(np.float64)
        xs.append(x)
        ts.append(t)
        own = np.median((1.0 / t if model.output == "relative-inverse" else t) / x)
        rows.append({"pair": name, "pixels": int(idx.size), "true_median_m": float(np.median(t)),
                     "own_scale": float(own)})
    if not xs:
        raise ConfigError(f"--data {data}: no pixel has a valid depth (check --depth-scale, --min-depth, --max-depth)")
    return fit_calibration(np.concatenate(xs), np.concatenate(ts), model.output, fit), rows
