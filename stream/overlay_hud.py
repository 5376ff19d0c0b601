"""The HUD: one compact strip of text at the frame's edge (FPS, depth source and its state, the band and a
swatch of the tint, per-stage milliseconds when asked), laid out in rows that fit the frame's width.

Rows are lists of items; an item that starts with :data:`SWATCH` is drawn after a square of the tint's
colour. Sizes come from the frame's :class:`~stream.overlay_layout.TextStyle`.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from depthstream.types import Result

from .overlay_layout import FONT, TextStyle

SWATCH = "\x00"
HUD_DIM = 0.35  # the picture under the HUD keeps this much of its brightness
_TEXT_BGR = (255, 255, 255)
_BORDER_BGR = (255, 255, 255)


def hud_rows(result: Result, fps: float | None, band_text: str | None, tinted: bool, timings: bool,
             max_w: int, style: TextStyle) -> list[list[str]]:
    """The HUD's rows of items, each row at most ``max_w`` pixels wide (items broken where they must)."""
    items: list[str] = []
    if fps is not None and math.isfinite(fps):
        items.append(f"{fps:.1f} fps")
    d = result.depth
    items.append("no depth" if d is None else f"depth: {d.source}, {d.state}" if d.state else f"depth: {d.source} ({d.kind})")
    if band_text:
        items.append(f"band: {band_text}")
    if tinted:
        items.append(f"{SWATCH}outside the band")
    rows = _flow(items, max_w, style)
    if timings and result.timings_ms:
        rows += _flow(["ms:"] + [f"{stage} {ms:.1f}" for stage, ms in result.timings_ms.items()], max_w, style)
    return rows


def hud_size(rows: list[list[str]], style: TextStyle) -> tuple[int, int]:
    """(width, height) of the strip holding ``rows``."""
    widths = [sum(_item_width(i, style) for i in row) + style.px * (len(row) - 1) for row in rows]
    return max(widths) + 2 * style.pad, len(rows) * _row_height(style) + style.pad


def draw_hud(out: np.ndarray, rows: list[list[str]], rect: np.ndarray, style: TextStyle,
             tint_bgr: tuple[int, ...]) -> None:
    """Dim the picture under ``rect`` and write ``rows`` on it."""
    height, width = out.shape[:2]
    x0, y0, x1, y1 = (int(v) for v in np.clip(rect, 0, [width, height, width, height]))
    if x1 <= x0 or y1 <= y0:
        return
    roi = out[y0:y1, x0:x1]
    roi[:] = cv2.convertScaleAbs(roi, alpha=HUD_DIM)
    swatch = tuple(int(c) for c in tint_bgr)
    for r, row in enumerate(rows):
        baseline = y0 + style.pad + style.px + r * _row_height(style)
        x = x0 + style.pad
        for item in row:
            if item.startswith(SWATCH):
                cv2.rectangle(out, (x, baseline - style.px), (x + style.px - 1, baseline - 1), swatch, cv2.FILLED)
                cv2.rectangle(out, (x, baseline - style.px), (x + style.px - 1, baseline - 1), _BORDER_BGR, 1)
                _put(out, item[1:], (x + style.px + style.pad, baseline), style)
            else:
                _put(out, item, (x, baseline), style)
            x += _item_width(item, style) + style.px


def _put(out: np.ndarray, text: str, origin: tuple[int, int], style: TextStyle) -> None:
    cv2.putText(out, text, origin, FONT, style.scale, _TEXT_BGR, style.thickness, cv2.LINE_AA)

def _item_width(item: str, style: TextStyle) -> int:
    if item.startswith(SWATCH):
        return style.px + style.pad + style.text_size(item[1:])[0]
    return style.text_size(item)[0]


def _flow(items: list[str], max_w: int, style: TextStyle) -> list[list[str]]:
    """Items in rows of at most ``max_w`` pixels, one text height apart; an item too wide alone is broken
    between its words, a word too wide alone between its characters."""
    pieces: list[str] = []
    for item in items:
        if _item_width(item, style) <= max_w:
            pieces.append(item)
            continue
        current = ""
        for ch_word in item.split(" "):
            for part in _break(ch_word, max_w, style):
                candidate = f"{current} {part}" if current else part
                if current and _item_width(candidate, style) > max_w:
                    pieces.append(current)
                    current = part
                else:
                    current = candidate
        if current:
            pieces.append(current)
    rows: list[list[str]] = []
    width = 0
    for piece in pieces:
        w = _item_width(piece, style)
        if rows and width + style.px + w <= max_w:
            rows[-1].append(piece)
            width += style.px + w
        else:
            rows.append([piece])
            width = w
    return rows


def _break(word: str, max_w: int, style: TextStyle) -> list[str]:
    if _item_width(word, style) <= max_w:
        return [word]
    chunks, current = [], ""
    for ch in word:
        if current and _item_width(current + ch, style) > max_w:
            chunks.append(current)
            current = ch
        else:
            current += ch
    return chunks + ([current] if current else [])


def _row_height(style: TextStyle) -> int:
    return style.px + style.text_size("Ag")[2] + style.pad
