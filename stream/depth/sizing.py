"""The size priors' part of the pipeline's last stage: each box's distance from its class's size, the automatic
scale of a depth network, the cross-check of a source's metres -- one plain callable per run.

Per frame, after detection (:meth:`SizeStage.__call__`): the size priors range the boxes
(:class:`~stream.depth.sizeprior.SizePriorRanger`); a scene cut resets the fit and the cross-check; then by the
depth source:

- ``size-prior`` (:class:`~stream.depth.sizeprior.SizePriorDepth`): the boxes take the priors' distances;
- a network (:class:`~stream.depth.scaled.ScaledNetworkDepth`): its box values at the reference boxes feed the
  cross-check (when it gives metres) and the scale fit; the fit is **applied** to a relative network without a
  calibration, with ``depth.autoscale.mode: always`` to any network, and with ``auto`` to a metric one while it is
  out of its domain (the cross-check says so, or the camera profile's scene is not the card's domain); the boxes
  get their distances from the resulting map;
- another source with a map (the ground plane): its box distances feed the cross-check.

A map reused from an earlier frame (``depth.every``) is not a new measurement: its values at this frame's boxes
neither update the scale fit nor the cross-check (the last fit and verdict stay in force); the boxes still get
their distances from it under that fit.

Every distance the stage cannot stand behind is flagged (``depth_reliable`` False, with a ``depth_note`` saying
why, :data:`NOTES` and :data:`~stream.depth.sizeprior.NOTES`): a size prior too uncertain,
only a bound, or under an assumed focal length; a network whose metres need a fit that is uncalibrated, or that is
fitted to priors under an assumed focal length; a source the cross-check finds out of its domain (its metres stay
flagged even when scaled: a scale fixes the unit, not the shape of the map). The DepthMap
carries the outcome: ``state`` in words for the HUD, ``details`` for the JSONL (``size_prior``, ``scale``,
``crosscheck``), and :meth:`SizeStage.summary` for the run's summary.

State across frames lives here (the fit, the window, the counts); the stage is called from one thread.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from depthstream.schema.camera import CameraProfile
from depthstream.schema.config import DepthConfig
from depthstream.types import DepthMap, Detections, Frame

from ..boxdepth import assign_box_depth
from .autoscale import AutoScale, SceneCut
from .base import DepthProvider
from .crosscheck import CrossCheck, Verdict
from .scaled import Scaling, ScaledNetworkDepth
from .sizeprior import BoxRanges, SizePriorDepth, SizePriorRanger

__all__ = ["SizeStage", "NOTES", "flag"]


@dataclass
class _Counts:
    frames: int = 0
    references: int = 0
    calibrated: int = 0
    applied: int = 0
    disagreed: int = 0


class SizeStage:
    """Size priors, automatic scale and cross-check for one run (module docstring).

    options: the validated ``depth`` section. depth: the run's depth provider. class_names: the detector's.
    profile: the camera's profile (None: the assumed field of view). box_stat / roi: how a box's value is read
    from a map (``depth.box_stat`` resolved, ``depth.roi``).
    """

    def __init__(self, options: DepthConfig, depth: DepthProvider, class_names: Sequence[str], *,
                 profile: CameraProfile | None = None, box_stat: str = "center_mean", roi: float = 0.4) -> None:
        self.options = options
        self.depth = depth
        self.box_stat, self.roi = box_stat, roi
        self.ranger = SizePriorRanger(options.size_prior, class_names, profile)
        self.scene_cut = SceneCut(options.autoscale.scene_cut)
        self.network = depth if isinstance(depth, ScaledNetworkDepth) else None
        self.size_prior = isinstance(depth, SizePriorDepth)
        mode = options.autoscale.mode
        self.autoscale = (AutoScale(options.autoscale, self.network.output_kind)
                          if self.network is not None and (mode != "never" or not self.network.gives_metres) else None)
        gives_metres = self.network.gives_metres if self.network is not None else not self.size_prior
        self.crosscheck = (CrossCheck(options.crosscheck, geometric=self.network is None and not self.size_prior)
                           if gives_metres else None)
        self.counts = _Counts()
        self.last: tuple[Scaling | None, Verdict | None, BoxRanges | None] = (None, None, None)

    def __call__(self, frame: Frame, depth: DepthMap, dets: Detections) -> tuple[DepthMap, Detections]:
        """This frame's DepthMap (scaled, with state and details) and its boxes with their distances."""
        ranges = self.ranger(dets, frame.width, frame.height)
        if self.scene_cut(frame.image):
            for part in (self.autoscale, self.crosscheck):
                if part is not None:
                    part.reset()
        self.counts.frames += 1
        self.counts.references += int(ranges.reference.sum())
        details = {"size_prior": {**ranges.geometry.details(), "references": int(ranges.reference.sum())}}
        if self.size_prior:
            self.last = (None, None, ranges)
            return replace(depth, details=details), ranges.apply_to(dets)
        if self.network is not None:
            return self._network(depth, dets, ranges, details, fresh=depth.frame_index in (None, frame.index))
        dets = assign_box_depth(dets, depth, self.box_stat, self.roi)
        verdict = self._check(dets.depth_m, ranges)
        self.last = (None, verdict, ranges)
        details["crosscheck"] = verdict.details()
        state = _join(depth.state, verdict.describe(depth.source) if verdict.disagrees else "")
        if verdict.disagrees:
            dets = flag(dets, np.ones(len(dets), bool), NOTES["disagrees"])
        return replace(depth, state=state, details={**depth.details, **details}), dets

    def _network(self, depth: DepthMap, dets: Detections, ranges: BoxRanges, details: dict,
                 fresh: bool = True) -> tuple[DepthMap, Detections]:
        """``fresh`` False: the map is an earlier frame's (``depth.every``): the fit and verdict are not updated."""
        net = self.network
        output = depth.output  # type: ignore[attr-defined]
        ref = ranges.reference
        fit = net.scaling.fit
        if fresh:
            values = assign_box_depth(dets, DepthMap(output, depth.source, depth.kind), self.box_stat, self.roi).depth_m
            verdict = self._check(values, ranges) if self.crosscheck is not None else None
        else:
            verdict = self.last[1]
        if self.autoscale is not None and fresh:
            fit = self.autoscale.update(values[ref], ranges.distance_m[ref], ranges.spread[ref], ranges.common_spread)
        mode = self.options.autoscale.mode
        disagrees = verdict is not None and verdict.disagrees
        out_of_domain = disagrees or net.domain_note is not None  # the cross-check, or the profile's scene
        wanted = (not net.gives_metres) or mode == "always" or (mode == "auto" and out_of_domain)
        scaling = Scaling(fit, wanted and fit.calibrated)
        net.scaling = scaling
        self.counts.calibrated += fit.calibrated
        self.counts.applied += scaling.applied
        self.last = (scaling, verdict, ranges)
        scaled = replace(depth, metres=net.metres(output, scaling), valid_range_m=net.valid_range(scaling))
        dets = assign_box_depth(dets, scaled, self.box_stat, self.roi)
        every = np.ones(len(dets), bool)
        if wanted and not fit.calibrated:
            dets = flag(dets, every, NOTES["uncalibrated"])
        if disagrees:
            dets = flag(dets, every, NOTES["out of domain"])
        if scaling.applied and ranges.geometry.assumed:
            dets = flag(dets, every, NOTES["assumed"])
        if self.autoscale is not None:
            details["scale"] = fit.details(scaling.applied)
        if verdict is not None:
            details["crosscheck"] = verdict.details()
        state = _join(depth.state, _scale_words(scaling, wanted),
                      verdict.describe(depth.source) if verdict is not None and verdict.disagrees else "")
        return replace(scaled, state=state, details={**depth.details, **details}), dets

    def _check(self, values: np.ndarray, ranges: BoxRanges) -> Verdict:
        ref = ranges.reference
        verdict = self.crosscheck.update(values[ref], ranges.distance_m[ref], ranges.spread[ref], ranges.common_spread)
        self.counts.disagreed += verdict.disagrees
        return verdict

    def summary(self) -> list[str]:
        """Lines for the run's summary: the focal length used, the scale, the cross-check's verdict."""
        c = self.counts
        scaling, verdict, ranges = self.last
        if ranges is None:
            return []
        lines = [f"size priors: {ranges.geometry.describe()}; {c.references} reference boxes in {c.frames} frames"]
        if scaling is not None and self.autoscale is not None:
            lines.append(f"automatic scale: calibrated in {c.calibrated} of {c.frames} frames, applied in {c.applied}; "
                         f"last: {scaling.fit.describe()}")
        if verdict is not None:
            lines.append(f"{verdict.describe(self.depth.source)}; disagreed in {c.disagreed} of {c.frames} frames")
        return lines


NOTES = {
    "uncalibrated": "uncalibrated: too few references of known size for the automatic scale",
    "out of domain": "out of domain by the size priors' cross-check",
    "assumed": "scaled by size priors under an assumed focal length (no camera profile with intrinsics)",
    "disagrees": "disagrees with the size priors' cross-check (another camera's geometry?)",
}
"""Why a distance is not reliable (``depth_note``), as this stage says: fixed texts, so the summary can count them."""


def flag(dets: Detections, mask: np.ndarray, note: str) -> Detections:
    """``dets`` with the boxes of ``mask`` flagged unreliable and ``note`` added to their notes (once)."""
    if not mask.any():
        return dets
    notes = np.array([t if not m or note in str(t).split("; ") else (f"{t}; {note}" if t else note)
                      for t, m in zip(dets.depth_note, mask)], dtype=object)
    return dets.with_trust(dets.depth_reliable & ~mask, notes)


def _scale_words(scaling: Scaling, wanted: bool) -> str:
    if scaling.applied:
        return f"scaled by size priors: {scaling.fit.describe()}"
    return f"not scaled: {scaling.fit.describe()}" if wanted else ""


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)
