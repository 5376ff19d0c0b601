"""Detector sidecars: the YAML file beside a detector's ONNX (``model.yaml`` beside ``model.onnx``, written by
``python -m export detector``) that says its output layout, preprocessing and class names.

Every key but ``task`` and ``layout`` is optional; None means "the family's default, or the model's own
value" (see :mod:`stream.detectors` for the layouts and the families' preprocessing)::

    task: detect                   # says this file describes a detector
    layout: ultralytics            # yolox | ultralytics | yolov5 | end2end
    name: yolo11n                  # shown in logs
    family: ultralytics            # informational: who made it
    model: yolo11n.onnx            # informational: the ONNX it describes
    input: images                  # input tensor name (default: the model's only input)
    output: output0                # output tensor name (default: the model's only output)
    size: [640, 640]               # input [height, width] (required when the model's input is dynamic)
    colour: rgb                    # rgb | bgr
    scale: 0.00392156862745098     # multiplies the uint8 pixels
    letterbox: centre              # centre | top-left
    pad: 114                       # padding value, 0..255
    names: [person, bicycle, ...]  # class names, one per class ({0: person, ...} as Ultralytics writes it too)
    notes: [...]                   # informational: export command, parity check
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, Strict
from pydantic.dataclasses import dataclass

from depthstream.errors import ConfigError

from .adapter import read_yaml_mapping, validate
from .fields import Allowed, SetByLoader, Text, integer, number

DETECTOR_LAYOUTS = ("yolox", "ultralytics", "yolov5", "end2end")
PLACEMENTS = ("centre", "top-left")

Multiple32 = Annotated[int, Strict(), Field(gt=0, le=8192, multiple_of=32)]
PixelScale = number(gt=0, le=1, note="1 for 0..255, 0.00392156862745098 for /255")
PadValue = integer(ge=0, le=255)


def _names_list(value: Any) -> Any:
    """Ultralytics' own ``{0: person, 1: bicycle, ...}`` as a list, when its keys are 0..n-1."""
    if isinstance(value, dict):
        if sorted(value) != list(range(len(value))):
            raise ValueError(f"class names; as a mapping its keys must be 0..{len(value) - 1}")
        return [value[i] for i in range(len(value))]
    return value


@dataclass(frozen=True, config=ConfigDict(extra="forbid", defer_build=True))  # built when a sidecar is first read
class DetectorCard:
    """A validated detector sidecar (the keys of the module docstring); ``path`` is the file it was read from."""

    task: Annotated[Literal["detect"], Allowed("detect (this file describes a detector; a depth model card "
                                               "belongs to --depth-model)")]
    layout: Literal["yolox", "ultralytics", "yolov5", "end2end"]
    name: Text | None = None
    family: Text | None = None
    model: Text | None = None
    input: Text | None = None
    output: Text | None = None
    size: Annotated[tuple[Multiple32, Multiple32], Allowed("[height, width], two positive multiples of 32, at most 8192")] | None = None
    colour: Literal["rgb", "bgr"] | None = None
    scale: PixelScale | None = None
    letterbox: Literal["centre", "top-left"] | None = None
    pad: PadValue | None = None
    names: Annotated[tuple[Annotated[str, Strict(), Field(min_length=1)], ...], BeforeValidator(_names_list),
                     Field(min_length=1), Allowed("a non-empty list of class names")] | None = None
    notes: Annotated[tuple[str, ...] | str, Allowed("text or a list of lines")] | None = None
    path: Annotated[Path | None, SetByLoader()] = None


DEPTH_CARD_KEYS = ("kind", "mean", "std", "max_depth_m", "calibration")  # keys only a depth model card has


def load_detector_card(path: str | Path, *, model: Path | None = None) -> DetectorCard:
    """Read and validate a detector sidecar; every problem is one ConfigError naming the file, key and value.
    A depth model card (a depth network given as the detector ``model``) is refused as such."""
    path = Path(path)
    where = f"detector sidecar {path}"
    data = read_yaml_mapping(path, where)
    if "task" not in data and ("kind" in data or "output_layout" in data):
        raise ConfigError(f"{where}: is a depth model card (kind: {data.get('kind', '?')}), not a detector sidecar: "
                          f"{model or path} is a depth network; give it with --depth-model (depth.source), and give "
                          f"--detector a YOLO-family detector (e.g. models/yolox_nano.onnx)")
    return validate(DetectorCard, {**data, "path": path}, where=f"{where}: ")


def find_sidecar(model: Path) -> DetectorCard | None:
    """The sidecar beside ``model`` (same name, .yaml or .yml), validated, or None when there is none."""
    for suffix in (".yaml", ".yml"):
        p = Path(model).with_suffix(suffix)
        if p.is_file():
            return load_detector_card(p, model=Path(model))
    return None
