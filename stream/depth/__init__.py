"""Depth providers: each turns a :class:`~depthstream.types.Frame` into a :class:`~depthstream.types.DepthMap`.

A depth map is (H, W) float32 **metres along the optical axis** (z-depth) at the frame's resolution,
NaN where the provider cannot give a depth. The providers:

- :class:`~stream.depth.ground.GroundPlaneDepth` (kind ``geometric``): a fixed camera above flat ground; no model.
- :class:`~stream.depth.network.OnnxDepth` (kind ``metric`` or ``relative+calibrated``): an ONNX depth network
  described by a model card (:mod:`depthstream.schema.card`); a run wraps it in
  :class:`~stream.depth.scaled.ScaledNetworkDepth` so that the size priors may rescale it (kind
  ``relative+autoscaled`` for a relative network without a calibration).
- :class:`~stream.depth.sizeprior.SizePriorDepth` (kind ``size-prior``): no map (NaN everywhere); each box's
  distance comes from its class's typical size (:mod:`stream.depth.sizeprior`, :mod:`stream.depth.sizing`).

Providers are pure computation: no threads, no I/O except loading the model in ``open()``. They receive
validated settings (a :class:`~depthstream.schema.camera.CameraProfile`, a
:class:`~depthstream.schema.card.ModelCard`) and do not check them again. Which provider a run uses is
decided by :mod:`stream.depth.select` from the config and the source's camera profile.
"""

from .base import DepthProvider
from .ground import GroundPlaneDepth, ground_plane_z
from .network import OnnxDepth, find_card, open_depth_model
from .rate import DepthRate

__all__ = ["DepthProvider", "DepthRate", "GroundPlaneDepth", "ground_plane_z", "OnnxDepth", "find_card",
           "open_depth_model"]
