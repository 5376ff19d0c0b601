"""Cross-check: do a depth source's box distances agree with the size priors'? An indoor network on a street,
or a camera profile that belongs to another camera, gives distances that disagree with every person's height.

Over the last ``window_frames`` frames (since the last scene cut), each reference box (one whose size prior is
reliable, :class:`~stream.depth.sizeprior.BoxRanges`) gives ``r = log(d_source / d_prior)``, with the prior's
spread as its sigma. Their robust mean (:func:`~stream.depth.robust.robust_location`) is the log of the
**ratio** between the source's distances and the priors'; its 1-sigma uncertainty counts the references as only
as many as are seen at once (the same people fill consecutive frames) and adds the spread shared by every
reference (an assumed focal length).

Verdict, with ``t = log(1 + tolerance)`` (the disagreement a source may have in its domain: a metric network's
own error, the priors' bias on one scene):

- ``unknown``: fewer than ``min_references`` references per frame of the window (seen at once, on average);
- ``agrees``: ``|log ratio| <= t + 2 sigma`` -- no disagreement beyond what both can be wrong by;
- ``out of domain`` (a network) / ``disagrees`` (a camera's geometry): ``|log ratio| > t + 2 sigma``.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass

import numpy as np

from depthstream.schema.config import CrossCheckConfig

from .robust import robust_location

__all__ = ["Verdict", "CrossCheck"]


@dataclass(frozen=True)
class Verdict:
    """The cross-check over the window: ``verdict`` (``unknown`` | ``agrees`` | ``out of domain`` |
    ``disagrees``), ``ratio`` = source distance / prior distance (robust mean; NaN when unknown), ``spread`` its
    relative 1-sigma uncertainty, ``references`` in the window, ``frames`` in the window."""

    verdict: str
    ratio: float = math.nan
    spread: float = math.inf
    references: int = 0
    frames: int = 0

    @property
    def disagrees(self) -> bool:
        return self.verdict in ("out of domain", "disagrees")

    def describe(self, source: str) -> str:
        """In words, e.g. ``fastdepth-224 looks out of its domain: its distances are 0.31x the size priors' (52 refs)``."""
        if self.verdict == "unknown":
            return f"cross-check: too few references ({self.references} in {self.frames} frames)"
        what = {"agrees": f"{source} agrees with the size priors", "out of domain": f"{source} looks out of its domain",
                "disagrees": f"{source} disagrees with the size priors (another camera's geometry?)"}[self.verdict]
        return f"{what}: its distances are {self.ratio:.2f}x the priors' (+- {100 * self.spread:.0f} %, {self.references} refs)"

    def details(self) -> dict:
        """The JSONL's ``crosscheck`` object."""
        finite = math.isfinite(self.ratio)
        return {"verdict": self.verdict, "ratio": round(self.ratio, 4) if finite else None,
                "spread": round(self.spread, 4) if finite else None, "references": self.references,
                "frames": self.frames}


class CrossCheck:
    """The window of references and the verdict (module docstring). ``geometric``: the source is a camera's
    geometry (ground plane), whose disagreement is ``disagrees`` rather than ``out of domain``."""

    def __init__(self, options: CrossCheckConfig, geometric: bool = False) -> None:
        self.options = options
        self.geometric = geometric
        self._window: collections.deque[tuple[np.ndarray, np.ndarray]] = collections.deque(maxlen=options.window_frames)
        self.current = Verdict("unknown")

    def reset(self) -> None:
        """Forget the window (a scene cut)."""
        self._window.clear()
        self.current = Verdict("unknown")

    def update(self, source_m: np.ndarray, prior_m: np.ndarray, spread: np.ndarray, common_spread: float = 0.0) -> Verdict:
        """Add one frame's references -- the source's distance of each reference box, the priors' distance and
        relative spread -- and return the verdict over the window (also :attr:`current`)."""
        d, z, s = (np.asarray(a, float).ravel() for a in (source_m, prior_m, spread))
        ok = np.isfinite(d) & (d > 0) & np.isfinite(z) & (z > 0) & np.isfinite(s) & (s > 0)
        self._window.append((np.log(d[ok] / z[ok]), s[ok]))
        self.current = self._verdict(common_spread)
        return self.current

    def _verdict(self, common_spread: float) -> Verdict:
        o = self.options
        frames = len(self._window)
        r = np.concatenate([w[0] for w in self._window])
        s = np.concatenate([w[1] for w in self._window])
        if r.size == 0 or r.size / frames < o.min_references:
            return Verdict("unknown", references=int(r.size), frames=frames)
        fit = robust_location(r, s)
        n_inliers = int(fit.inliers.sum())
        per_frame = n_inliers / frames
        sigma = math.hypot(math.sqrt(fit.cov[0, 0] * n_inliers / per_frame), common_spread)
        log_ratio = float(fit.params[0])
        agrees = abs(log_ratio) <= math.log1p(o.tolerance) + 2.0 * sigma
        verdict = "agrees" if agrees else ("disagrees" if self.geometric else "out of domain")
        return Verdict(verdict, math.exp(log_ratio), sigma, int(r.size), frames)
