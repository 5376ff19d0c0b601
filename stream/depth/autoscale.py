"""Automatic scale: a depth network's output turned into metres by the size priors' references, fitted robustly
and smoothed over time, so a relative network (or a metric one out of its domain) gives metres without a hand
calibration -- or says it cannot.

What is fitted depends on what the network outputs (its card's ``kind``):

- ``metric`` / ``normalized`` (metres, perhaps wrong by a factor): ``metres = scale * y``, fitted in log space as
  the robust mean of ``log(Z_prior / y)`` over the references (one parameter);
- ``relative-depth`` (depth up to scale and shift): ``metres = scale * y + shift``;
- ``relative-inverse`` (MiDaS / Depth Anything relative: inverse depth up to scale and shift):
  ``1 / metres = scale * y + shift``; both straight lines are robust weighted least squares in the space of the
  output (:func:`~stream.depth.robust.robust_line`), each reference weighted by its prior's spread.

``y`` for a box is its statistic (``depth.box_stat``) over the network's raw output; the reference's distance and
spread come from :class:`~stream.depth.sizeprior.SizePriorRanger`.

Time. The references of the last frames stay in the fit with a weight that halves every
``half_life_frames`` frames; a scene cut (:class:`SceneCut`) drops them all. Consecutive frames mostly show the
same objects, whose errors (a tall person stays tall) do not average out over frames, so the fit's spread is
computed as if the references were only as many as are seen at once (the time-weighted mean number of
references per frame, frames without any counted): a fit from one person seen for a minute is as uncertain as
that person's height. The spread shared by every reference (an assumed focal length) is added on top.

Calibrated or not. A fit is used when the time-weighted number of references per frame reaches
``min_references`` and its relative 1-sigma spread (of the metres it gives, at the references' median output) is
at most ``max_spread`` (once calibrated, it stays so within a margin: :data:`HOLD`); otherwise the metres are
**uncalibrated**: a relative network gives none (NaN, never a guess), a metric one keeps its own metres, flagged
unreliable.

Threads: :meth:`AutoScale.update` runs in the pipeline's last stage; the depth stage may read
:attr:`AutoScale.current` (serial layout: the mask uses the fit of the frames before) -- a reference to a frozen
:class:`ScaleFit`, replaced whole, so a reader never sees half an update.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from depthstream.schema.config import AutoScaleConfig

from .robust import robust_line, robust_location

__all__ = ["ScaleFit", "AutoScale", "SceneCut", "OUTPUT_FIT", "NO_FIT"]

Output = Literal["metric", "relative-depth", "relative-inverse"]

OUTPUT_FIT: dict[str, str] = {"metric": "scale", "relative-depth": "scale-shift", "relative-inverse": "scale-shift"}
"""What is fitted for each kind of network output."""

MIN_WEIGHT = 1.0 / 64.0  # references older than six half-lives are dropped
HOLD = 1.25
"""Hysteresis: a calibrated fit stays calibrated until its spread exceeds ``max_spread`` x HOLD or its references
per frame fall below ``min_references`` / HOLD, so a fit near either limit does not flicker between states (and
the serial layout's mask between scaled and unscaled metres)."""


@dataclass(frozen=True)
class ScaleFit:
    """One fit: ``metres = scale * y + shift`` (``1 / metres = ...`` for ``relative-inverse``); ``spread`` is the
    relative 1-sigma uncertainty of the metres it gives (inf without a fit), ``references`` the time-weighted
    number of inlier references per frame, ``outliers`` the share of references the fit left out,
    ``calibrated`` whether the fit is to be used (see the module docstring), ``frames`` how many frames the fit
    has seen since the last reset."""

    output: Output
    scale: float = math.nan
    shift: float = 0.0
    spread: float = math.inf
    references: float = 0.0
    outliers: float = 0.0
    calibrated: bool = False
    frames: int = 0

    @property
    def fit(self) -> str:
        return OUTPUT_FIT[self.output]

    def apply(self, y: np.ndarray) -> np.ndarray:
        """Metres (float32, a new array) from raw network output ``y``; NaN where none (non-positive, non-finite,
        or no fit)."""
        y = np.asarray(y, np.float32)
        if not math.isfinite(self.scale):
            return np.full(y.shape, np.nan, np.float32)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            z = np.float32(self.scale) * y + np.float32(self.shift)
            if self.output == "relative-inverse":
                z = np.float32(1.0) / z
            z[~np.isfinite(z) | (z <= 0)] = np.nan
        return z.astype(np.float32, copy=False)

    def describe(self) -> str:
        """``scale 3.02 +- 4 % (12.0 refs)`` or ``uncalibrated (0.4 refs)``."""
        if not self.calibrated:
            return f"uncalibrated ({self.references:.1f} refs/frame)"
        shift = f", shift {self.shift:.4g}" if self.fit == "scale-shift" else ""
        return f"scale {self.scale:.4g}{shift} +- {100 * self.spread:.0f} % ({self.references:.1f} refs/frame)"

    def details(self, applied: bool) -> dict:
        """The JSONL's ``scale`` object."""
        return {"fit": self.fit, "scale": _finite(self.scale, 6), "shift": _finite(self.shift, 6),
                "spread": _finite(self.spread, 4), "references": round(self.references, 2),
                "outliers": round(self.outliers, 3), "state": "calibrated" if self.calibrated else "uncalibrated",
                "applied": applied, "frames": self.frames}


def _finite(v: float, digits: int) -> float | None:
    return round(float(v), digits) if math.isfinite(v) else None


NO_FIT = ScaleFit("metric")


class AutoScale:
    """The time-smoothed robust fit of one network's output to the size priors (module docstring).

    ``output``: the network's output kind (``metric``, ``relative-depth``, ``relative-inverse``); ``options``
    the validated ``depth.autoscale`` section. Call :meth:`update` once per frame, :meth:`reset` on a scene cut.
    """

    def __init__(self, options: AutoScaleConfig, output: Output) -> None:
        self.options = options
        self.output = output
        self._decay = 0.5 ** (1.0 / options.half_life_frames)
        self.reset()

    def reset(self) -> None:
        """Forget every reference (a scene cut); the fit is uncalibrated until new ones arrive."""
        self._y = np.zeros(0)
        self._z = np.zeros(0)
        self._s = np.zeros(0)
        self._w = np.zeros(0)
        self._frame_w = np.zeros(0)  # one weight per frame seen, for the references-per-frame count
        self._frames = 0
        self.current = ScaleFit(self.output)

    def update(self, y: np.ndarray, z: np.ndarray, spread: np.ndarray, common_spread: float = 0.0) -> ScaleFit:
        """Add one frame's references -- raw network output ``y`` at each reference box, the size priors'
        distance ``z`` (metres) and relative spread ``spread`` -- refit and return the new :attr:`current`.
        ``common_spread`` (an assumed focal length's) is added to the fit's spread. A frame without references
        is passed as empty arrays: it still counts, and ages the older references."""
        y, z, s = (np.asarray(a, float).ravel() for a in (y, z, spread))
        keep = np.isfinite(y) & np.isfinite(z) & (z > 0) & np.isfinite(s) & (s > 0)
        if self.output == "metric":
            keep &= y > 0
        y, z, s = y[keep], z[keep], s[keep]
        self._frames += 1
        self._w = np.concatenate([self._w * self._decay, np.ones(y.size)])
        self._frame_w = np.concatenate([self._frame_w * self._decay, [1.0]])
        self._y, self._z, self._s = (np.concatenate(p) for p in ((self._y, y), (self._z, z), (self._s, s)))
        live = self._w >= MIN_WEIGHT
        self._y, self._z, self._s, self._w = self._y[live], self._z[live], self._s[live], self._w[live]
        self._frame_w = self._frame_w[self._frame_w >= MIN_WEIGHT]
        self.current = self._fit(common_spread)
        return self.current

    def _fit(self, common_spread: float) -> ScaleFit:
        o = self.options
        frames = self._frames
        if self._y.size == 0:
            return ScaleFit(self.output, frames=frames)
        if self.output == "metric":
            found = robust_location(np.log(self._z / self._y), self._s, self._w)
        else:
            u = self._z if self.output == "relative-depth" else 1.0 / self._z
            found = robust_line(self._y, u, u * self._s, self._w)
        if found is None:
            return ScaleFit(self.output, references=self._per_frame(np.ones(self._y.size, bool)), frames=frames)
        per_frame = self._per_frame(found.inliers)
        outliers = 1.0 - float(self._w[found.inliers].sum() / self._w.sum())
        # Inliers of consecutive frames are mostly the same objects: count them as the references seen at once.
        inflate = float(self._w[found.inliers].sum()) / max(per_frame, 1e-9)
        if self.output == "metric":
            scale, shift = math.exp(found.params[0]), 0.0
            stat = math.sqrt(found.cov[0, 0] * inflate)
        else:
            scale, shift = float(found.params[0]), float(found.params[1])
            x_mid = float(np.median(self._y[found.inliers]))
            at = np.array([x_mid, 1.0])
            u_mid = scale * x_mid + shift
            stat = math.sqrt(max(float(at @ found.cov @ at), 0.0) * inflate) / u_mid if u_mid > 0 else math.inf
            if not scale > 0 and self.output == "relative-inverse":
                stat = math.inf  # more output, nearer: a negative slope is no inverse depth
        spread = math.hypot(stat, common_spread)
        hold = HOLD if self.current.calibrated else 1.0
        calibrated = per_frame >= o.min_references / hold and spread <= o.max_spread * hold
        return ScaleFit(self.output, scale, shift, spread, per_frame, outliers, calibrated, frames)

    def _per_frame(self, inliers: np.ndarray) -> float:
        """Time-weighted mean number of (inlier) references per frame, frames without references included."""
        return float(self._w[inliers].sum() / self._frame_w.sum()) if self._frame_w.size else 0.0


class SceneCut:
    """Says whether a frame starts a new scene: the mean absolute difference between 16 x 12 grey thumbnails of
    this frame and the one before, on a 0..1 scale, above ``threshold`` (1 = never). The first frame starts one.

    Measured (thumbnails as here): consecutive frames of the bundled clip differ by at most 0.006, frames a second
    apart by 0.02, two consecutive photos of the basketball pair by 0.012, chessboard photos of one room moved by
    hand by 0.08-0.09, unrelated photos by 0.155 or more. Far below a millisecond a frame.
    """

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self._previous: np.ndarray | None = None

    def __call__(self, image: np.ndarray) -> bool:
        thumb = cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), (16, 12), interpolation=cv2.INTER_AREA)
        thumb = thumb.astype(np.float32) / 255.0
        previous, self._previous = self._previous, thumb
        if previous is None:
            return True
        return float(np.mean(np.abs(thumb - previous))) > self.threshold
