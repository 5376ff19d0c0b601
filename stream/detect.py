"""The detector stage: any supported YOLO-family ONNX model -> Detections in frame pixels.

:class:`Detector` picks the adapter for the model's output layout (YOLOX, Ultralytics v8/11/26, YOLOv5/v7,
end-to-end YOLO26/v10; see :mod:`stream.detectors`) from its sidecar or its output shape, feeds it the way
its family expects and decodes its boxes. :class:`YoloxDetector` is the same stage restricted to YOLOX.

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

from depthstream.coco import COCO_CLASSES
from depthstream.errors import ConfigError, EngineError, ModelNotFoundError
from depthstream.schema.config import DetectConfig
from depthstream.schema.sidecar import DetectorCard, find_sidecar
from depthstream.store import resolve_model
from depthstream.types import Detections
from engines.backends import EngineOptions
from engines.base import Engine
from engines.factory import create_engine

from .detectors import (
    FAMILY_PREPROCESS,
    Geometry,
    STRIDES,
    Preprocess,
    check_layout_shape,
    classes_in,
    decode_end2end,
    decode_ultralytics,
    decode_yolov5,
    default_names,
    describe_layouts,
    grid_cells,
    infer_layout,
    letterbox_image,
    preprocess_for,
    to_blob,
)


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


def class_aware_nms(boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou: float) -> np.ndarray:
    """Greedy NMS within each class (OpenCV's ``cv2.dnn.NMSBoxesBatched``): indices of the kept boxes,
    highest score first (ties: lower index first). A box is dropped when its IoU with a kept,
    higher-scoring box of its own class is > ``iou``; boxes of different classes never suppress each other.

    OpenCV separates the classes by shifting class c's boxes by ``c * (largest coordinate + 1)``, measured
    from 0: boxes reaching into negative coordinates (a detection past the frame's left or top edge, in
    input pixels) could then land on another class's boxes. The boxes are therefore moved so that the
    smallest coordinate is 0 first; IoU does not change under a shift.
    """
    if len(boxes) == 0:
        return np.zeros((0,), np.int64)
    xyxy = np.asarray(boxes, dtype=np.float64)
    xyxy = xyxy - xyxy.min()
    xywh = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)
    # Every box is already above the score threshold (the decoders applied conf): keep them all here.
    keep = cv2.dnn.NMSBoxesBatched(xywh, np.asarray(scores, np.float32), np.asarray(class_ids, np.int32),
                                   -1.0, float(iou))
    return np.asarray(keep, dtype=np.int64).reshape(-1)


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


class Detector:
    """Frame -> Detections in frame pixels, for any supported YOLO-family layout, with the model behind the
    ``Engine`` interface. A plain synchronous callable: no threads, no I/O after ``open()``.

    ``options`` is the validated config section ``detect`` (conf, iou, classes, max_det; its ``model`` is
    what :meth:`from_config` opens). The layout, the input size, the preprocessing and the class names are
    settled in ``open()``: from ``card`` (a :class:`~depthstream.schema.sidecar.DetectorCard`; by default the
    sidecar beside the engine's model file, if any), else from the model's input and output shapes and the
    layout's family. ``class_names`` overrides the names; ``options.classes`` (names or ids) keeps only those.
    """

    forced_layout: str | None = None  # a subclass that accepts one layout only

    def __init__(
        self,
        engine: Engine,
        options: DetectConfig = DetectConfig(),
        *,
        class_names: Sequence[str] | None = None,
        card: DetectorCard | None = None,
    ) -> None:
        self.engine = engine
        self.options = options
        self.card = card if card is not None else find_sidecar(Path(engine.path))
        self._names_given = tuple(class_names) if class_names is not None else None
        self.class_names = self._names_given or (self.card.names if self.card and self.card.names else tuple(COCO_CLASSES))
        self.class_filter = None
        self.layout = self.forced_layout or (self.card.layout if self.card else "")
        self.preprocess: Preprocess = FAMILY_PREPROCESS.get(self.layout, FAMILY_PREPROCESS["yolox"])
        self._input_name = ""
        self._output_name = ""
        self._in_dtype = np.dtype(np.float32)
        self._size = (0, 0)
        self._grids = self._strides = None

    @classmethod
    def from_path(cls, path: str | Path, options: DetectConfig = DetectConfig(), *, threads: int = 1,
                  engine: EngineOptions | None = None, **kwargs) -> "Detector":
        """The detector for an ONNX file, on the backend ``engine`` names (default: ONNX Runtime on the CPU)."""
        path = resolve_model(path, engine.cache_dir if engine else None)  # models/NAME of the manifest: the store's file
        if not path.is_file():
            raise ModelNotFoundError(f"detector model not found: {path} (expected an ONNX file such as models/yolox_nano.onnx)")
        return cls(create_engine(path, engine or EngineOptions("ort-cpu"), threads=threads), options, **kwargs)

    @classmethod
    def from_config(cls, options: DetectConfig, *, threads: int = 1, engine: EngineOptions | None = None) -> "Detector":
        """The detector the config section ``detect`` names (its ``model``), with its settings."""
        return cls.from_path(options.model, options, threads=threads, engine=engine)

    def open(self) -> "Detector":
        self.engine.open()
        self._configure()
        return self

    def _error(self, message: str) -> EngineError:
        what = "YOLOX detector" if self.forced_layout == "yolox" else "supported detector"
        return EngineError(f"{self.engine.path.name} is not a {what}: {message}")

    def _configure(self) -> None:
        ins, outs = self.engine.inputs, self.engine.outputs
        card = self.card
        shown = f"inputs {[s.describe() for s in ins.values()]}, outputs {[s.describe() for s in outs.values()]}"
        maps = [o for o in outs.values() if len(o.shape) == 4 and 1 in (o.shape[1], o.shape[3])]
        if maps:
            raise ConfigError(f"{self.engine.path.name} is not a detector: its output {maps[0].describe()} is a "
                              f"one-channel map, as a depth network gives, not boxes; give it to --depth-model with its "
                              f"model card (README, 'Depth: where the metres come from'); --detector takes a "
                              f"YOLO-family detector")
        if len(ins) != 1:
            raise self._error(f"expected 1 input [1, 3, H, W], found {shown}")
        spec = next(iter(ins.values()))
        if card is not None and card.input is not None and card.input != spec.name:
            raise ConfigError(f"detector sidecar {card.path}: input {card.input!r} is not the model's input; {shown}")
        if len(spec.shape) != 4 or spec.shape[1] not in (3, None):
            raise self._error(f"input {spec.describe()}, expected [1, 3, H, W]")
        fixed = None if spec.shape[2] is None or spec.shape[3] is None else (int(spec.shape[2]), int(spec.shape[3]))
        if fixed is None and (card is None or card.size is None):
            raise self._error(f"input {spec.describe()} has no fixed height and width; export it with a fixed size "
                              f"or give 'size: [H, W]' in its sidecar {Path(self.engine.path).with_suffix('.yaml').name}")
        if fixed is not None and card is not None and card.size is not None and card.size != fixed:
            raise ConfigError(f"detector sidecar {card.path}: size {list(card.size)} differs from the model's "
                              f"input {spec.describe()}")
        size = fixed or card.size  # type: ignore[union-attr]
        if card is not None and card.output is not None:
            if card.output not in outs:
                raise ConfigError(f"detector sidecar {card.path}: output {card.output!r} is not an output of the "
                                  f"model; {shown}")
            out = outs[card.output]
        elif len(outs) == 1:
            out = next(iter(outs.values()))
        else:
            raise self._error(f"{len(outs)} outputs and no sidecar naming the one with the boxes ('output:'); {shown}")
        shape = tuple(out.shape)
        if self.forced_layout == "yolox":
            expected = (1, grid_cells(size), 5 + len(self.class_names))
            if shape != expected:
                raise EngineError(
                    f"{self.engine.path.name} is not a YOLOX detector for {len(self.class_names)} classes: output "
                    f"{out.describe()}, expected [{', '.join(map(str, expected))}]"
                )
            layout = "yolox"
        elif card is not None:
            layout = card.layout
            why = check_layout_shape(layout, shape)
            if why:
                raise ConfigError(f"detector sidecar {card.path}: layout {layout} does not fit output "
                                  f"{out.describe()}: {why}")
        else:
            info = infer_layout(shape, size)
            if info is None:
                raise self._error(f"its output matches no supported layout: found {shown} (input size {size[0]}x"
                                  f"{size[1]}); expected {describe_layouts(size)}; for another layout of the same "
                                  f"rows write a sidecar with 'task: detect' and 'layout:' (see stream/detectors.py)")
            layout = info.layout
        num_classes = classes_in(layout, shape)
        names = self._names_given or (card.names if card is not None and card.names else None)
        if names is None:
            names = tuple(COCO_CLASSES) if self.forced_layout == "yolox" else default_names(num_classes)
        if num_classes is not None and len(names) != num_classes:
            where = f"detector sidecar {card.path}" if card is not None and card.names else "class_names"
            raise ConfigError(f"{where} lists {len(names)} class names, but {self.engine.path.name} has "
                              f"{num_classes} classes (output {out.describe()})")
        if layout == "yolox":
            grids, strides = yolox_grids(size)
            if shape[1] is not None and shape[1] != len(grids):
                raise self._error(f"a YOLOX output at input {size[0]}x{size[1]} has {len(grids)} rows, found "
                                  f"{out.describe()}")
            self._grids, self._strides = grids, strides
        self.layout = layout
        self.class_names = tuple(names)
        self.class_filter = resolve_classes(self.options.classes, self.class_names)
        self.preprocess = preprocess_for(card) if card is not None else FAMILY_PREPROCESS[layout]
        self._input_name, self._output_name = spec.name, out.name
        self._in_dtype = np.dtype(spec.dtype)
        self._size = size

    def close(self) -> None:
        self.engine.close()

    def __enter__(self) -> "Detector":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def input_size(self) -> tuple[int, int]:
        return self._size

    def decode(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The model's output (batch removed) -> xyxy in input pixels, scores, class ids (score >= conf)."""
        if self.layout == "yolox":
            return decode_yolox(raw, self._grids, self._strides, self.options.conf)
        if self.layout == "ultralytics":
            return decode_ultralytics(raw, self.options.conf)
        if self.layout == "yolov5":
            return decode_yolov5(raw, self.options.conf)
        return decode_end2end(raw, self.options.conf)

    def prepare(self, image: np.ndarray) -> tuple[dict[str, np.ndarray], Geometry]:
        """BGR uint8 (H, W, 3) -> (the engine's feeds: the letterboxed blob, the letterbox's geometry)."""
        canvas, geometry = letterbox_image(image, self._size, self.preprocess.letterbox, self.preprocess.pad)
        return {self._input_name: to_blob(canvas, self.preprocess, self._in_dtype)}, geometry

    def boxes(self, outputs: dict[str, np.ndarray], geometry: Geometry, image_hw: tuple[int, int]) -> Detections:
        """The engine's outputs for a frame of ``image_hw`` = (H, W) prepared with ``geometry`` -> Detections in
        frame pixels (decoded, boxes wholly in the letterbox padding dropped, class filter, NMS, at most
        ``max_det``)."""
        boxes, scores, class_ids = self.decode(np.asarray(outputs[self._output_name][0], dtype=np.float32))
        h, w = image_hw
        in_frame = geometry.to_frame(boxes, w, h)
        # A box wholly in the letterbox padding has nothing of the frame in it (zero width or height once clipped).
        sel = (in_frame[:, 2] > in_frame[:, 0]) & (in_frame[:, 3] > in_frame[:, 1])
        if self.class_filter is not None:
            sel &= np.isin(class_ids, self.class_filter)
        boxes, scores, class_ids, in_frame = boxes[sel], scores[sel], class_ids[sel], in_frame[sel]
        if self.layout == "end2end":  # one box per object already: best first, no NMS
            keep = np.argsort(-scores, kind="stable")[: self.options.max_det]
        else:
            keep = class_aware_nms(boxes, scores, class_ids, self.options.iou)[: self.options.max_det]
        return Detections(in_frame[keep], scores[keep], class_ids[keep])

    def __call__(self, image: np.ndarray) -> tuple[Detections, dict[str, float]]:
        """BGR uint8 (H, W, 3) -> (Detections in frame pixels, {'detect_pre'|'detect_infer'|'detect_post': ms})."""
        t0 = time.perf_counter()
        feeds, geometry = self.prepare(image)
        t1 = time.perf_counter()
        raw = self.engine.infer(feeds)
        t2 = time.perf_counter()
        dets = self.boxes(raw, geometry, image.shape[:2])
        t3 = time.perf_counter()
        return dets, {"detect_pre": (t1 - t0) * 1e3, "detect_infer": (t2 - t1) * 1e3, "detect_post": (t3 - t2) * 1e3}


class YoloxDetector(Detector):
    """:class:`Detector` for the YOLOX layout only (the shipped YOLOX-Nano): any other output is an error
    saying it is not a YOLOX detector; ``class_names`` (default COCO's 80) fixes the expected class count."""

    forced_layout = "yolox"
