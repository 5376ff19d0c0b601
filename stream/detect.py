"""YOLOX detector: letterbox, decode, class-aware NMS.

The shipped model is YOLOX-Nano (COCO, Apache-2.0) exported with YOLOX's own tool:
input ``images`` float32 [1, 3, 416, 416], **BGR**, values 0..255 (no /255, no mean/std); the frame is
resized by r = min(416 / h, 416 / w), placed at the **top-left** and padded with 114.
Output ``output`` float32 [1, 3549, 85], not decoded: rows are the 52x52 (stride 8), 26x26 (stride 16)
and 13x13 (stride 32) grids, each row-major (y then x); a row is ``dx, dy, log_w, log_h, obj, 80 class
scores`` with sigmoid already applied to obj and class scores.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from engines.backends import EngineOptions, create_engine
from engines.base import Engine

from .coco import COCO_CLASSES
from .errors import ConfigError, EngineError
from .models import verify_shipped
from .types import Detections

PAD_VALUE = 114
STRIDES = (8, 16, 32)


def letterbox(image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """BGR uint8 (H, W, 3) -> float32 (1, 3, h, w) BGR 0..255, image at the top-left, pad 114.

    Returns the blob and the scale r applied to the image (boxes in the input divide by r).
    """
    h_in, w_in = size
    h, w = image.shape[:2]
    r = min(h_in / h, w_in / w)
    nh, nw = max(1, int(round(h * r))), max(1, int(round(w * r)))
    canvas = np.full((h_in, w_in, 3), PAD_VALUE, dtype=np.uint8)
    interp = cv2.INTER_LINEAR if r != 1 else cv2.INTER_NEAREST
    canvas[:nh, :nw] = cv2.resize(image, (nw, nh), interpolation=interp) if (nh, nw) != (h, w) else image
    blob = canvas.transpose(2, 0, 1)[None].astype(np.float32)
    return np.ascontiguousarray(blob), r


def yolox_grids(size: tuple[int, int], strides: Sequence[int] = STRIDES) -> tuple[np.ndarray, np.ndarray]:
    """Grid cell (x, y) per output row and each row's stride, in YOLOX's output order."""
    h_in, w_in = size
    cells, row_strides = [], []
    for s in strides:
        gy, gx = np.meshgrid(np.arange(h_in // s), np.arange(w_in // s), indexing="ij")
        cells.append(np.stack([gx.ravel(), gy.ravel()], axis=1))
        row_strides.append(np.full(gx.size, s))
    return np.concatenate(cells).astype(np.float32), np.concatenate(row_strides).astype(np.float32)[:, None]


def decode_yolox(raw: np.ndarray, grids: np.ndarray, strides: np.ndarray, conf: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw (N, 5 + C) rows -> boxes xyxy (input pixels), scores and class ids of rows scoring >= conf.

    score = objectness x best class score (the class with the highest score per row).
    """
    obj = raw[:, 4]
    cls_scores = raw[:, 5:]
    class_id = cls_scores.argmax(axis=1)
    score = obj * cls_scores[np.arange(len(raw)), class_id]
    keep = score >= conf
    rows = raw[keep]
    centre = (rows[:, 0:2] + grids[keep]) * strides[keep]
    wh = np.exp(np.minimum(rows[:, 2:4], 20.0)) * strides[keep]
    boxes = np.concatenate([centre - wh / 2, centre + wh / 2], axis=1)
    return boxes.astype(np.float32), score[keep].astype(np.float32), class_id[keep].astype(np.int32)


def iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy NMS: indices of kept boxes, highest score first. A box is dropped when its IoU with a
    kept, higher-scoring box is > ``iou``."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        if order.size == 1:
            break
        rest = order[1:]
        order = rest[iou_one_to_many(boxes[i], boxes[rest]) <= iou]
    return np.asarray(keep, dtype=np.int64)


def class_aware_nms(boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou: float) -> np.ndarray:
    """NMS within each class only: boxes of different classes never suppress each other.

    Done in one pass by shifting each class's boxes to a region of its own (offset larger than any
    coordinate), the trick torchvision's ``batched_nms`` uses.
    """
    if boxes.size == 0:
        return np.zeros((0,), np.int64)
    offset = (class_ids.astype(np.float32) * (float(boxes.max()) + 1.0))[:, None]
    return nms(boxes + offset, scores, iou)


def resolve_classes(classes: Sequence[str | int], names: Sequence[str]) -> np.ndarray | None:
    """Config ``detect.classes`` (names or ids) -> sorted class ids; empty -> None (all classes)."""
    if not classes:
        return None
    ids = []
    for c in classes:
        if isinstance(c, int) and 0 <= c < len(names):
            ids.append(c)
        elif isinstance(c, str) and c in names:
            ids.append(names.index(c))
        else:
            raise ConfigError(
                f"detect.classes: unknown class {c!r}; expected a class name such as 'person', 'car' "
                f"or an id 0..{len(names) - 1}"
            )
    return np.unique(np.asarray(ids, dtype=np.int32))


class YoloxDetector:
    """Frame -> Detections in frame pixels, with the model behind the ``Engine`` interface.

    A plain synchronous callable: no threads, no I/O after ``open()``.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        conf: float = 0.3,
        iou: float = 0.45,
        classes: Sequence[str | int] = (),
        max_det: int = 300,
        class_names: Sequence[str] = COCO_CLASSES,
    ) -> None:
        self.engine = engine
        self.conf = conf
        self.iou = iou
        self.max_det = max_det
        self.class_names = tuple(class_names)
        self.class_filter = resolve_classes(classes, self.class_names)
        self._input_name = ""
        self._size = (0, 0)
        self._grids = self._strides = None

    @classmethod
    def from_path(cls, path: str | Path, *, threads: int = 1, engine: EngineOptions | None = None, **kwargs) -> "YoloxDetector":
        """The detector for an ONNX file, on the backend ``engine`` names (default: ONNX Runtime on the CPU)."""
        path = Path(path)
        if not path.is_file():
            raise EngineError(f"detector model not found: {path} (expected an ONNX file such as models/yolox_nano.onnx)")
        verify_shipped(path)
        return cls(create_engine(path, engine or EngineOptions("ort-cpu"), threads=threads), **kwargs)

    def open(self) -> "YoloxDetector":
        self.engine.open()
        ins, outs = self.engine.inputs, self.engine.outputs
        if len(ins) != 1 or len(outs) != 1:
            raise EngineError(
                f"{self.engine.path.name} is not a YOLOX detector: expected 1 input and 1 output, found "
                f"inputs {[s.describe() for s in ins.values()]}, outputs {[s.describe() for s in outs.values()]}"
            )
        spec = next(iter(ins.values()))
        out = next(iter(outs.values()))
        if len(spec.shape) != 4 or spec.shape[1] != 3 or spec.shape[2] is None or spec.shape[3] is None:
            raise EngineError(
                f"{self.engine.path.name} is not a YOLOX detector: input {spec.describe()}, expected [1, 3, H, W] with fixed H, W"
            )
        self._input_name = spec.name
        self._size = (int(spec.shape[2]), int(spec.shape[3]))
        self._grids, self._strides = yolox_grids(self._size)
        expected = (1, len(self._grids), 5 + len(self.class_names))
        if tuple(out.shape) != expected:
            raise EngineError(
                f"{self.engine.path.name} is not a YOLOX detector for {len(self.class_names)} classes: output "
                f"{out.describe()}, expected [{', '.join(map(str, expected))}]"
            )
        return self

    def close(self) -> None:
        self.engine.close()

    def __enter__(self) -> "YoloxDetector":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def input_size(self) -> tuple[int, int]:
        return self._size

    def __call__(self, image: np.ndarray) -> tuple[Detections, dict[str, float]]:
        """BGR uint8 (H, W, 3) -> (Detections in frame pixels, {'detect_pre'|'detect_infer'|'detect_post': ms})."""
        t0 = time.perf_counter()
        blob, r = letterbox(image, self._size)
        t1 = time.perf_counter()
        raw = self.engine.infer({self._input_name: blob})
        t2 = time.perf_counter()
        rows = next(iter(raw.values()))[0]
        boxes, scores, class_ids = decode_yolox(rows, self._grids, self._strides, self.conf)
        if self.class_filter is not None:
            sel = np.isin(class_ids, self.class_filter)
            boxes, scores, class_ids = boxes[sel], scores[sel], class_ids[sel]
        keep = class_aware_nms(boxes, scores, class_ids, self.iou)[: self.max_det]
        h, w = image.shape[:2]
        xyxy = boxes[keep] / r
        np.clip(xyxy[:, 0::2], 0, w, out=xyxy[:, 0::2])
        np.clip(xyxy[:, 1::2], 0, h, out=xyxy[:, 1::2])
        dets = Detections(xyxy, scores[keep], class_ids[keep])
        t3 = time.perf_counter()
        return dets, {"detect_pre": (t1 - t0) * 1e3, "detect_infer": (t2 - t1) * 1e3, "detect_post": (t3 - t2) * 1e3}
