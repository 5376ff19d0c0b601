"""Ground-plane depth: a fixed, pitched camera above flat ground, no model (kind ``geometric``)."""

from __future__ import annotations

import math

import numpy as np

from depthstream.schema.config import GroundPlaneConfig
from depthstream.types import DepthKind, DepthMap, Frame

from .base import DepthProvider


def ground_plane_z(v: np.ndarray, height_m: float, pitch_deg: float, focal_px: float, cy_px: float) -> np.ndarray:
    """z-depth in metres where the rays through image rows ``v`` meet flat ground; NaN at/above the horizon.

    v:        vertical image coordinates in pixels (float, any shape; the centre of pixel row r is r + 0.5).
    height_m: camera height above the ground in metres (> 0).
    pitch_deg: downward pitch of the optical axis in degrees (positive = looking down).
    focal_px: vertical focal length in pixels; cy_px: principal row in pixels.
    Returns float64 of ``v``'s shape: ``z = H / (cos(pitch) * (v - cy) / f + sin(pitch))``, NaN where the
    denominator is <= 0 (the ray never reaches the ground). See :class:`GroundPlaneDepth` for the derivation.
    """
    theta = math.radians(pitch_deg)
    down = math.cos(theta) * (np.asarray(v, dtype=np.float64) - cy_px) / focal_px + math.sin(theta)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(down > 0, height_m / np.where(down > 0, down, 1.0), np.nan)
    return z


class GroundPlaneDepth(DepthProvider):
    """Depth of flat ground seen by a fixed, pitched pinhole camera (no model; kind ``geometric``).

    ``camera`` is the validated config section ``depth.ground_plane``: height_m (metres above the ground),
    pitch_deg (angle of the optical axis below the horizontal; positive looks down), exactly one of
    vfov_deg (gives ``f = (img_h / 2) / tan(vfov / 2)``) and focal_px (vertical focal length in pixels),
    cy_px (principal row in pixels; None: the image centre) and max_depth_m (farther depths are invalid, NaN).

    Derivation. Camera frame: x right, y down (image rows), z forward along the optical axis. The ray
    through the centre of pixel row ``v`` (``v = row + 0.5``) is ``d = ((u - cx)/fx, (v - cy)/f, 1)`` and its
    points are ``P = t * d``; since d's z-component is 1, the **z-depth of P equals the ray parameter t**.
    Level world frame at the camera: X right, Y straight down (gravity), Z horizontal forward; the ground is
    the plane ``Y = H``. Pitching the camera down by θ is the rotation about the x axis
    ``R = [[1, 0, 0], [0, cosθ, sinθ], [0, -sinθ, cosθ]]`` (camera -> world), which maps the camera's z axis
    to ``(0, sinθ, cosθ)`` and its y axis to ``(0, cosθ, -sinθ)``; the world-down (Y) component of ``R·d``
    is therefore ``cosθ·(v - cy)/f + sinθ`` (the column does not enter). The ray meets the ground where
    ``t·(cosθ·(v - cy)/f + sinθ) = H``, hence

        z(v) = t = H / (cosθ·(v - cy)/f + sinθ).

    A denominator <= 0 means the ray points at or above the horizon and never meets the ground: NaN.
    The map depends only on the image size, so it is computed once per size and returned read-only.
    """

    source = "ground-plane"
    kind: DepthKind = "geometric"

    def __init__(self, camera: GroundPlaneConfig) -> None:
        self.camera = camera
        self._cache: dict[tuple[int, int], DepthMap] = {}

    def focal_for(self, img_h: int) -> float:
        """Vertical focal length in pixels for images ``img_h`` rows high."""
        if self.camera.focal_px is not None:
            return self.camera.focal_px
        return (img_h / 2.0) / math.tan(math.radians(self.camera.vfov_deg) / 2.0)

    def depth_for_size(self, height: int, width: int) -> DepthMap:
        """The (height, width) float32 read-only depth map (metres, NaN = invalid), cached per size."""
        size = (int(height), int(width))
        cached = self._cache.get(size)
        if cached is not None:
            return cached
        h, w = size
        cam = self.camera
        cy = cam.cy_px if cam.cy_px is not None else h / 2.0
        z = ground_plane_z(np.arange(h) + 0.5, cam.height_m, cam.pitch_deg, self.focal_for(h), cy)
        with np.errstate(invalid="ignore"):
            z[z > cam.max_depth_m] = np.nan
        metres = np.ascontiguousarray(np.broadcast_to(z.astype(np.float32)[:, None], (h, w)))
        metres.setflags(write=False)
        depth = DepthMap(metres, self.source, self.kind)
        self._cache[size] = depth
        return depth

    def __call__(self, frame: Frame) -> DepthMap:
        """(frame.height, frame.width) float32 metres, the same read-only map for every frame of a size."""
        return self.depth_for_size(frame.height, frame.width)


