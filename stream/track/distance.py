"""Per-track distance: outlier rejection, smoothing, approach speed and time to contact.

One :class:`DistanceFilter` per track, fed the track's raw distance (``Detections.depth_m``) once per frame
it is seen, with the frame's time in seconds (media time or capture time: never a frame count, so gaps of
dropped frames are predicted across by their real length).

1. **Outliers**: the raw distance is compared with the median of the track's last ``window`` raw distances,
   each moved to the current time along the window's own robust trend (Theil-Sen: the median of the slopes
   between every two of them, from three values on). A distance farther from that reference than
   ``outlier_rel`` of it is not used (the box's distance for this frame is the prediction). The reference is
   computed from the raw values alone, never from the filter, so a filter gone astray cannot make itself
   reject every later measurement; the window keeps rejected values too, so a real jump is accepted once it
   has lasted half the window. When the reference itself disagrees with the filter by more than
   ``outlier_rel``, the filter restarts at the reference (it had started on an outlier, or the object really
   jumped); speed and time to contact are then unknown again for ``window`` frames.
2. **Smoothing**: a constant-velocity Kalman filter on the distance, state (d, v) in metres and metres per
   second, predicted over the real time since the last frame with white-noise acceleration of standard
   deviation ``accel_mps2``; a new track starts at speed 0 with standard deviation ``speed_prior_mps``. Its
   measurement noise is per box: one standard deviation ``hypot(noise_rel * d, spread / 1.349)``
   (``depth_spread_m`` is an interquartile range: /1.349 is a normal's standard deviation), at least the
   scatter of the track's recent raw distances about their trend (1.4826 x their median absolute residual: a
   depth network's frame-to-frame noise is often far larger than the spread inside one box), times
   ``unreliable_factor`` when the depth source flagged the box (``depth_reliable``).
3. **Motion**: speed = v (negative = approaching), time to contact = d / -v while v < 0, both with a standard
   deviation from the filter's covariance (first-order propagation for the time to contact). Reported once
   the track has ``window`` measurements; before that they are NaN.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from depthstream.schema.config import TrackConfig

_IQR_TO_STD = 1.349  # interquartile range of a normal distribution, in standard deviations
_NAN = float("nan")


@dataclass(frozen=True)
class TrackEstimate:
    """The filter's values after one frame (NaN: not known yet). ``outlier``: this frame's raw distance was
    rejected (or missing) and the distance is the prediction."""

    depth_m: float
    depth_std_m: float
    speed_mps: float
    speed_std_mps: float
    ttc_s: float
    ttc_std_s: float
    outlier: bool


class DistanceFilter:
    """The distance of one track over time (see the module docstring), with the validated config section
    ``track`` (``window``, ``outlier_rel``, ``noise_rel``, ``unreliable_factor``, ``accel_mps2``,
    ``speed_prior_mps``: the speed's standard deviation when a track starts, ``max_speed_mps``: the fastest
    change of distance believed, the window's trend is clamped to it)."""

    def __init__(self, options: TrackConfig) -> None:
        self.o = options
        self.t: float | None = None
        self.d = self.v = _NAN
        self.p00 = self.p01 = self.p11 = _NAN
        self.raw: deque[tuple[float, float]] = deque(maxlen=options.window)  # (time_s, raw metres)
        self.hits = 0  # raw distances used so far

    def sigma(self, depth_m: float, spread_m: float, reliable: bool) -> float:
        """One standard deviation of a raw distance, metres: from the box (``noise_rel`` of it and its depth
        spread), at least the scatter of the track's recent distances about their trend."""
        spread = spread_m / _IQR_TO_STD if math.isfinite(spread_m) else 0.0
        s = max(math.hypot(self.o.noise_rel * depth_m, spread), self._scatter())
        return s if reliable else s * self.o.unreliable_factor

    def update(self, time_s: float, depth_m: float, spread_m: float = _NAN, reliable: bool = True) -> TrackEstimate:
        """Advance to ``time_s`` and use the raw distance ``depth_m`` (NaN or <= 0: none this frame)."""
        has = math.isfinite(depth_m) and depth_m > 0
        if self.t is None:
            if not has:
                return TrackEstimate(_NAN, _NAN, _NAN, _NAN, _NAN, _NAN, True)
            self._start(time_s, depth_m, self.sigma(depth_m, spread_m, reliable))
            return self.estimate(False)
        self.predict(time_s)
        if not has:
            return self.estimate(True)
        ref = self._reference(time_s)
        use = abs(depth_m - ref) <= self.o.outlier_rel * ref
        self.raw.append((time_s, depth_m))
        if not use:
            return self.estimate(True)
        sigma = self.sigma(depth_m, spread_m, reliable)
        if abs(ref - self.d) > self.o.outlier_rel * ref:
            # The recent raw distances agree with each other but not with the filter (it started on an
            # outlier, or the object really jumped): start again from them, speed unknown.
            self._start(time_s, ref, sigma)
        else:
            self._correct(depth_m, sigma)
        return self.estimate(False)

    def predict(self, time_s: float) -> None:
        """Move the state to ``time_s`` (constant velocity; the uncertainty grows with the time passed)."""
        dt = time_s - self.t
        if dt <= 0:
            return
        q = self.o.accel_mps2 ** 2
        self.d += self.v * dt
        p00 = self.p00 + dt * (2 * self.p01 + dt * self.p11) + q * dt ** 3 / 3
        p01 = self.p01 + dt * self.p11 + q * dt ** 2 / 2
        self.p11 += q * dt
        self.p00, self.p01 = p00, p01
        self.t = time_s

    def estimate(self, outlier: bool) -> TrackEstimate:
        sd = math.sqrt(max(self.p00, 0.0))
        if self.hits < self.o.window:
            return TrackEstimate(self.d, sd, _NAN, _NAN, _NAN, _NAN, outlier)
        sv = math.sqrt(max(self.p11, 0.0))
        ttc = ttc_sd = _NAN
        if self.v < 0 and self.d > 0:
            ttc = self.d / -self.v
            # ttc = -d / v: d(ttc)/dd = -1/v, d(ttc)/dv = d / v^2
            jd, jv = -1.0 / self.v, self.d / self.v ** 2
            ttc_sd = math.sqrt(max(jd * jd * self.p00 + 2 * jd * jv * self.p01 + jv * jv * self.p11, 0.0))
        return TrackEstimate(self.d, sd, self.v, sv, ttc, ttc_sd, outlier)

    def _start(self, time_s: float, depth_m: float, sigma_m: float) -> None:
        self.t, self.d, self.v = time_s, depth_m, 0.0
        self.p00, self.p01, self.p11 = sigma_m ** 2, 0.0, self.o.speed_prior_mps ** 2
        if not self.raw:
            self.raw.append((time_s, depth_m))
        self.hits = 1

    def _trend(self) -> float:
        """The recent raw distances' Theil-Sen slope, m/s (0 with fewer than three)."""
        pts = list(self.raw)
        if len(pts) < 3:
            return 0.0
        slopes = [(z2 - z1) / (t2 - t1) for i, (t1, z1) in enumerate(pts) for t2, z2 in pts[i + 1:] if t2 > t1]
        return max(-self.o.max_speed_mps, min(self.o.max_speed_mps, _median(slopes))) if slopes else 0.0

    def _reference(self, time_s: float) -> float:
        """The median of the recent raw distances, each moved to ``time_s`` along their trend."""
        slope = self._trend()
        return _median([z + slope * (time_s - t) for t, z in self.raw])

    def _scatter(self) -> float:
        """How much the recent raw distances scatter about their trend: 1.4826 x the median absolute
        residual (a normal's standard deviation), metres; 0 with fewer than three."""
        if len(self.raw) < 3:
            return 0.0
        slope = self._trend()
        t0 = self.raw[-1][0]
        moved = [z + slope * (t0 - t) for t, z in self.raw]
        mid = _median(moved)
        return 1.4826 * _median([abs(m - mid) for m in moved])

    def _correct(self, depth_m: float, sigma_m: float) -> None:
        s = self.p00 + sigma_m ** 2
        k0, k1 = self.p00 / s, self.p01 / s
        innovation = depth_m - self.d
        self.d += k0 * innovation
        self.v += k1 * innovation
        p00 = (1 - k0) * self.p00
        p01 = (1 - k0) * self.p01
        self.p11 -= k1 * self.p01
        self.p00, self.p01 = p00, p01
        self.hits += 1


def _median(values: list[float]) -> float:
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])
