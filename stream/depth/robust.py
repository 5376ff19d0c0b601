"""Robust weighted fits for the size priors' references: a location in log space (a scale, a ratio) and a
straight line (a scale and a shift), both Huber-weighted with gross outliers rejected.

Every reference i has a value, its own 1-sigma uncertainty ``sigma_i`` and a weight ``w_i`` (its age's weight
in a time-smoothed fit, 1 otherwise). Residuals are measured in units of ``sigma_i`` times the residuals'
robust scatter, so a set whose scatter is larger than the priors promise (a child among adults, a van called
a car) is judged by its own scatter, never by less than the priors' spreads.

Why Huber and rejection: a few references are wrong by far more than their spreads say (a false detection, a
person sitting in an upright box, a double-decker bus). Huber's weights (``HUBER_C`` = 1.345, 95 % efficient for
normal errors) make the fit insensitive to them; references beyond ``REJECT_SIGMA`` are then left out entirely
and counted as outliers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["RobustFit", "weighted_median", "robust_location", "robust_line", "HUBER_C", "REJECT_SIGMA"]

HUBER_C = 1.345
REJECT_SIGMA = 3.0
MAD_TO_SIGMA = 1.4826  # a normal's standard deviation per median absolute deviation
_ITERATIONS = 20


@dataclass(frozen=True)
class RobustFit:
    """A fit's parameters (``params``: one location, or slope and intercept), its covariance when every inlier is
    taken as independent (``cov``, scaled by the residuals' scatter), the inliers (bool per reference) and the
    residuals' scatter in units of the references' sigmas (>= 1: never less than the priors promise)."""

    params: np.ndarray
    cov: np.ndarray
    inliers: np.ndarray
    scatter: float


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """The value at half the total weight (the lower one on a tie); NaN when no weight."""
    order = np.argsort(values)
    v, w = values[order], weights[order]
    total = w.sum()
    if not total > 0:
        return math.nan
    return float(v[np.searchsorted(np.cumsum(w), 0.5 * total)])


def _scatter(u: np.ndarray, w: np.ndarray) -> float:
    """Robust scatter of standardised residuals ``u`` (weighted MAD as a sigma), at least 1."""
    return max(1.0, MAD_TO_SIGMA * weighted_median(np.abs(u), w)) if u.size > 1 else 1.0


def robust_location(values: np.ndarray, sigma: np.ndarray, weight: np.ndarray | None = None) -> RobustFit | None:
    """Huber location of ``values`` (e.g. log ratios) with per-value ``sigma``; None without values.

    params: [location]; cov: [[variance of the location]] from the inliers (treated as independent).
    """
    values, sigma = np.asarray(values, float), np.asarray(sigma, float)
    w = np.ones_like(values) if weight is None else np.asarray(weight, float)
    ok = np.isfinite(values) & np.isfinite(sigma) & (sigma > 0) & (w > 0)
    if not ok.any():
        return None
    x, s, w = values[ok], sigma[ok], w[ok]
    base = w / s ** 2
    mu = weighted_median(x, base)
    scatter = _scatter((x - mu) / s, w)
    for _ in range(_ITERATIONS):
        u = (x - mu) / (s * scatter)
        huber = np.minimum(1.0, HUBER_C / np.maximum(np.abs(u), 1e-12))
        new = float(np.sum(base * huber * x) / np.sum(base * huber))
        if abs(new - mu) < 1e-9:
            mu = new
            break
        mu = new
    inl = np.abs((x - mu) / (s * scatter)) <= REJECT_SIGMA
    mu = float(np.sum(base[inl] * x[inl]) / np.sum(base[inl]))
    scatter = _inlier_scatter((x[inl] - mu) / s[inl], w[inl])
    inliers = np.zeros(ok.shape, bool)
    inliers[np.flatnonzero(ok)[inl]] = True
    var = scatter ** 2 / np.sum(base[inl])
    return RobustFit(np.array([mu]), np.array([[var]]), inliers, scatter)


def robust_line(x: np.ndarray, y: np.ndarray, sigma: np.ndarray, weight: np.ndarray | None = None) -> RobustFit | None:
    """Huber straight line ``y = a * x + b`` with per-point ``sigma`` (of y); None with fewer than 2 points or
    when every x is the same. params: [a, b]; cov: their 2 x 2 covariance (inliers treated as independent)."""
    x, y, sigma = np.asarray(x, float), np.asarray(y, float), np.asarray(sigma, float)
    w = np.ones_like(x) if weight is None else np.asarray(weight, float)
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(sigma) & (sigma > 0) & (w > 0)
    if ok.sum() < 2 or np.ptp(x[ok]) == 0:
        return None
    xs, ys, s, w = x[ok], y[ok], sigma[ok], w[ok]
    base = w / s ** 2
    design = np.stack([xs, np.ones_like(xs)], axis=1)

    def solve(weights: np.ndarray) -> np.ndarray | None:
        a = design.T @ (design * weights[:, None])
        if np.linalg.cond(a) > 1e12:
            return None
        return np.linalg.solve(a, design.T @ (weights * ys))

    params = solve(base)
    if params is None:
        return None
    scatter = _scatter((ys - design @ params) / s, w)
    for _ in range(_ITERATIONS):
        u = (ys - design @ params) / (s * scatter)
        new = solve(base * np.minimum(1.0, HUBER_C / np.maximum(np.abs(u), 1e-12)))
        if new is None:
            return None
        if np.allclose(new, params, rtol=1e-10, atol=1e-14):
            params = new
            break
        params = new
    inl = np.abs((ys - design @ params) / (s * scatter)) <= REJECT_SIGMA
    if inl.sum() < 2 or np.ptp(xs[inl]) == 0:
        return None
    a = design[inl].T @ (design[inl] * base[inl, None])
    if np.linalg.cond(a) > 1e12:
        return None
    params = np.linalg.solve(a, design[inl].T @ (base[inl] * ys[inl]))
    scatter = _inlier_scatter((ys[inl] - design[inl] @ params) / s[inl], w[inl])
    inliers = np.zeros(ok.shape, bool)
    inliers[np.flatnonzero(ok)[inl]] = True
    return RobustFit(params, np.linalg.inv(a) * scatter ** 2, inliers, scatter)


def _inlier_scatter(u: np.ndarray, w: np.ndarray) -> float:
    """Weighted RMS of the inliers' standardised residuals, at least 1."""
    if u.size < 2:
        return 1.0
    return max(1.0, math.sqrt(float(np.sum(w * u ** 2) / np.sum(w)) * u.size / (u.size - 1)))
