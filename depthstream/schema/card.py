"""Depth model cards: the small YAML file beside an ONNX depth network that says how to feed it and how
its output becomes metres (read by ``python -m stream --depth-model``, written by ``python -m export depth``).

A complete card (``models/midas_small.yaml``)::

    name: midas-small                 # shown in overlays and logs
    model: midas_v21_small_256.onnx   # path relative to this card's folder
    input: image                      # input tensor name
    output: depth                     # output tensor name
    layout: nchw                      # nchw | nhwc (the input tensor's layout)
    size: [256, 256]                  # network input [height, width] in pixels
    colour: rgb                       # rgb | bgr: channel order the network expects
    scale: 0.00392156862745098        # multiplies the uint8 values (1/255 -> [0, 1])
    mean: [0.485, 0.456, 0.406]       # subtracted per channel after scale, in the card's colour order
    std: [0.229, 0.224, 0.225]        # divides per channel after mean
    kind: relative-inverse            # metric | relative-inverse | relative-depth | normalized
    calibration:                      # needed by the relative kinds to give metres
      scale: 0.0012
      shift: 0.05

Required keys: ``name``, ``model``, ``input``, ``output``, ``layout``, ``size``, ``colour``, ``scale``,
``mean``, ``std``, ``kind`` (the preprocessing has no defaults: a silently wrong normalisation gives
silently wrong metres). Optional: ``max_depth_m`` (required and > 0 for ``normalized``; for the other
kinds, depths beyond it are marked invalid) and ``calibration`` (only for the relative kinds).
Informational, written by ``python -m export`` and not used at run time: ``family`` (the model family,
e.g. ``unet``, ``depth-anything-v2``) and ``notes`` (free text: weights, parity check, caveats).

How the output ``y`` becomes metres, by ``kind``:

- ``metric``: ``y`` is metres.
- ``normalized``: ``y`` in [0, 1]; metres = ``y * max_depth_m`` (e.g. a U-Net trained on NYU, 10 m).
- ``relative-depth``: metres = ``calibration.scale * y + calibration.shift``.
- ``relative-inverse`` (MiDaS, Depth Anything relative: inverse depth up to scale and shift):
  metres = ``1 / (calibration.scale * y + calibration.shift)`` -- the calibration is fitted on the
  inverse depth, as MiDaS's scale-and-shift alignment does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, Strict, ValidationInfo, model_validator
from pydantic.dataclasses import dataclass

from depthstream.store import resolve_model

from .adapter import read_yaml_mapping, validate
from .fields import Allowed, FiniteNumber, NonZero, SetByLoader, Text, number

LAYOUTS = ("nchw", "nhwc")
COLOURS = ("rgb", "bgr")
MODEL_KINDS = ("metric", "relative-inverse", "relative-depth", "normalized")
RELATIVE_KINDS = ("relative-inverse", "relative-depth")

# defer_build: the validator is built when the first card is read, not when the module is imported (a run
# with ground-plane depth reads none).
SCHEMA = ConfigDict(extra="forbid", defer_build=True)


@dataclass(frozen=True, config=SCHEMA)
class Calibration:
    """Affine calibration of a relative model: ``scale`` (non-zero) and ``shift``, finite floats.

    relative-depth: metres = scale * y + shift. relative-inverse: 1 / metres = scale * y + shift.
    """

    scale: NonZero
    shift: FiniteNumber


def _model_path(value: Any, info: ValidationInfo) -> Any:
    """The ONNX path, relative to the card's folder (``base_dir`` in the context), which must hold it; a card in
    ``models/`` naming a file of the model manifest gets the model store's file (a missing one is the store's
    error, which says how to fetch it)."""
    base = (info.context or {}).get("base_dir")
    if base is None or not isinstance(value, str) or not value:
        return value
    model = resolve_model((Path(base) / value).resolve())
    if not model.is_file():
        raise ValueError(f"an ONNX file that exists; looked for {model} (the path is relative to the card's folder)")
    return model


Positive = number(gt=0)
PixelScale = number(gt=0, note="e.g. 0.00392156862745098 for 1/255")
MaxDepth = number(gt=0, noun="metres")
Pixels = Annotated[int, Strict(), Field(gt=0, le=8192)]


@dataclass(frozen=True, config=SCHEMA)
class ModelCard:
    """How to run an ONNX depth network and turn its output into metres (see the module docstring).

    ``model`` is absolute once read by :func:`load_card`; ``card_path`` is the YAML file (for messages).
    To calibrate at run time, ``dataclasses.replace(card, calibration=Calibration(scale, shift))``.
    """

    name: Text
    model: Annotated[Path, BeforeValidator(_model_path), Allowed("an ONNX file (relative to the card's folder)")]
    input: Text
    output: Text
    layout: Literal["nchw", "nhwc"]
    size: Annotated[tuple[Pixels, Pixels], Allowed("[height, width], two positive integers of pixels, at most 8192 (e.g. [256, 256])")]
    colour: Literal["rgb", "bgr"]
    scale: PixelScale
    mean: Annotated[tuple[FiniteNumber, FiniteNumber, FiniteNumber],
                    Allowed("3 numbers, one per channel (e.g. [0.485, 0.456, 0.406])")]
    std: Annotated[tuple[Positive, Positive, Positive],
                   Allowed("3 numbers > 0, one per channel (e.g. [0.229, 0.224, 0.225])")]
    kind: Literal["metric", "relative-inverse", "relative-depth", "normalized"]
    max_depth_m: MaxDepth | None = None
    calibration: Calibration | None = None
    family: Text | None = None
    notes: Annotated[tuple[str, ...] | str, Allowed("text or a list of lines")] | None = None
    card_path: Annotated[Path | None, SetByLoader()] = None

    @model_validator(mode="after")
    def _kind_needs(self) -> "ModelCard":
        if self.kind == "normalized" and self.max_depth_m is None:
            raise ValueError("kind normalized needs max_depth_m (the metres that an output of 1.0 means, e.g. "
                             "'max_depth_m: 10' for NYU Depth V2)")
        if self.calibration is not None and self.kind not in RELATIVE_KINDS:
            raise ValueError(f"calibration applies only to kind {' or '.join(RELATIVE_KINDS)}, but kind is "
                             f"{self.kind}; remove the calibration block")
        return self

    @property
    def label(self) -> str:
        """How messages name this card: its file, or its name when built in code."""
        return str(self.card_path) if self.card_path is not None else f"'{self.name}'"

    @property
    def relative(self) -> bool:
        """A relative kind: metres only through a calibration."""
        return self.kind in RELATIVE_KINDS

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """The network input's shape: (1, 3, h, w) for nchw, (1, h, w, 3) for nhwc."""
        h, w = self.size
        return (1, 3, h, w) if self.layout == "nchw" else (1, h, w, 3)


def load_card(path: str | Path) -> ModelCard:
    """Read and validate a model card YAML file (see the module docstring for the keys).

    The ``model`` path is resolved relative to the card's folder and must exist. Every problem raises one
    :class:`~depthstream.errors.ConfigError` naming the card file, the key, the value received and what is allowed.
    """
    path = Path(path)
    where = f"model card {path}"
    data = read_yaml_mapping(path, where)
    return validate(ModelCard, {**data, "card_path": path}, where=f"{where}: ", context={"base_dir": path.parent})
