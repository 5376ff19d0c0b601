"""Detectors -> ONNX + a sidecar that ``stream.detect.Detector`` reads (layout, input, preprocessing, names).

Two ways in:

- an Ultralytics checkpoint (``--weights yolo11n.pt``): exported by Ultralytics' own exporter
  (``ultralytics`` imported lazily; see :mod:`export.ultralytics`);
- any ``torch.nn.Module`` (``--module pkg.mod:factory --layout L``): ``torch.onnx.export`` with the layout's
  preprocessing written into the sidecar.

Either way the output layout is checked against the shape the model really gives, ONNX Runtime is
compared with torch on a random input and on real photos, and the product's detector stage runs the
sidecar on the photos.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from depthstream.coco import COCO_CLASSES
from stream.detectors import (
    FAMILY_PREPROCESS,
    Preprocess,
    check_layout_shape,
    classes_in,
    infer_layout,
    letterbox_image,
    to_blob,
)
from depthstream.errors import ConfigError
from depthstream.schema.sidecar import DETECTOR_LAYOUTS as LAYOUTS
from depthstream.schema.sidecar import load_detector_card

from . import ultralytics
from .common import (
    ExportError,
    ParityResult,
    align_topk_rows,
    check_parity,
    load_into,
    load_state_dict,
    module_from_factory,
    onnx_export,
    output_paths,
    parity_note,
    require_torch,
    sample_images,
    sha256_of,
    write_card,
)

INPUT_NAME = "images"
OUTPUT_NAME = "output0"


@dataclass
class DetectorExport:
    onnx: Path
    sidecar: Path
    layout: str
    num_classes: int | None
    parity: list[ParityResult] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)

    def report(self) -> list[str]:
        lines = [f"wrote {self.onnx} ({self.onnx.stat().st_size / 1e6:.1f} MB) and {self.sidecar}",
                 f"layout {self.layout}" + (f", {self.num_classes} classes" if self.num_classes else "")]
        lines += [f"parity {r.describe()}" for r in self.parity]
        return lines + self.checks


def parse_names(spec: str | None, num_classes: int | None) -> list[str]:
    """``--names``: coco | a text file (one name a line) | a,b,c; default COCO for 80 (or unknown) classes."""
    if spec is None:
        if num_classes is None or num_classes == len(COCO_CLASSES):
            return list(COCO_CLASSES)
        raise ConfigError(f"the model has {num_classes} classes: give their names with --names a,b,c or "
                          f"--names FILE (one name a line)")
    if spec == "coco":
        names = list(COCO_CLASSES)
    elif Path(spec).is_file():
        names = [line.strip() for line in Path(spec).read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        names = [n.strip() for n in spec.split(",") if n.strip()]
    if not names:
        raise ConfigError(f"--names {spec!r} gives no class names")
    if num_classes is not None and len(names) != num_classes:
        raise ConfigError(f"--names gives {len(names)} class names, the model has {num_classes} classes")
    return names


def detector_inputs(size: tuple[int, int], pre: Preprocess, photos: Sequence[tuple[str, np.ndarray]]
                    ) -> list[tuple[str, np.ndarray]]:
    """A random input in the family's pixel range, then each photo letterboxed as the detector stage does."""
    rng = np.random.default_rng(0)
    random = rng.integers(0, 256, size=(size[0], size[1], 3), dtype=np.uint8)
    inputs = [("random input", to_blob(random, pre))]
    for label, image in photos:
        canvas, _ = letterbox_image(image, size, pre.letterbox, pre.pad)
        inputs.append((label, to_blob(canvas, pre)))
    return inputs


def write_sidecar(path: Path, onnx_path: Path, *, layout: str, name: str, family: str, size: tuple[int, int],
                  pre: Preprocess, names: Sequence[str], notes: Sequence[str], header: Sequence[str],
                  input_name: str = INPUT_NAME, output_name: str = OUTPUT_NAME) -> Path:
    data: dict[str, Any] = {
        "task": "detect",
        "layout": layout,
        "name": name,
        "family": family,
        "model": onnx_path.name,
        "input": input_name,
        "output": output_name,
        "size": [int(size[0]), int(size[1])],
        "colour": pre.colour,
        "scale": float(pre.scale),
        "letterbox": pre.letterbox,
        "pad": int(pre.pad),
        "names": list(names),
        "notes": list(notes),
    }
    write_card(path, data, header)
    load_detector_card(path)  # what we write must be what we read
    return path


def smoke_detector(onnx_path: Path, photos: Sequence[tuple[str, np.ndarray]], conf: float = 0.3) -> list[str]:
    """Run the exported model through the product's detector stage on the photos."""
    from depthstream.schema.config import DetectConfig
    from stream.detect import Detector

    lines = []
    with Detector.from_path(onnx_path, DetectConfig(model=str(onnx_path), conf=conf), threads=1) as det:
        for label, image in photos:
            dets, _ = det(image)
            names = sorted({det.class_names[c] for c in dets.class_id})
            lines.append(f"detector stage on {label}: {len(dets)} boxes at conf {conf:g}"
                         + (f" ({', '.join(names[:6])}{', ...' if len(names) > 6 else ''})" if names else ""))
    return lines


def export_detector(*, weights: str | Path | None = None, module: str | None = None,
                    state_dict: str | Path | None = None, layout: str | None = None,
                    imgsz: tuple[int, int] = (640, 640), end2end: bool = False, names: str | None = None,
                    output: str | Path | None = None, name: str | None = None,
                    images: Sequence[Path] | None = None, tolerance: float = 1e-3) -> DetectorExport:
    """Export a detector (see the module docstring); returns what was written and how it was checked."""
    if (weights is None) == (module is None):
        raise ConfigError("give either --weights X.pt (an Ultralytics checkpoint) or --module pkg.mod:factory")
    if weights is not None:
        if layout is not None or state_dict is not None:
            raise ConfigError("--layout and --state-dict go with --module; an Ultralytics checkpoint says its own layout")
        return export_ultralytics_detector(Path(weights), imgsz=imgsz, end2end=end2end, output=output, name=name,
                                           images=images, tolerance=tolerance)
    if layout not in LAYOUTS:
        raise ConfigError(f"--module needs --layout, one of {', '.join(LAYOUTS)}")
    if end2end:
        raise ConfigError("--end2end is for Ultralytics checkpoints; a --module in that layout uses --layout end2end")
    torch = require_torch("exporting a detector module")
    model = module_from_factory(module, "a detector module")  # type: ignore[arg-type]
    if state_dict is not None:
        load_into(model, load_state_dict(Path(state_dict), "detector"), Path(state_dict), "detector")
    model.eval()
    pre = FAMILY_PREPROCESS[layout]
    label = name or module.split(":", 1)[1]  # type: ignore[union-attr]
    onnx_path, sidecar = output_paths(output, label)
    onnx_export(model, torch.zeros(1, 3, *imgsz), onnx_path, INPUT_NAME, [OUTPUT_NAME])
    photos = sample_images(images)
    parity = check_parity(model, onnx_path, INPUT_NAME, detector_inputs(imgsz, pre, photos), tolerance=tolerance,
                          align=align_topk_rows if layout == "end2end" else None)
    with torch.no_grad():
        shape = tuple(model(torch.zeros(1, 3, *imgsz)).shape)
    why = check_layout_shape(layout, shape)
    if why:
        raise ConfigError(f"--layout {layout} does not fit the module's output shape {list(shape)}: {why}")
    found = infer_layout(shape, imgsz)
    if found is not None and found.layout != layout and layout != "end2end":
        raise ConfigError(f"--layout {layout}, but the output shape {list(shape)} at input {imgsz[0]}x{imgsz[1]} is "
                          f"the {found.layout} layout")
    num_classes = classes_in(layout, shape)
    class_names = parse_names(names, num_classes)
    notes = [f"exported from {module} with torch.onnx.export"]
    if state_dict is not None:
        notes.append(f"weights {Path(state_dict).name} sha256 {sha256_of(Path(state_dict))}")
    else:
        notes.append("RANDOM INIT: the module's own initial weights, for timing and plumbing only")
    notes.append(parity_note(parity))
    write_sidecar(sidecar, onnx_path, layout=layout, name=label, family="module", size=imgsz, pre=pre,
                  names=class_names, notes=notes,
                  header=[f"Detector sidecar written by python -m export detector --module {module} --layout {layout}."])
    result = DetectorExport(onnx_path, sidecar, layout, num_classes, parity)
    result.checks = smoke_detector(onnx_path, photos)
    return result


def export_ultralytics_detector(weights: Path, *, imgsz: tuple[int, int], end2end: bool,
                                output: str | Path | None, name: str | None, images: Sequence[Path] | None,
                                tolerance: float) -> DetectorExport:
    """An Ultralytics checkpoint through Ultralytics' own exporter, then our sidecar, parity check and smoke run."""
    yolo = ultralytics.load_yolo(weights, "detect")
    label = name or weights.stem
    onnx_path, sidecar = output_paths(output, label)
    ultralytics.run_exporter(yolo, imgsz, onnx_path, nms=False if end2end else None)
    shape = ultralytics.onnx_output_shape(onnx_path)
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
    parity = check_parity(ultralytics.export_mode_copy(yolo, end2end), onnx_path, ultralytics.INPUT_NAME,
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
