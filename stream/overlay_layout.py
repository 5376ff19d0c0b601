"""Where the overlay puts things, decided before anything is drawn.

- :class:`TextStyle`: text height, font scale and line widths for a frame's size (a 640x360 frame and a
  1080p one get text of the same share of the picture).
- :func:`box_colours`: one colour per box: per track when tracked, per class otherwise, in another shade
  where two boxes of a similar hue touch, so neighbours can be told apart.
- :func:`place_labels`: label rectangles in free space: never over another label, another object's box,
  the HUD or the inset while a free spot exists; at the box when there is room, else nearby with a leader.
- :func:`choose_corners`: the corners for the HUD and the depth inset that cover the fewest boxes of
  recent frames, kept until another pair is clearly better (no flicker).

Rectangles are ``(x0, y0, x1, y1)`` integer pixels, half-open (x1, y1 excluded), as numpy rows.
Pure geometry on numpy arrays; nothing here draws.
"""

from __future__ import annotations

import colorsys
import functools
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
_AG_PX_AT_SCALE_1 = cv2.getTextSize("Ag", FONT, 1.0, 1)[0][1]

TEXT_SHARE = 0.022  # text height / the frame's shorter side: 13 px at 576 rows, 24 px at 1080
MIN_TEXT_PX = 9     # below this Hershey text stops being readable
MAX_TEXT_PX = 40
INNER_SHRINK = 0.15  # a box's inner area (the object, not its outline or the label at its edge): 15 % in per side

CORNERS = ("tl", "tr", "bl", "br")
HUD_PREFERENCE = ("tl", "tr", "bl", "br")    # on a tie, the HUD reads from the top left ...
INSET_PREFERENCE = ("tr", "br", "tl", "bl")  # ... and the inset sits on the other side
HISTORY_FRAMES = 30  # "recent frames" for the corner choice: 1 s at 30 fps, 3 s of the 10 fps demo
SWITCH_MARGIN = 0.25  # move the HUD / inset only when the best corners cover this share fewer boxes ...
SWITCH_MIN = 2        # ... and at least this many fewer (summed over the recent frames)


@dataclass(frozen=True)
class TextStyle:
    """Sizes for one frame size. px: height of a line of text ("Ag") in pixels; scale: the OpenCV font
    scale that gives it; thickness: text stroke; pad: space around text in labels and the HUD; line_px:
    box outline width; gap: free pixels kept between a label and another object's box."""

    px: int
    scale: float
    thickness: int
    pad: int
    line_px: int
    gap: int

    @classmethod
    def for_frame(cls, height: int, width: int) -> "TextStyle":
        base = min(height, width)
        px = int(np.clip(round(base * TEXT_SHARE), MIN_TEXT_PX, MAX_TEXT_PX))
        return cls(px=px, scale=px / _AG_PX_AT_SCALE_1, thickness=1 if px < 20 else 2, pad=max(2, px // 5),
                   line_px=max(1, round(base / 360)), gap=max(2, px // 6))

    def text_size(self, text: str) -> tuple[int, int, int]:
        """(width, height above the baseline, baseline) of ``text`` in pixels."""
        (w, h), base = cv2.getTextSize(text, FONT, self.scale, self.thickness)
        return w, h, base

    def box_size(self, text: str) -> tuple[int, int]:
        """(width, height) of a filled label holding ``text``."""
        w, h, base = self.text_size(text)
        return w + 2 * self.pad, h + base + 2 * self.pad


# -- colours ------------------------------------------------------------------------------------

_GOLDEN = 0.618033988749895
# (saturation, value) shades of one hue, in the order neighbours of a similar hue get them.
SHADES = ((0.85, 0.95), (0.40, 1.00), (1.00, 0.60))
_NEAR_HUE = 0.12  # hues closer than this (of the colour circle) look alike side by side


def class_hue(class_id: int) -> float:
    """Hue of a class (0..1): the golden-ratio sequence, so consecutive ids are far apart."""
    return (int(class_id) * _GOLDEN + 0.1) % 1.0


def track_hue(track_id: int) -> float:
    return (int(track_id) * _GOLDEN + 0.37) % 1.0


@functools.lru_cache(maxsize=4096)
def hue_colour(hue: float, shade: int = 0) -> tuple[int, int, int]:
    """(B, G, R) 0..255 of ``hue`` in shade ``shade`` (an index into :data:`SHADES`)."""
    s, v = SHADES[shade % len(SHADES)]
    r, g, b = colorsys.hsv_to_rgb(hue, s, v)
    return (round(b * 255), round(g * 255), round(r * 255))


def box_colours(xyxy: np.ndarray, class_id: np.ndarray, track_id: np.ndarray, near_px: float) -> list[tuple[int, int, int]]:
    """One (B, G, R) per box: the track's hue when ``track_id >= 0``, else the class's; a box whose rectangle
    comes within ``near_px`` of a box of a similar hue takes the first shade none of those uses."""
    hues = [track_hue(t) if t >= 0 else class_hue(c) for c, t in zip(class_id.tolist(), track_id.tolist())]
    grown = (np.asarray(xyxy, np.float64).reshape(-1, 4) + [-near_px, -near_px, near_px, near_px]).tolist()
    shades: dict[int, int] = {}
    for i in sorted(range(len(hues)), key=lambda j: grown[j][0]):
        x0, y0, x1, y1 = grown[i]
        used = [0] * len(SHADES)
        for j, s in shades.items():
            dh = abs(hues[i] - hues[j])
            if min(dh, 1.0 - dh) < _NEAR_HUE and x0 <= grown[j][2] and grown[j][0] <= x1 and y0 <= grown[j][3] and grown[j][1] <= y1:
                used[s] += 1
        shades[i] = used.index(min(used))  # the first shade no alike neighbour has, else the least used
    return [hue_colour(h, shades[i]) for i, h in enumerate(hues)]


# -- rectangles ---------------------------------------------------------------------------------


def box_rects(xyxy: np.ndarray, line_px: int, width: int, height: int) -> np.ndarray:
    """(N, 4) int64: the pixels each box's outline covers (``cv2.rectangle`` from (x1, y1) to (x2, y2) with
    ``line_px`` thickness), clipped to the frame. NaN coordinates count as 0."""
    b = np.rint(np.nan_to_num(np.asarray(xyxy, np.float64).reshape(-1, 4)))
    half = line_px // 2
    out = np.stack([b[:, 0] - half, b[:, 1] - half, b[:, 2] + line_px - half, b[:, 3] + line_px - half], axis=1)
    return np.clip(out, 0, [width, height, width, height]).astype(np.int64)


def inner_rects(xyxy: np.ndarray, width: int, height: int, shrink: float = INNER_SHRINK) -> np.ndarray:
    """(N, 4) int64: each box shrunk by ``shrink`` of its size on every side, clipped to the frame."""
    b = np.nan_to_num(np.asarray(xyxy, np.float64).reshape(-1, 4))
    dx, dy = (b[:, 2] - b[:, 0]) * shrink, (b[:, 3] - b[:, 1]) * shrink
    out = np.stack([np.ceil(b[:, 0] + dx), np.ceil(b[:, 1] + dy), np.floor(b[:, 2] - dx) + 1, np.floor(b[:, 3] - dy) + 1], axis=1)
    return np.clip(out, 0, [width, height, width, height]).astype(np.int64)


def overlap_area(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) pixels shared by each rectangle of ``a`` with each of ``b``."""
    a = np.asarray(a).reshape(-1, 4)
    b = np.asarray(b).reshape(-1, 4)
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    return np.maximum(w, 0) * np.maximum(h, 0)


def gap_between(a: np.ndarray, box: np.ndarray) -> np.ndarray:
    """(len(a),) pixels between each rectangle of ``a`` and the rectangle ``box`` (0 when they touch or overlap)."""
    a = np.asarray(a).reshape(-1, 4)
    dx = np.maximum(0, np.maximum(box[0] - a[:, 2], a[:, 0] - box[2]))
    dy = np.maximum(0, np.maximum(box[1] - a[:, 3], a[:, 1] - box[3]))
    return np.hypot(dx, dy)


# -- labels -------------------------------------------------------------------------------------

# What a label may cover, as a cost per pixel: a free spot (cost 0) always wins, and where none is left
# the label covers what matters least. Another label: never, unless there is no other way.
COST_LABEL = 100.0   # another label, already placed
COST_FIXED = 50.0    # the HUD, the depth inset
COST_BOX = 10.0      # another object's box (its outline and the `gap` around it) ...
COST_INNER = 10.0    # ... and any box's inner area, the object itself (its own included) on top
COST_OWN = 1.0       # the label's own box outline (a label inside its box's top edge)
COST_FAR = 0.05      # per pixel between a label and its box: the nearest free spot wins ...
COST_LEADER = 1.0    # ... and sitting at the box beats any spot that needs a leader line
LEADER_ROWS = 5      # free spots are searched up to this many label heights above and below the box


@dataclass(frozen=True)
class Placement:
    """rects: (N, 4) int64 label rectangles, in the boxes' order; leader: (N,) bool, True where the
    label is away from its box (draw a leader line)."""

    rects: np.ndarray
    leader: np.ndarray


def _at_boxes(boxes: np.ndarray, sizes: np.ndarray, width: int, height: int) -> np.ndarray:
    """(N, 8, 4): for each box (outline rectangle) the spots of its w x h label that touch it, in the order
    a reader looks for a label: above (left-aligned, right-aligned), below, beside; moved inside the frame."""
    x0, y0, x1, y1 = (boxes[:, j:j + 1] for j in range(4))
    w, h = sizes[:, 0:1], sizes[:, 1:2]
    xs = np.concatenate([x0, x1 - w, x0, x1 - w, x1, x0 - w, x1, x0 - w], axis=1)
    ys = np.concatenate([y0 - h, y0 - h, y1, y1, y0, y0, y1 - h, y1 - h], axis=1)
    xs = np.clip(xs, 0, np.maximum(0, width - w))
    ys = np.clip(ys, 0, np.maximum(0, height - h))
    return np.stack([xs, ys, xs + w, ys + h], axis=2)


def _around(box: np.ndarray, w: int, h: int, gap: int, line_px: int) -> np.ndarray:
    """Top-left corners of free spots to search around ``box`` when none touching it is free: a grid
    reaching LEADER_ROWS label heights above and below it and a few label widths to its sides, and last
    inside the box's own top edge."""
    x0, y0, x1, y1 = (int(v) for v in box)
    sy, sx = h + gap, max(1, w // 2)
    ys = np.concatenate([y0 - h - sy * np.arange(1, LEADER_ROWS + 1), y1 + sy * np.arange(1, LEADER_ROWS + 1),
                         y0 + sy * np.arange(0, max(1, (y1 - y0) // sy + 1))])
    xs = np.concatenate([x0 + sx * np.arange(-4, 5), [x1 - w], x1 + gap + sx * np.arange(0, 3),
                         x0 - w - gap - sx * np.arange(0, 3)])
    grid = np.stack([np.repeat(xs, len(ys)), np.tile(ys, len(xs))], axis=1)
    return np.concatenate([grid, [(x0 + line_px, y0 + line_px)]]).astype(np.int64)


def _rects(xy: np.ndarray, w: int, h: int, width: int, height: int) -> np.ndarray:
    """w x h rectangles at the top-left corners ``xy``, moved inside the frame."""
    x = np.clip(xy[:, 0], 0, max(0, width - w))
    y = np.clip(xy[:, 1], 0, max(0, height - h))
    return np.stack([x, y, x + w, y + h], axis=1)


def place_labels(sizes: np.ndarray, boxes: np.ndarray, inner: np.ndarray, order: Sequence[int], *,
                 width: int, height: int, fixed: np.ndarray | None = None, gap: int = 2,
                 line_px: int = 1) -> Placement:
    """Place one label per box, greedily in ``order`` (the first gets the best spot).

    sizes: (N, 2) label (width, height); boxes: (N, 4) outline rectangles (:func:`box_rects`); inner: (N, 4)
    inner areas (:func:`inner_rects`); fixed: (K, 4) areas no label should cover (HUD, inset); gap: free
    pixels kept around other boxes and labels. Each label takes its cheapest spot (costs above): a spot
    that covers no other label, no box and nothing fixed wins whenever one exists within reach.
    """
    n = len(boxes)
    boxes = np.asarray(boxes, np.int64).reshape(-1, 4)
    sizes = np.asarray(sizes, np.int64).reshape(-1, 2)
    fixed = np.zeros((0, 4), np.int64) if fixed is None else np.asarray(fixed, np.int64).reshape(-1, 4)
    rects = np.zeros((n, 4), np.int64)
    leader = np.zeros(n, bool)
    if n == 0:
        return Placement(rects, leader)
    grown = boxes + [-gap, -gap, gap, gap]
    # Everything a label may cover, one rectangle per row, with its cost per pixel (labels join as placed).
    static = np.concatenate([grown, np.asarray(inner, np.int64).reshape(-1, 4), fixed])
    static_w = np.concatenate([np.full(n, COST_BOX), np.full(n, COST_INNER), np.full(len(fixed), COST_FIXED)])

    # The spots touching each box, all boxes at once: what they cover of boxes, inner areas and fixed
    # areas (a label's own box: only its outline, at COST_OWN). Placed labels are checked in the loop.
    k = 8
    at = _at_boxes(boxes, sizes, width, height).reshape(n * k, 4)
    owner = np.repeat(np.arange(n), k)
    cost = overlap_area(at, static) @ static_w
    own_grown = _pairwise(at, grown[owner])
    cost += COST_OWN * _pairwise(at, boxes[owner]) - COST_BOX * own_grown
    cost = cost.reshape(n, k)
    at_list = at.tolist()

    placed: list[tuple[int, int, int, int]] = []
    for i in order:
        free = next((j for j in np.nonzero(cost[i] <= 0)[0] if not _meets(at_list[i * k + j], placed)), None)
        if free is not None:
            rects[i] = at[i * k + free]
        else:  # no free spot at the box: search around it, everything weighed
            w, h = (int(v) for v in sizes[i])
            cand = np.concatenate([at[i * k:(i + 1) * k], _rects(_around(boxes[i], w, h, gap, line_px), w, h, width, height)])
            obs, wts = static.copy(), static_w.copy()
            obs[i], wts[i] = boxes[i], COST_OWN
            if placed:
                obs = np.concatenate([obs, np.array(placed) + [-1, -1, 1, 1]])
                wts = np.concatenate([wts, np.full(len(placed), COST_LABEL)])
            far = gap_between(cand, boxes[i])
            best = int(np.argmin(overlap_area(cand, obs) @ wts + COST_FAR * far + COST_LEADER * (far > 0)))
            rects[i] = cand[best]
            leader[i] = far[best] > 0
        placed.append(tuple(rects[i].tolist()))
    return Placement(rects, leader)


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pixels shared by a[j] and b[j], row by row."""
    w = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0])
    h = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
    return np.maximum(w, 0) * np.maximum(h, 0)


def _meets(rect: list[int], placed: list[tuple[int, int, int, int]]) -> bool:
    """Does ``rect`` come within 1 pixel of any placed label?"""
    x0, y0, x1, y1 = rect
    return any(x0 < px1 + 1 and px0 - 1 < x1 and y0 < py1 + 1 and py0 - 1 < y1 for px0, py0, px1, py1 in placed)


def leader_line(label: np.ndarray, box: np.ndarray) -> tuple[tuple[int, int], tuple[int, int]]:
    """The shortest segment from a label rectangle to its box's outline rectangle (both half-open)."""
    def span(a0, a1, b0, b1):  # (point on a, point on b) along one axis
        if a1 <= b0:
            return a1 - 1, b0
        if b1 <= a0:
            return a0, b1 - 1
        mid = (max(a0, b0) + min(a1, b1) - 1) // 2
        return mid, mid

    (lx, bx), (ly, by) = span(label[0], label[2], box[0], box[2]), span(label[1], label[3], box[1], box[3])
    return (int(lx), int(ly)), (int(bx), int(by))


# -- corners for the HUD and the inset ----------------------------------------------------------


def corner_rect(corner: str, w: int, h: int, width: int, height: int, margin: int = 0, below: int = 0) -> np.ndarray:
    """A w x h rectangle in ``corner`` (tl, tr, bl, br), ``margin`` pixels from the frame's edges and
    ``below`` pixels further from the top or bottom edge (to sit beside the HUD in the same corner)."""
    x0 = margin if corner[1] == "l" else width - margin - w
    y0 = margin + below if corner[0] == "t" else height - margin - below - h
    return np.array([x0, y0, x0 + w, y0 + h], np.int64)


def corner_rects(hud_corner: str | None, inset_corner: str | None, hud: tuple[int, int] | None,
                 inset: tuple[int, int] | None, width: int, height: int, margin: int = 0) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The HUD's (w, h) rectangle at the frame's edge in ``hud_corner`` and the inset's (w, h) ``margin``
    pixels in from ``inset_corner``; an inset that would meet the HUD (same corner, or the same edge with
    no room between them) sits beside it, further from that edge."""
    hud_rect = None if hud_corner is None or hud is None else corner_rect(hud_corner, hud[0], hud[1], width, height)
    if inset_corner is None or inset is None:
        return hud_rect, None
    inset_rect = corner_rect(inset_corner, inset[0], inset[1], width, height, margin)
    if hud_rect is not None and hud_corner[0] == inset_corner[0] and overlap_area(hud_rect, inset_rect)[0, 0] > 0:
        inset_rect = corner_rect(inset_corner, inset[0], inset[1], width, height, margin, hud[1])
    return hud_rect, inset_rect


def choose_corners(width: int, height: int, hud: tuple[int, int] | None, inset: tuple[int, int] | None,
                   history: Sequence[np.ndarray], current: tuple[str | None, str | None] | None = None,
                   margin: int = 0) -> tuple[str | None, str | None]:
    """The corners (tl, tr, bl, br; None for what is not drawn) for the HUD (w, h) at the frame's edge and
    the inset (w, h) ``margin`` pixels in: the pair whose rectangles meet the fewest inner areas of the
    boxes in ``history`` (one (M, 4) array per recent frame), the preferred pair on a tie. ``current``
    stays unless the best covers at least SWITCH_MIN and SWITCH_MARGIN fewer boxes. An inset that would
    meet the HUD sits beside it (:func:`corner_rects`); one that does not fit in the frame is not drawn."""
    boxes = np.concatenate([np.asarray(h, np.int64).reshape(-1, 4) for h in history]) if history else np.zeros((0, 4), np.int64)
    hud_corners = HUD_PREFERENCE if hud is not None else (None,)
    inset_corners = INSET_PREFERENCE if inset is not None else (None,)
    fits = inset is None or (inset[0] + 2 * margin <= width and inset[1] + 2 * margin + (hud[1] if hud else 0) <= height)
    if not fits:
        inset_corners = (None,)
    pairs = [(hc, ic) for hc in hud_corners for ic in inset_corners]
    rects, owner = [], []
    for p, (hc, ic) in enumerate(pairs):
        for rect in corner_rects(hc, ic, hud, inset, width, height, margin):
            if rect is not None:
                rects.append(rect)
                owner.append(p)
    met = np.zeros(len(pairs), np.int64)
    if rects and len(boxes):
        np.add.at(met, owner, (overlap_area(np.array(rects), boxes) > 0).sum(1))
    costs = {pair: int(c) for pair, c in zip(pairs, met)}
    best = min(costs, key=lambda k: costs[k])  # dicts keep insertion order: the preferred pair on a tie
    if current in costs and costs[current] - costs[best] < max(SWITCH_MIN, SWITCH_MARGIN * costs[current]):
        return current
    return best
