"""Annotate a frame so that a person can read it and nothing of what was found is hidden.

Every image here is (H, W, 3) uint8 in **BGR** colour order (OpenCV's). ``Overlay.draw`` never modifies the
frame it is given; it returns a new image of the same size: the HUD and the inset sit inside the picture,
so the MP4, the image folder and the JSONL's pixel coordinates keep the source's size. Text, lines and
panels scale with the frame (``overlay_layout.TextStyle``): a 640x360 video and a 1080p one look alike.

Layers, in drawing order (later ones on top):

1. **tint**: pixels *outside* the distance band (``Result.mask`` False) blended toward ``tint_bgr`` by
   ``tint_alpha``, except inside the boxes shown as found: those are in the band, and stay as they are.
2. **depth inset** (``depth_inset``): the depth map, ``inset_fraction`` of the frame's width,
   semi-transparent, in the corner that met the fewest boxes over the recent frames; the boxes of this
   frame show through it. Its colours span the depth source's own range (``DepthMap.valid_range_m``; a
   source that states none: 0 to the farthest depth seen so far in this run, rounded up, which only
   grows, so a colour keeps its metres), near = warm, far = cool, no depth = dark; a colour bar in metres
   below it. ``auto`` leaves it out of frames whose shorter side is under :data:`INSET_MIN_SIDE` pixels.
3. **boxes**: outlines in a colour per track (tracked boxes) or per class, neighbours of a similar
   colour in different shades (``overlay_layout.box_colours``).
4. **HUD** (``hud``, ``overlay_hud``): one compact strip at the frame's edge, in the corner that met the
   fewest boxes: FPS, depth source and its state, the band with a swatch of the tint ("outside"), and
   the per-stage milliseconds when ``timings`` is on.
5. **labels**: ``person 3.2 m`` (``person 0.87 3.2 m`` with ``scores``); a distance the depth source cannot
   stand behind (``Detections.depth_reliable`` False) reads ``~3.2 m`` on grey; no depth reads ``? m``. A
   tracked box (``stream.track.display``) reads ``#7 person 12.3 m -1.4 m/s ttc 8.6±1.2 s``: its track id,
   its filtered distance, its speed once known, and its time to contact only while the approach speed is
   at least twice its standard deviation.
   Each label sits in free space (``overlay_layout.place_labels``): at its box when there is room, else
   nearby with a leader line; never over another label, another box, the HUD or the inset while a free
   spot exists. Nearest objects are placed first.

Options come validated from the config (``overlay.*`` in config.yaml, :class:`~depthstream.schema.config.OverlayConfig`);
nothing is re-checked here.
The corner choice and the inset's fallback range are the only state (one :class:`Overlay` per run);
:func:`draw` annotates a single picture with a fresh one.
"""

from __future__ import annotations

import functools
import math
from collections import deque
from collections.abc import Sequence

import cv2
import numpy as np

from depthstream.schema.config import OverlayConfig
from depthstream.types import DepthMap, Detections, Result

from .overlay_hud import HUD_DIM, draw_hud, hud_rows, hud_size
from .overlay_layout import (FONT, HISTORY_FRAMES, TextStyle, box_colours, box_rects, choose_corners, class_hue,
                             corner_rects, hue_colour, inner_rects, leader_line, place_labels)
from .track.display import shown_depth, track_affixes

__all__ = ["Overlay", "draw", "colorize_depth", "class_colour", "label_text", "INSET_MIN_SIDE"]

INSET_MIN_SIDE = 480  # depth_inset: auto leaves the inset out of frames whose shorter side is smaller (it would cover too much)
_INSET_ALPHA = 0.7    # the inset's colours over the picture
_INSET_MAX_HEIGHT = 0.3  # share of the frame's height the inset image may take at most
_TEXT_BGR = (255, 255, 255)
_UNRELIABLE_BGR = (150, 150, 150)  # label fill of a distance we cannot stand behind
_BORDER_BGR = (255, 255, 255)


def class_colour(class_id: int) -> tuple[int, int, int]:
    """The box colour of a class when no neighbour of a similar colour is near: (B, G, R) 0..255."""
    return hue_colour(class_hue(class_id), 0)


def _class_name(class_id: int, class_names: Sequence[str]) -> str:
    if 0 <= class_id < len(class_names):
        return str(class_names[class_id])
    return f"class {class_id}"


def label_text(class_name: str, depth_m: float, *, reliable: bool = True, confidence: float | None = None) -> str:
    """A box's label: ``person 3.2 m``; ``person ~3.2 m`` when the distance is not reliable; ``person ? m``
    without a depth; the score after the name when ``confidence`` is given (``person 0.87 3.2 m``)."""
    depth = "?" if not math.isfinite(depth_m) else f"{'' if reliable else '~'}{depth_m:.1f}"
    score = "" if confidence is None else f" {confidence:.2f}"
    return f"{class_name}{score} {depth} m"


def colorize_depth(metres: np.ndarray, near_m: float, far_m: float) -> np.ndarray:
    """Colour-map a depth map over the fixed range ``near_m``..``far_m`` metres.

    metres: (H, W) float array; NaN, inf and values <= 0 are invalid (as ``DepthMap.valid``).
    Returns (H, W, 3) uint8 **BGR**: COLORMAP_TURBO, near = warm (red), far = cool (blue), depths outside
    the range clipped to its ends, invalid pixels black. The range is the caller's, never the map's own
    min-max, so a colour means the same metres in every frame.
    """
    m = np.asarray(metres)
    if m.ndim != 2:
        raise ValueError(f"colorize_depth needs a (H, W) depth map in metres, got shape {m.shape}")
    if not (math.isfinite(near_m) and math.isfinite(far_m) and 0 <= near_m < far_m):
        raise ValueError(f"colorize_depth needs a range of metres 0 <= near < far, got {near_m!r}..{far_m!r}")
    m = m.astype(np.float32, copy=False)
    # Index 255 = near (warm end of TURBO), 0 = far or further; invalid pixels get any index, then black.
    level = cv2.convertScaleAbs(np.clip(m, near_m, far_m), alpha=-255.0 / (far_m - near_m),
                                beta=255.0 * far_m / (far_m - near_m))
    colours = cv2.applyColorMap(level, _TURBO)
    return cv2.bitwise_and(colours, colours, mask=_valid(m))


def _valid(m: np.ndarray) -> np.ndarray:
    """(H, W) uint8: 255 where ``m`` (float32 metres) is finite and > 0 (NaN compares false), else 0."""
    return cv2.inRange(m, float(np.finfo(np.float32).tiny), float(np.finfo(np.float32).max))


# OpenCV's TURBO colour map as a user table (applyColorMap rebuilds a named map's table on every call).
_TURBO = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], cv2.COLORMAP_TURBO)


@functools.lru_cache(maxsize=8)
def _colour_bar(near_m: float, far_m: float, width: int, height: int) -> np.ndarray:
    """(height, width, 3) BGR: near_m (left) .. far_m (right) in the inset's colours."""
    ramp = np.linspace(max(near_m, 1e-3), far_m, width, dtype=np.float32)[None, :].repeat(height, axis=0)
    return colorize_depth(ramp, near_m, far_m)


def _nice_ceil(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k that is >= value (> 0)."""
    exp = 10.0 ** math.floor(math.log10(value))
    return next(s * exp for s in (1.0, 2.0, 2.5, 5.0, 10.0) if s * exp >= value * (1 - 1e-9))


def _fmt_m(value: float) -> str:
    return f"{value:.3g}"


class Overlay:
    """Draws a run's frames; keeps what must stay steady across them (the corners, the inset's range)."""

    def __init__(self, options: OverlayConfig, class_names: Sequence[str], *, stills: bool = False) -> None:
        """stills: the frames are unrelated pictures (a folder of photos): each one is laid out on its own,
        with no memory of the frames before it."""
        self.options = options
        self.class_names = list(class_names)
        self.stills = stills
        self._size: tuple[int, int] | None = None
        self._history: deque[np.ndarray] = deque(maxlen=1 if stills else HISTORY_FRAMES)
        self._corners: tuple[str | None, str | None] | None = None
        self._far_seen = 0.0

    @property
    def corners(self) -> tuple[str | None, str | None] | None:
        """(HUD corner, inset corner) of the last frame drawn: tl / tr / bl / br, None where not drawn."""
        return self._corners

    def draw(self, result: Result, *, fps: float | None, band_text: str | None) -> np.ndarray:
        """Annotate ``result.frame.image``; returns a new (H, W, 3) uint8 BGR image, the input untouched.

        result:    ``mask`` (H, W) bool (None: no tint), ``detections`` (None or empty: no boxes), ``depth``
                   (None: no inset, the HUD says "no depth"), ``timings_ms`` (shown with ``timings``).
        fps:       measured frames per second for the HUD, or None to leave it out.
        band_text: the distance band in words ("closer than 2 m"), or None when no band is asked.
        """
        opts = self.options
        image = result.frame.image
        height, width = image.shape[:2]
        if self._size != (height, width) or self.stills:  # another picture: nothing carries over
            self._size, self._corners, self._far_seen = (height, width), None, 0.0
            self._history.clear()
        style = TextStyle.for_frame(height, width)
        dets = result.detections if result.detections is not None else Detections.empty()
        outline = box_rects(dets.xyxy, style.line_px, width, height)
        inner = inner_rects(dets.xyxy, width, height)
        self._history.append(inner)

        tinted = result.mask is not None and opts.tint_alpha > 0
        rows = hud_rows(result, fps, band_text, tinted, opts.timings, width - 2 * style.pad, style) if opts.hud else []
        hud = hud_size(rows, style) if rows else None
        inset = self._inset_geometry(result.depth, width, height, style)
        inset_size = None if inset is None else (inset[0], inset[1] + inset[2])
        self._corners = choose_corners(width, height, hud, inset_size, list(self._history), self._corners, style.pad)
        hud_corner, inset_corner = self._corners

        out = image.copy()
        if tinted:
            _tint_outside(out, image, result.mask, outline, opts)
        hud_rect, inset_rect = corner_rects(hud_corner, inset_corner, hud, inset_size, width, height, style.pad)
        if inset_rect is not None and result.depth is not None:
            self._draw_inset(out, result.depth, inset_rect, inset, inner, style)
        fixed = [r for r in (hud_rect, inset_rect) if r is not None]
        colours = box_colours(dets.xyxy, dets.class_id, dets.track_id, near_px=2 * style.px)
        for (x0, y0, x1, y1), colour in zip(np.rint(np.nan_to_num(dets.xyxy)).astype(int).tolist(), colours):
            cv2.rectangle(out, (x0, y0), (x1, y1), colour, style.line_px, cv2.LINE_8)
        if hud_rect is not None:
            draw_hud(out, rows, hud_rect, style, opts.tint_bgr)
        if len(dets):
            self._draw_labels(out, dets, outline, inner, colours, np.array(fixed).reshape(-1, 4), style)
        return out

    # -- depth inset ----------------------------------------------------------------------------

    def _inset_geometry(self, depth: DepthMap | None, width: int, height: int, style: TextStyle) -> tuple[int, int, int] | None:
        """(width, image height, legend height) of the inset, or None when it is not drawn."""
        opts = self.options
        if depth is None or opts.depth_inset is False or (opts.depth_inset == "auto" and min(height, width) < INSET_MIN_SIDE):
            return None
        dh, dw = depth.metres.shape
        if dh == 0 or dw == 0:
            return None
        iw = int(round(width * opts.inset_fraction))
        ih = int(round(iw * dh / dw))
        if ih > _INSET_MAX_HEIGHT * height:
            ih = int(_INSET_MAX_HEIGHT * height)
            iw = int(round(ih * dw / dh))
        if iw < 4 * style.px or ih < 2 * style.px:
            return None
        legend_h = max(3, style.px // 2) + style.px + style.text_size("0")[2] + 2 * style.pad
        return iw, ih, legend_h

    def _scale(self, depth: DepthMap, small: np.ndarray) -> tuple[float, float] | None:
        """The inset's range of metres: the source's own, else 0..the farthest seen so far (rounded up)."""
        if depth.valid_range_m is not None:
            return float(depth.valid_range_m[0]), float(depth.valid_range_m[1])
        valid = _valid(small)
        if valid.any():
            self._far_seen = max(self._far_seen, _nice_ceil(cv2.minMaxLoc(small, mask=valid)[1]))
        return (0.0, self._far_seen) if self._far_seen > 0 else None

    def _draw_inset(self, out: np.ndarray, depth: DepthMap, rect: np.ndarray, geometry: tuple[int, int, int],
                    inner: np.ndarray, style: TextStyle) -> None:
        iw, ih, legend_h = geometry
        x0, y0 = int(rect[0]), int(rect[1])
        small = cv2.resize(depth.metres, (iw, ih), interpolation=cv2.INTER_NEAREST)
        scale = self._scale(depth, small)
        colours = colorize_depth(small, *scale) if scale is not None else np.zeros((ih, iw, 3), np.uint8)
        roi = out[y0:y0 + ih, x0:x0 + iw]
        keep = np.full((ih, iw), 255, np.uint8)  # the boxes of this frame show through the inset
        for bx0, by0, bx1, by1 in inner.tolist():
            keep[max(0, by0 - y0):max(0, by1 - y0), max(0, bx0 - x0):max(0, bx1 - x0)] = 0
        cv2.copyTo(cv2.addWeighted(colours, _INSET_ALPHA, roi, 1.0 - _INSET_ALPHA, 0.0), keep, roi)
        cv2.rectangle(out, (x0, y0), (x0 + iw - 1, y0 + ih - 1), _BORDER_BGR, 1, cv2.LINE_8)

        # Legend: a colour bar over the same range (near on the left) and its metres under it.
        bar_h = max(3, style.px // 2)
        by = y0 + ih
        legend = out[by:by + legend_h, x0:x0 + iw]
        legend[:] = cv2.convertScaleAbs(legend, alpha=HUD_DIM)
        if scale is None:
            _put(out, "no depth", (x0 + style.pad, by + bar_h + style.pad + style.px), style)
            return
        near, far = scale
        out[by:by + bar_h, x0:x0 + iw] = _colour_bar(near, far, iw, bar_h)
        ty = by + bar_h + style.pad + style.px
        left, right = _fmt_m(near), f"{_fmt_m(far)} m"
        right_x = x0 + iw - style.pad - style.text_size(right)[0]
        _put(out, left, (x0 + style.pad, ty), style)
        _put(out, right, (right_x, ty), style)
        mid = _fmt_m((near + far) / 2)
        mid_w = style.text_size(mid)[0]
        mid_x = x0 + (iw - mid_w) // 2
        if x0 + 2 * style.pad + style.text_size(left)[0] < mid_x and mid_x + mid_w + style.pad < right_x:
            _put(out, mid, (mid_x, ty), style)

    # -- labels ---------------------------------------------------------------------------------

    def label_texts(self, dets: Detections) -> list[str]:
        """Each box's label, in the boxes' order: the one place a label's words come from. A tracked box
        shows its track's filtered distance between its id and its motion (``stream.track.display``)."""
        texts = []
        for i, (c, d, r, s) in enumerate(zip(dets.class_id, shown_depth(dets), dets.depth_reliable, dets.confidence)):
            prefix, suffix = track_affixes(dets, i)
            texts.append(prefix + label_text(_class_name(int(c), self.class_names), float(d), reliable=bool(r),
                                             confidence=float(s) if self.options.scores else None) + suffix)
        return texts

    def _draw_labels(self, out: np.ndarray, dets: Detections, outline: np.ndarray, inner: np.ndarray,
                     colours: list[tuple[int, int, int]], fixed: np.ndarray, style: TextStyle) -> None:
        height, width = out.shape[:2]
        texts = self.label_texts(dets)
        sizes = np.array([style.box_size(t) for t in texts], np.int64)
        # Nearest objects first (they matter most to whoever watches), then the surest; no depth last.
        shown = shown_depth(dets)
        depth = np.where(np.isfinite(shown), shown, np.inf)
        order = np.lexsort((-dets.confidence, depth))
        placement = place_labels(sizes, outline, inner, order, width=width, height=height, fixed=fixed,
                                 gap=style.gap, line_px=style.line_px)
        for i in np.nonzero(placement.leader)[0]:
            a, b = leader_line(placement.rects[i], outline[i])
            cv2.line(out, a, b, colours[i], max(1, style.line_px // 2), cv2.LINE_AA)
        for i, text in enumerate(texts):
            x0, y0, x1, y1 = (int(v) for v in placement.rects[i])
            fill = colours[i] if dets.depth_reliable[i] else _UNRELIABLE_BGR
            cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), fill, cv2.FILLED)
            if not dets.depth_reliable[i]:  # the object's colour stays on the label's edge
                cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), colours[i], max(1, style.line_px // 2), cv2.LINE_8)
            _put(out, text, (x0 + style.pad, y0 + style.pad + style.text_size(text)[1]), style, _text_colour(fill))


def draw(result: Result, class_names: Sequence[str], *, fps: float | None, band_text: str | None,
         options: OverlayConfig) -> np.ndarray:
    """Annotate one picture on its own (no recent frames to place the inset by)."""
    return Overlay(options, class_names, stills=True).draw(result, fps=fps, band_text=band_text)


# -- tint, text ------------------------------------------------------------------------------------


def _tint_outside(out: np.ndarray, image: np.ndarray, mask: np.ndarray, boxes: np.ndarray, options: OverlayConfig) -> None:
    if mask.shape != image.shape[:2]:
        raise ValueError(f"Result.mask has shape {mask.shape}, expected the frame's (H, W) = {image.shape[:2]}")
    alpha = float(options.tint_alpha)
    # image * (1 - alpha) + tint * alpha, as a scale then a per-channel scalar add (no full tint image).
    offset = tuple(float(c) * alpha for c in options.tint_bgr) + (0.0,)
    tinted = cv2.add(cv2.convertScaleAbs(image, alpha=1.0 - alpha), offset)
    outside = np.logical_not(mask).view(np.uint8)
    for x0, y0, x1, y1 in boxes.tolist():  # a box shown as found lies in the band
        outside[y0:y1, x0:x1] = 0
    cv2.copyTo(tinted, outside, out)


def _text_colour(bg_bgr: tuple[int, int, int]) -> tuple[int, int, int]:
    b, g, r = bg_bgr
    return (0, 0, 0) if 0.114 * b + 0.587 * g + 0.299 * r > 140 else (255, 255, 255)


def _put(out: np.ndarray, text: str, origin: tuple[int, int], style: TextStyle,
         colour: tuple[int, int, int] = _TEXT_BGR) -> None:
    cv2.putText(out, text, origin, FONT, style.scale, colour, style.thickness, cv2.LINE_AA)
