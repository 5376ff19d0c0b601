"""Ultralytics checkpoints (YOLOv5u, v8, 11, 26, YOLOv10 detectors; YOLO26-depth) through Ultralytics' own
exporter: loading a checkpoint, running the exporter, the torch model as the exporter runs it. The sidecar
or card and the parity check are written by :mod:`export.detector` and :mod:`export.depth`, which call this.

``ultralytics`` is imported only here, only when such a checkpoint is exported. It needs a torchvision
built for the installed torch; where none exists (a CPU-only torch without its torchvision, as on the
project's CI machine) this path cannot run and the tests use :mod:`export.tiny` modules of the same
output layouts instead.

Ultralytics' conventions, written into the sidecar: input ``images`` float32 [1, 3, H, W], **RGB**, /255,
letterbox **centred** with pad 114; detector output ``output0`` [1, 4+C, N] (cx, cy, w, h in input pixels,
class scores, no objectness) or, with ``--end2end`` on an NMS-free head (YOLO26, YOLOv10), [1, K, 6]
(x1, y1, x2, y2, score, class); depth output ``output0`` [1, 1, H, W] in metres (the frame is stretched
to the input size, no letterbox).
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

from depthstream.errors import ConfigError

from .common import OPSET, ExportError, require

INPUT_NAME = "images"
OUTPUT_NAME = "output0"


def load_yolo(weights: Path, task: str) -> Any:
    """``ultralytics.YOLO(weights)`` for a checkpoint of ``task`` (detect | depth); never downloads."""
    if weights.suffix != ".pt":
        raise ConfigError(f"--weights {weights}: expected an Ultralytics .pt checkpoint")
    if not weights.is_file():
        raise ConfigError(f"--weights {weights} not found (Ultralytics downloads a checkpoint named without a path; "
                          f"this exporter never does: run 'python -m export weights' or download it yourself)")
    ultralytics = require("ultralytics", "ultralytics", "exporting an Ultralytics checkpoint (it also needs a "
                                                         "torchvision built for your torch)")
    yolo = ultralytics.YOLO(str(weights))
    if yolo.task != task:
        raise ConfigError(f"{weights} is an Ultralytics {yolo.task} model, expected a {task} model")
    return yolo


def export_mode_copy(yolo: Any, end2end: bool | None) -> Any:
    """The torch model as Ultralytics' exporter runs it: every head in export mode (decoded output)."""
    model = copy.deepcopy(yolo.model).eval().float()
    for m in model.modules():
        if hasattr(m, "export"):
            m.export = True
            m.format = "onnx"
    if end2end is not None and hasattr(model, "end2end"):
        model.end2end = end2end
    return model


def run_exporter(yolo: Any, imgsz: tuple[int, int], out: Path, **kwargs: Any) -> Path:
    try:
        written = yolo.export(format="onnx", imgsz=list(imgsz), opset=OPSET, simplify=False, dynamic=False,
                              half=False, **kwargs)
    except Exception as exc:  # the exporter raises many types (requirements, tracing, asserts)
        raise ExportError(f"Ultralytics' exporter failed: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}") from exc
    out.parent.mkdir(parents=True, exist_ok=True)
    if Path(written).resolve() != out.resolve():
        shutil.move(str(written), out)
    return out


def onnx_output_shape(path: Path) -> tuple[int, ...]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return tuple(session.get_outputs()[0].shape)
