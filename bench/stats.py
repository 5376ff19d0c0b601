"""Statistics of timing samples, as every benchmark reports them.

Percentiles are numpy's (``np.percentile``, its default ``linear`` method: interpolation between the two
nearest ranks, the same as Excel's PERCENTILE.INC): for sorted samples x[0..n-1], the q-th percentile is
read at the fractional rank (n - 1) * q / 100. With 300 samples, p99 sits between the 3rd and 4th largest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

QUANTILES = (50, 95, 99)


@dataclass(frozen=True)
class Stat:
    """Summary of one series of samples in milliseconds (or any unit)."""

    n: int
    mean: float
    p50: float
    p95: float
    p99: float
    min: float
    max: float

    def as_dict(self, digits: int = 3) -> dict[str, float | int]:
        return {
            "n": self.n,
            **{k: round(getattr(self, k), digits) for k in ("mean", "p50", "p95", "p99", "min", "max")},
        }


def summarise(samples: Iterable[float]) -> Stat:
    """n, mean, p50 / p95 / p99, min and max of ``samples`` (ValueError when empty)."""
    xs = [float(x) for x in samples]
    if not xs:
        raise ValueError("cannot summarise an empty list of samples")
    arr = np.asarray(xs, dtype=np.float64)
    p50, p95, p99 = (float(p) for p in np.percentile(arr, QUANTILES))
    return Stat(len(xs), float(arr.mean()), p50, p95, p99, float(arr.min()), float(arr.max()))


def steady_fps(stamps_s: Sequence[float], warmup: int) -> float:
    """Frames per second over the frames after the warm-up.

    ``stamps_s[i]`` is the time (seconds, one monotonic clock) frame i was finished. The window opens
    when the last warm-up frame finished, so it holds exactly ``len(stamps_s) - warmup`` frames:
    fps = (n - warmup) / (stamps_s[-1] - stamps_s[warmup - 1]). With no warm-up the first frame's
    finish opens the window and n - 1 frames are counted.
    """
    n = len(stamps_s)
    if warmup < 0:
        raise ValueError(f"warm-up must be >= 0 frames, got {warmup}")
    start = warmup - 1 if warmup > 0 else 0
    frames = n - warmup if warmup > 0 else n - 1
    if frames < 1:
        raise ValueError(f"need more than {warmup} warm-up frames to measure a rate, got {n} frames")
    span = stamps_s[-1] - stamps_s[start]
    if span <= 0:
        raise ValueError(f"frame times do not increase ({stamps_s[start]} .. {stamps_s[-1]})")
    return frames / span


def ratio(num: float, den: float) -> float | None:
    """num / den, or None when the denominator is zero or either side is missing."""
    if num is None or den is None or den == 0:
        return None
    return num / den
