"""A depth network whose metres the size priors may rescale (:mod:`stream.depth.autoscale`).

:class:`ScaledNetworkDepth` runs the network and keeps its output for the pipeline's last stage
(:class:`~stream.depth.sizing.SizeStage`), which fits the scale to the size priors' references. The metres of a
frame are the network's own unless the shared :class:`Scaling` says a fit is in force: then the fit's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from depthstream.types import DepthKind, DepthMap, Frame

from .autoscale import Output, ScaleFit
from .base import DepthProvider
from .geometry import map_to_frame
from .network import OnnxDepth

__all__ = ["Scaling", "ScaledDepthMap", "ScaledNetworkDepth"]


@dataclass(frozen=True)
class Scaling:
    """What the last stage decided after the frames before: ``fit`` (the current scale fit) and ``applied``
    (whether the metres are the fit's). Replaced whole, never changed: the depth stage reads it without a lock."""

    fit: ScaleFit
    applied: bool = False


@dataclass(frozen=True, eq=False)
class ScaledDepthMap(DepthMap):
    """A network's DepthMap that also carries ``output``: what the scale is fitted to, (H, W) float32 at the
    frame's size -- the network's metres (``metric``), or its raw relative output (``relative-depth`` /
    ``relative-inverse``), NaN where invalid."""

    output: np.ndarray | None = None


class ScaledNetworkDepth(DepthProvider):
    """Wraps an :class:`~stream.depth.network.OnnxDepth` (opened and closed with it); every attribute it does
    not have itself is the network's (its card, camera, engine, valid range, state).

    ``output_kind``: ``metric`` when the network gives metres (a metric card, or a relative one with a
    calibration), else the card's relative kind. ``scaling`` is read once per frame; the last stage replaces it.
    """

    def __init__(self, network: OnnxDepth) -> None:
        self.network = network
        card = network.card
        self.gives_metres = not (card.relative and card.calibration is None)
        self.output_kind: Output = "metric" if self.gives_metres else card.kind  # type: ignore[assignment]
        self.source = network.source
        self.kind: DepthKind = network.kind if self.gives_metres else "relative+autoscaled"
        for shared in ("valid_range_m", "state", "domain_note"):  # the base class has defaults: take the network's
            if hasattr(network, shared):
                setattr(self, shared, getattr(network, shared))
        self.scaling = Scaling(ScaleFit(self.output_kind))

    def __getattr__(self, name: str):
        if name == "network":  # not set yet (copying, unpickling): never recurse
            raise AttributeError(name)
        return getattr(self.network, name)

    def open(self) -> None:
        self.network.open()

    def close(self) -> None:
        self.network.close()

    def metres(self, output: np.ndarray, scaling: Scaling) -> np.ndarray:
        """Metres from ``output`` (what the scale is fitted to) under ``scaling``: the fit's when applied, the
        network's own when it gives metres, else none (NaN: an uncalibrated relative network gives no metres)."""
        if scaling.applied:
            return scaling.fit.apply(output)
        if self.gives_metres:
            return output
        return np.full(output.shape, np.nan, np.float32)

    def valid_range(self, scaling: Scaling) -> tuple[float, float] | None:
        """The metres the map can hold under ``scaling``: the network's own range, that range times the scale
        of a scale-only fit in force, none stated under a fit with a shift (the network's own range is not in
        metres then)."""
        if not scaling.applied:
            return self.valid_range_m
        if scaling.fit.fit == "scale" and self.valid_range_m is not None:
            near, far = self.valid_range_m
            return (near * scaling.fit.scale, far * scaling.fit.scale)
        return None

    def __call__(self, frame: Frame) -> DepthMap:
        raw, placement = self.network.raw_output(frame)
        y = self.network.to_metres(raw) if self.gives_metres else _finite(raw)
        output = map_to_frame(y, placement)
        scaling = self.scaling
        return ScaledDepthMap(self.metres(output, scaling), self.source, self.kind,
                              valid_range_m=self.valid_range(scaling), state=self.state, output=output)


def _finite(raw: np.ndarray) -> np.ndarray:
    out = np.array(raw, dtype=np.float32)
    out[~np.isfinite(out)] = np.nan
    return out
