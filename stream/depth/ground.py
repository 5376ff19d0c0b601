"""Ground-plane depth: a fixed, pitched camera above flat ground, from its camera profile; no model (kind
``geometric``)."""

from __future__ import annotations

import math

import numpy as np

from depthstream.errors import ConfigError
from depthstream.schema.camera import CameraProfile
from depthstream.types import DepthKind, DepthMap, Frame

from .base import DepthProvider


def ground_plane_z(v: np.ndarray, height_m: float, pitch_deg: float, focal_px: float, cy_px: float,
                   u: np.ndarray | float = 0.0, fx_px: float | None = None, cx_px: float = 0.0,
                   roll_deg: float = 0.0) -> np.ndarray:
    """z-depth in metres where the rays through image points (u, v) meet flat ground; NaN at/above the horizon.

    v, u:     image coordinates in pixels, OpenCV's convention (the centre of pixel row r is v = r); any shapes
              that broadcast. u matters only with a roll.
    height_m: camera height above the ground in metres (> 0).
    pitch_deg: downward pitch of the optical axis in degrees (positive = looking down).
    focal_px, cy_px: vertical focal length and principal row in pixels; fx_px (default focal_px), cx_px: the
              horizontal ones.
    roll_deg: rotation about the optical axis; positive lowers the image's right side towards the ground.
    Returns float64: ``z = H / (cos(pitch) * (sin(roll) * (u - cx) / fx + cos(roll) * (v - cy) / fy) + sin(pitch))``,
    NaN where the denominator is <= 0 (the ray never reaches the ground). See :class:`GroundPlaneDepth`.
    """
    theta, phi = math.radians(pitch_deg), math.radians(roll_deg)
    b = (np.asarray(v, dtype=np.float64) - cy_px) / focal_px
    if roll_deg:
        a = (np.asarray(u, dtype=np.float64) - cx_px) / (fx_px or focal_px)
        b = math.sin(phi) * a + math.cos(phi) * b
    down = math.cos(theta) * b + math.sin(theta)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(down > 0, height_m / np.where(down > 0, down, 1.0), np.nan)
    return z


class GroundPlaneDepth(DepthProvider):
    """Depth of flat ground seen by a fixed, pitched pinhole camera (no model; kind ``geometric``).

    ``profile`` is the camera's validated profile (:mod:`depthstream.schema.camera`): its ``mounting``
    (height_m above the ground, pitch_deg below the horizontal, roll_deg) and ``intrinsics`` (scaled to each
    frame's size by :meth:`~depthstream.schema.camera.CameraProfile.intrinsics_for`; a frame of another aspect
    ratio is a ConfigError). ``max_depth_m``: farther ground is invalid (NaN); it is also the top of the
    map's valid range.

    Derivation. Camera frame: x right, y down (image rows), z forward along the optical axis. The ray
    through image point (u, v) is ``d = ((u - cx)/fx, (v - cy)/fy, 1)`` and its points are ``P = t * d``;
    since d's z-component is 1, the **z-depth of P equals the ray parameter t**. Level world frame at the
    camera: X right, Y straight down (gravity), Z horizontal forward; the ground is the plane ``Y = H``.
    Rolling the camera by φ about its optical axis (right side down) gives the ray the down component
    ``b' = sinφ·(u - cx)/fx + cosφ·(v - cy)/fy``; pitching it down by θ is the rotation about the x axis
    ``R = [[1, 0, 0], [0, cosθ, sinθ], [0, -sinθ, cosθ]]``, which maps the camera's z axis to ``(0, sinθ, cosθ)``
    and its y axis to ``(0, cosθ, -sinθ)``; the world-down (Y) component of the ray is therefore
    ``cosθ·b' + sinθ``. The ray meets the ground where ``t·(cosθ·b' + sinθ) = H``, hence

        z(u, v) = t = H / (cosθ·b' + sinθ).

    Without roll the column does not enter. A denominator <= 0 means the ray points at or above the horizon
    and never meets the ground: NaN. The map depends only on the image size, so it is computed once per size
    and returned read-only.
    """

    source = "ground-plane"
    kind: DepthKind = "geometric"
    reads_pixels = False

    def __init__(self, profile: CameraProfile, max_depth_m: float = 100.0) -> None:
        if profile.mounting is None or profile.intrinsics is None:
            missing = " and ".join(k for k in ("mounting", "intrinsics") if getattr(profile, k) is None)
            raise ConfigError(f"camera profile '{profile.name}' has no {missing}: the ground plane needs the camera's "
                              f"height and pitch (mounting) and its focal length (intrinsics); add them, or use a "
                              f"depth network (--depth-model CARD, or depth.source auto)")
        self.profile = profile
        self.max_depth_m = float(max_depth_m)
        self.valid_range_m = (0.0, self.max_depth_m)
        self.state = f"geometric, {profile.name}"
        self.domain_note = None
        self._cache: dict[tuple[int, int], DepthMap] = {}

    def depth_for_size(self, height: int, width: int) -> DepthMap:
        """The (height, width) float32 read-only depth map (metres, NaN = invalid), cached per size."""
        size = (int(height), int(width))
        cached = self._cache.get(size)
        if cached is not None:
            return cached
        h, w = size
        intr = self.profile.intrinsics_for(w, h)
        mount = self.profile.mounting
        v = np.arange(h, dtype=np.float64)[:, None]
        u = np.arange(w, dtype=np.float64)[None, :] if mount.roll_deg else 0.0
        z = ground_plane_z(v, mount.height_m, mount.pitch_deg, intr.fy, intr.cy, u, intr.fx, intr.cx, mount.roll_deg)
        with np.errstate(invalid="ignore"):
            z[z > self.max_depth_m] = np.nan
        metres = np.ascontiguousarray(np.broadcast_to(z.astype(np.float32), (h, w)))
        metres.setflags(write=False)
        depth = DepthMap(metres, self.source, self.kind, valid_range_m=self.valid_range_m, state=self.state)
        self._cache[size] = depth
        return depth

    def __call__(self, frame: Frame) -> DepthMap:
        """(frame.height, frame.width) float32 metres, the same read-only map for every frame of a size."""
        return self.depth_for_size(frame.height, frame.width)
