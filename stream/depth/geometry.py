"""How a frame becomes a depth network's input, and how the network's map goes back onto the frame.

A card's ``resize`` (:mod:`depthstream.schema.card`) names the mode; :class:`Placement` says where the resized
frame lies in the network input of ``size`` = (h, w):

- ``stretch``: the frame resized to (h, w); its aspect ratio changes.
- ``letterbox``: scaled by ``r = min(h / H, w / W)`` to (round(H r), round(W r)), centred, the rest ``pad``.
- ``crop``: scaled by ``r = max(h / H, w / W)`` to cover (h, w), its centre kept; the sides are cut off.

Coordinates are continuous with pixel ``i`` covering [i, i + 1) (OpenCV's resize convention). A frame point
``x`` lands in the input at ``x * rw / W + x0`` (``rw`` the resized width, ``x0`` its left edge in the input,
negative for a crop); the network's output of (oh, ow) covers the input's field of view, so input point ``u``
is output point ``u * ow / w``. :func:`map_to_frame` inverts this with one affine map per axis: every frame
pixel reads the output where its centre landed; frame pixels whose centre landed outside the output (the
sides of a crop) have no depth (NaN), never an invented one; a letterbox's frame pixels read only the part of
the map over the frame, never the padding's.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["Placement", "place", "to_input", "map_to_frame"]


@dataclass(frozen=True)
class Placement:
    """Where a frame of ``frame`` = (H, W) lies in a network input of ``size`` = (h, w): resized to
    ``resized`` = (rh, rw) with its top-left corner at ``offset`` = (y0, x0) of the input (negative: cut off)."""

    mode: str
    frame: tuple[int, int]
    size: tuple[int, int]
    resized: tuple[int, int]
    offset: tuple[int, int]

    def affine_to_output(self, out_hw: tuple[int, int]) -> np.ndarray:
        """The 2x3 map from frame pixel indices to output pixel indices (pixel centres at integers), for
        ``cv2.warpAffine(..., flags=WARP_INVERSE_MAP)``."""
        (fh, fw), (h, w), (rh, rw), (y0, x0) = self.frame, self.size, self.resized, self.offset
        oh, ow = out_hw
        ax, ay = rw * ow / (fw * w), rh * oh / (fh * h)
        bx = 0.5 * ax + x0 * ow / w - 0.5
        by = 0.5 * ay + y0 * oh / h - 0.5
        return np.array([[ax, 0.0, bx], [0.0, ay, by]], dtype=np.float64)


def place(frame_hw: tuple[int, int], size: tuple[int, int], mode: str) -> Placement:
    """The :class:`Placement` of a (H, W) frame in a ``size`` input under resize ``mode``."""
    fh, fw = int(frame_hw[0]), int(frame_hw[1])
    h, w = int(size[0]), int(size[1])
    if mode == "stretch":
        return Placement(mode, (fh, fw), (h, w), (h, w), (0, 0))
    r = min(h / fh, w / fw) if mode == "letterbox" else max(h / fh, w / fw)
    rh, rw = max(1, round(fh * r)), max(1, round(fw * r))
    if mode == "letterbox":
        rh, rw = min(rh, h), min(rw, w)
    else:
        rh, rw = max(rh, h), max(rw, w)
    return Placement(mode, (fh, fw), (h, w), (rh, rw), ((h - rh) // 2, (w - rw) // 2))


def to_input(image: np.ndarray, placement: Placement, pad: int = 0) -> np.ndarray:
    """(H, W, C) uint8 -> (h, w, C) uint8 laid out as ``placement`` says (bilinear resize)."""
    (h, w), (rh, rw), (y0, x0) = placement.size, placement.resized, placement.offset
    resized = image if image.shape[:2] == (rh, rw) else cv2.resize(image, (rw, rh), interpolation=cv2.INTER_LINEAR)
    if placement.mode == "stretch":
        return resized
    if placement.mode == "letterbox":
        canvas = np.full((h, w) + image.shape[2:], pad, dtype=image.dtype)
        canvas[y0:y0 + rh, x0:x0 + rw] = resized
        return canvas
    return np.ascontiguousarray(resized[-y0:-y0 + h, -x0:-x0 + w])


def map_to_frame(metres: np.ndarray, placement: Placement) -> np.ndarray:
    """(oh, ow) float32 metres with NaN holes -> (H, W) float32 on the frame; NaN stays NaN.

    Bilinear over valid pixels only (a normalised convolution: depth x valid and valid are mapped, then
    divided), so valid pixels next to a hole are not pulled towards 0; the holes themselves, and frame pixels
    the output does not cover, are the validity mask mapped with nearest-neighbour. A stretched map is
    resized (``cv2.resize``); the other modes are remapped (``cv2.remap``) through
    :meth:`Placement.affine_to_output`, a letterbox's sample positions kept inside the part of the map over
    the frame (the padding's depth never bleeds into the frame's edge).
    """
    fh, fw = placement.frame
    if placement.mode == "stretch":
        return _resize(metres, fh, fw)
    map_x, map_y = _sample_maps(placement, tuple(metres.shape))
    valid = np.isfinite(metres)

    def remap(a: np.ndarray, interpolation: int) -> np.ndarray:
        return cv2.remap(a, map_x, map_y, interpolation, borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    num = remap(np.where(valid, metres, np.float32(0)).astype(np.float32), cv2.INTER_LINEAR)
    den = remap(valid.astype(np.float32), cv2.INTER_LINEAR)
    keep = remap(valid.view(np.uint8), cv2.INTER_NEAREST).astype(bool) & (den > 1e-6)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / den
    out[~keep] = np.nan
    return out.astype(np.float32, copy=False)


@functools.lru_cache(maxsize=8)
def _sample_maps(placement: Placement, out_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Where each frame pixel reads the output (index coordinates), as ``cv2.remap``'s two float32 maps."""
    (fh, fw), (h, w), (rh, rw), (y0, x0) = placement.frame, placement.size, placement.resized, placement.offset
    oh, ow = out_hw
    m = placement.affine_to_output(out_hw)
    xs = m[0, 0] * np.arange(fw) + m[0, 2]
    ys = m[1, 1] * np.arange(fh) + m[1, 2]
    if placement.mode == "letterbox":  # the frame's part of the map: continuous [x0, x0 + rw) of the input
        xs = np.clip(xs, x0 * ow / w, (x0 + rw) * ow / w - 1.0)
        ys = np.clip(ys, y0 * oh / h, (y0 + rh) * oh / h - 1.0)
    map_x = np.ascontiguousarray(np.broadcast_to(xs.astype(np.float32), (fh, fw)))
    map_y = np.ascontiguousarray(np.broadcast_to(ys.astype(np.float32)[:, None], (fh, fw)))
    return map_x, map_y


def _resize(metres: np.ndarray, height: int, width: int) -> np.ndarray:
    """(h, w) float32 metres with NaN holes -> (height, width) float32, bilinear over valid pixels only."""
    if metres.shape == (height, width):
        return metres
    dsize = (width, height)
    valid = np.isfinite(metres)
    if valid.all():
        return cv2.resize(metres, dsize, interpolation=cv2.INTER_LINEAR)
    num = cv2.resize(np.where(valid, metres, np.float32(0)), dsize, interpolation=cv2.INTER_LINEAR)
    den = cv2.resize(valid.astype(np.float32), dsize, interpolation=cv2.INTER_LINEAR)
    keep = cv2.resize(valid.view(np.uint8), dsize, interpolation=cv2.INTER_NEAREST).astype(bool) & (den > 1e-6)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / den
    out[~keep] = np.nan
    return out.astype(np.float32, copy=False)
