"""Detector adapters: which YOLO-family output layout an ONNX model has, how to feed it, how to decode it.

Layouts (the one output tensor, batch 1; C classes, G = grid cells of strides 8, 16, 32 at the input size):

============  ==============  ==================================================================  =========
layout        output          rows                                                                NMS
============  ==============  ==================================================================  =========
yolox         [1, G, 5+C]     dx, dy, log w, log h (grid units), objectness, C class scores       class-aware
ultralytics   [1, 4+C, G]     cx, cy, w, h (input pixels), C class scores -- no objectness          class-aware
yolov5        [1, 3G, 5+C]    cx, cy, w, h (input pixels), objectness, C class scores (v5, v7)    class-aware
end2end       [1, K, 6]       x1, y1, x2, y2 (input pixels), score, class id (YOLO26, YOLOv10)    none
============  ==============  ==================================================================  =========

Scores are probabilities already (sigmoid applied in the graph), as every one of these exporters writes
them. Score = objectness x class score where there is an objectness column, else the class score.

Preprocessing per family (a sidecar can override each item):

- YOLOX: **BGR**, 0..255 (scale 1), letterbox at the **top-left**, pad 114 (YOLOX's own demo).
- Ultralytics (ultralytics, yolov5, end2end): **RGB**, /255, letterbox **centred** (``LetterBox(center=True)``:
  padding split in two with ``round(d / 2 -+ 0.1)``), pad 114.

The layout comes from the sidecar (``model.yaml`` beside ``model.onnx``, written by ``python -m export
detector``; its keys and their validation are in :mod:`depthstream.schema.sidecar`) or, without one, from
the output shape as in the table. A model matching none is a :class:`~depthstream.errors.EngineError`
naming the shapes found. Class names come from the sidecar; without one, a model with 80 classes gets the
COCO names and any other gets ``class0``, ``class1``, ...
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import cv2
import numpy as np

from depthstream.coco import COCO_CLASSES
from depthstream.schema.sidecar import DetectorCard

STRIDES = (8, 16, 32)
PAD_VALUE = 114


@dataclass(frozen=True)
class Preprocess:
    """How a frame becomes the network input: channel order, pixel scale, letterbox placement, pad value."""

    colour: str
    scale: float
    letterbox: str
    pad: int = PAD_VALUE


YOLOX_PREPROCESS = Preprocess("bgr", 1.0, "top-left")
ULTRALYTICS_PREPROCESS = Preprocess("rgb", 1.0 / 255.0, "centre")
FAMILY_PREPROCESS = {"yolox": YOLOX_PREPROCESS, "ultralytics": ULTRALYTICS_PREPROCESS,
                     "yolov5": ULTRALYTICS_PREPROCESS, "end2end": ULTRALYTICS_PREPROCESS}


def preprocess_for(card: DetectorCard) -> Preprocess:
    """The family's preprocessing with what the sidecar sets instead."""
    changes = {k: getattr(card, k) for k in ("colour", "scale", "letterbox", "pad") if getattr(card, k) is not None}
    return replace(FAMILY_PREPROCESS[card.layout], **changes)


# -- the layout from the output shape --------------------------------------------------------------


def grid_cells(size: tuple[int, int], strides: Sequence[int] = STRIDES) -> int:
    """Cells of the stride-8/16/32 grids at input ``size`` (one prediction per cell: YOLOX, Ultralytics)."""
    return sum((size[0] // s) * (size[1] // s) for s in strides)


@dataclass(frozen=True)
class LayoutInfo:
    layout: str
    num_classes: int | None  # None: not given by the shape (end2end)


def describe_layouts(size: tuple[int, int]) -> str:
    g = grid_cells(size)
    return (f"YOLOX [1, {g}, 5+C], Ultralytics v8/11/26 [1, 4+C, {g}], YOLOv5/v7 [1, {3 * g}, 5+C] or "
            f"end-to-end YOLO26/v10 [1, K, 6]")


def infer_layout(shape: Sequence[int | None], size: tuple[int, int]) -> LayoutInfo | None:
    """The layout an output of ``shape`` has at input ``size``, or None when it matches none."""
    if len(shape) != 3 or shape[0] not in (1, None) or shape[1] is None or shape[2] is None:
        return None
    a, b = int(shape[1]), int(shape[2])
    g = grid_cells(size)
    if b == g and a > 4:
        return LayoutInfo("ultralytics", a - 4)
    if a == g and b > 5:
        return LayoutInfo("yolox", b - 5)
    if a == 3 * g and b > 5:
        return LayoutInfo("yolov5", b - 5)
    if b == 6:
        return LayoutInfo("end2end", None)
    return None


def classes_in(layout: str, shape: Sequence[int | None]) -> int | None:
    """Classes a ``layout`` output of ``shape`` holds (None when the shape does not say)."""
    if layout == "end2end" or len(shape) != 3:
        return None
    n = shape[1] if layout == "ultralytics" else shape[2]
    if n is None:
        return None
    return int(n) - (4 if layout == "ultralytics" else 5)


def check_layout_shape(layout: str, shape: Sequence[int | None]) -> str | None:
    """Why an output of ``shape`` cannot have ``layout`` (None when it can)."""
    if len(shape) != 3:
        return f"a {layout} output has 3 dimensions"
    if layout == "end2end" and shape[2] not in (6, None):
        return "an end2end output is [1, K, 6]"
    if layout == "ultralytics" and shape[1] is not None and shape[1] < 5:
        return "an ultralytics output is [1, 4+C, N] with C >= 1"
    if layout in ("yolox", "yolov5") and shape[2] is not None and shape[2] < 6:
        return f"a {layout} output is [1, N, 5+C] with C >= 1"
    return None


def default_names(num_classes: int | None) -> tuple[str, ...]:
    """COCO's names for 80 classes (or an unknown count), ``class0``... otherwise."""
    if num_classes is None or num_classes == len(COCO_CLASSES):
        return tuple(COCO_CLASSES)
    return tuple(f"class{i}" for i in range(num_classes))


# -- preprocessing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Geometry:
    """Input pixel = frame pixel x gain + pad (per axis)."""

    gain_x: float
    gain_y: float
    pad_x: float
    pad_y: float

    def to_frame(self, boxes: np.ndarray, width: int, height: int) -> np.ndarray:
        """(N, 4) xyxy in input pixels -> frame pixels, clipped to the frame."""
        out = (boxes - np.array([self.pad_x, self.pad_y, self.pad_x, self.pad_y], np.float32)) / np.array(
            [self.gain_x, self.gain_y, self.gain_x, self.gain_y], np.float32)
        np.clip(out[:, 0::2], 0, width, out=out[:, 0::2])
        np.clip(out[:, 1::2], 0, height, out=out[:, 1::2])
        return out.astype(np.float32, copy=False)


def letterbox_image(image: np.ndarray, size: tuple[int, int], placement: str, pad: int = PAD_VALUE
                    ) -> tuple[np.ndarray, Geometry]:
    """BGR uint8 (H, W, 3) -> (h, w, 3) uint8 canvas of ``size`` and its :class:`Geometry`.

    ``top-left`` (YOLOX): scale r = min(h/H, w/W), image at (0, 0), boxes divide by r.
    ``centre`` (Ultralytics ``LetterBox``): each side rounded separately, padding split in two with
    ``round(d/2 - 0.1)`` before and ``round(d/2 + 0.1)`` after; gains are new size / old size per axis.
    """
    h_in, w_in = size
    h, w = image.shape[:2]
    r = min(h_in / h, w_in / w)
    nh, nw = max(1, int(round(h * r))), max(1, int(round(w * r)))
    canvas = np.full((h_in, w_in, 3), pad, dtype=np.uint8)
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR) if (nh, nw) != (h, w) else image
    if placement == "top-left":
        canvas[:nh, :nw] = resized
        return canvas, Geometry(r, r, 0.0, 0.0)
    top = int(round((h_in - nh) / 2 - 0.1))
    left = int(round((w_in - nw) / 2 - 0.1))
    canvas[top:top + nh, left:left + nw] = resized
    return canvas, Geometry(nw / w, nh / h, float(left), float(top))


def to_blob(canvas: np.ndarray, pre: Preprocess, dtype=np.float32) -> np.ndarray:
    """(h, w, 3) uint8 BGR canvas -> (1, 3, h, w) C-contiguous, in the network's colour order, scale and dtype.

    One pass: the pixels are cast, channel-first, straight into the new array (``astype`` of the transposed
    view would keep its channel-last strides and need a second copy to become contiguous: 4 times slower at
    416x416). The scale is applied in float32, then cast, whatever ``dtype`` is.
    """
    pixels = canvas[..., ::-1] if pre.colour == "rgb" else canvas
    work = np.dtype(np.float32) if pre.scale != 1.0 else np.dtype(dtype)
    blob = np.empty((1, 3, *canvas.shape[:2]), dtype=work)
    np.copyto(blob[0], pixels.transpose(2, 0, 1), casting="unsafe")
    if pre.scale != 1.0:
        blob *= np.float32(pre.scale)
    return blob if work == np.dtype(dtype) else blob.astype(dtype)


# -- decoders: raw output (batch removed) -> xyxy in input pixels, scores, class ids ----------------------


def _xywh_to_xyxy(xywh: np.ndarray) -> np.ndarray:
    half = xywh[:, 2:4] / 2
    return np.concatenate([xywh[:, 0:2] - half, xywh[:, 0:2] + half], axis=1).astype(np.float32)


def decode_ultralytics(raw: np.ndarray, conf: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(4 + C, N): cx, cy, w, h in input pixels then C class scores; score = best class score."""
    cls_scores = raw[4:]
    class_id = cls_scores.argmax(axis=0)
    score = cls_scores[class_id, np.arange(raw.shape[1])]
    keep = score >= conf
    boxes = _xywh_to_xyxy(raw[:4, keep].T)
    return boxes, score[keep].astype(np.float32), class_id[keep].astype(np.int32)


def decode_yolov5(raw: np.ndarray, conf: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, 5 + C): cx, cy, w, h in input pixels, objectness, C class scores; score = obj x best class score."""
    cls_scores = raw[:, 5:]
    class_id = cls_scores.argmax(axis=1)
    score = raw[:, 4] * cls_scores[np.arange(len(raw)), class_id]
    keep = score >= conf
    return _xywh_to_xyxy(raw[keep, :4]), score[keep].astype(np.float32), class_id[keep].astype(np.int32)


def decode_end2end(raw: np.ndarray, conf: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(K, 6): x1, y1, x2, y2 in input pixels, score, class id; already one box per object (no NMS)."""
    keep = raw[:, 4] >= conf
    rows = raw[keep]
    return rows[:, :4].astype(np.float32), rows[:, 4].astype(np.float32), np.rint(rows[:, 5]).astype(np.int32)
