"""Ultralytics checkpoints (YOLOv5u, v8, 11, 26, YOLOv10 detectors; YOLO26-depth) through Ultralytics' own
exporter, then our sidecar / card and parity check.

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
from typing import Any, Sequence

import numpy as np

from stream.detectors import FAMILY_PREPROCESS, infer_layout
from depthstream.errors import ConfigError

from .common import (
    OPSET,
    ExportError,
    align_topk_rows,
    check_parity,
    normalise,
    output_paths,
    parity_note,
    require,
    require_torch,
    sample_images,
    sha256_of,
)

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


def _export_mode_copy(yolo: Any, end2end: bool | None) -> Any:
    """The torch model as Ultralytics' exporter runs it: every head in export mode (decoded output)."""
    model = copy.deepcopy(yolo.model).eval().float()
    for m in model.modules():
        if hasattr(m, "export"):
            m.export = True
            m.format = "onnx"
    if end2end is not None and hasattr(model, "end2end"):
        model.end2end = end2end
    return model


def _run_exporter(yolo: Any, imgsz: tuple[int, int], out: Path, **kwargs: Any) -> Path:
    try:
        written = yolo.export(format="onnx", imgsz=list(imgsz), opset=OPSET, simplify=False, dynamic=False,
                              half=False, **kwargs)
    except Exception as exc:  # the exporter raises many types (requirements, tracing, asserts)
        raise ExportError(f"Ultralytics' exporter failed: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}") from exc
    out.parent.mkdir(parents=True, exist_ok=True)
    if Path(written).resolve() != out.resolve():
        shutil.move(str(written), out)
    return out


def _onnx_output_shape(path: Path) -> tuple[int, ...]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return tuple(session.get_outputs()[0].shape)


def export_ultralytics_detector(weights: Path, *, imgsz: tuple[int, int], end2end: bool,
                                output: str | Path | None, name: str | None, images: Sequence[Path] | None,
                                tolerance: float):
    from .detector import DetectorExport, detector_inputs, smoke_detector, write_sidecar

    yolo = load_yolo(weights, "detect")
    label = name or weights.stem
    onnx_path, sidecar = output_paths(output, label)
    _run_exporter(yolo, imgsz, onnx_path, nms=False if end2end else None)
    shape = _onnx_output_shape(onnx_path)
    info = infer_layout(shape, imgsz)
    if info is None:
        raise ExportError(f"{onnx_path.name}: Ultralytics wrote output {list(shape)}, which matches no layout the "
                          f"product decodes")
    names = yolo.model.names
    names = [names[i] for i in range(len(names))] if isinstance(names, dict) else list(names)
    if info.num_classes is not None and len(names) != info.num_classes:
        raise ExportError(f"{weights}: {len(names)} class names but {info.num_classes} classes in the output")
    pre = FAMILY_PREPROCESS[info.layout]
    photos = sample_images(images)
    parity = check_parity(_export_mode_copy(yolo, end2end), onnx_path, INPUT_NAME,
                          detector_inputs(imgsz, pre, photos), tolerance=tolerance,
                          align=align_topk_rows if info.layout == "end2end" else None)
    notes = [f"weights {weights.name} sha256 {sha256_of(weights)}", "exported by Ultralytics' exporter",
             parity_note(parity)]
    write_sidecar(sidecar, onnx_path, layout=info.layout, name=label, family="ultralytics", size=imgsz, pre=pre,
                  names=names, notes=notes,
                  header=[f"Detector sidecar written by python -m export detector --weights {weights.name}"
                          + (" --end2end" if end2end else "")])
    result = DetectorExport(onnx_path, sidecar, info.layout, info.num_classes, parity)
    result.checks = smoke_detector(onnx_path, photos)
    return result


def export_ultralytics_depth(weights: Path | None, fam: Any, *, output: str | Path | None, card_name: str | None,
                             images: Sequence[Path] | None):
    from .depth import DepthExport, smoke_depth_card, write_depth_card

    if weights is None:
        raise ConfigError(f"yolo-depth needs --weights ({fam.weights_hint})")
    require_torch()
    yolo = load_yolo(weights, "depth")
    label = card_name or weights.stem
    onnx_path, card_path = output_paths(output, label)
    _run_exporter(yolo, fam.size, onnx_path)
    h, w = fam.size
    photos = sample_images(images)
    inputs = [("random input", np.random.default_rng(0).random((1, 3, h, w), dtype=np.float32))]
    inputs += [(lbl, normalise(img, fam.size, fam.colour, fam.scale, fam.mean, fam.std)) for lbl, img in photos]
    parity = check_parity(_export_mode_copy(yolo, None), onnx_path, INPUT_NAME, inputs)
    notes = [f"weights {weights.name} sha256 {sha256_of(weights)}", "exported by Ultralytics' exporter",
             parity_note(parity)]
    write_depth_card(card_path, onnx_path, fam, label, notes, input_name=INPUT_NAME, output_name=OUTPUT_NAME)
    result = DepthExport(onnx_path, card_path, parity)
    result.checks = smoke_depth_card(card_path, photos)
    return result
