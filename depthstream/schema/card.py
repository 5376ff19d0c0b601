"""Depth model cards: the small YAML file beside an ONNX depth network that says how to feed it, how its output
becomes metres and where those metres can be trusted (read by ``python -m stream --depth-model``, written by
``python -m export depth``).

A complete card (``models/midas_small.yaml``)::

    name: midas-small                 # shown in overlays, logs and the JSONL
    model: midas_v21_small_256.onnx   # path relative to this card's folder
    input: image                      # input tensor name
    output: depth                     # output tensor name
    input_dtype: float32              # float32 | float16 | uint8: the input tensor's element type
    layout: nchw                      # nchw | nhwc: the input tensor's layout
    output_layout: hw                 # nchw [1, 1, h, w] | nhwc [1, h, w, 1] | hw [1, h, w] or [h, w]
    size: [256, 256]                  # network input [height, width] in pixels
    resize: stretch                   # stretch | letterbox | crop: how a frame of another shape becomes the input
    colour: rgb                       # rgb | bgr: channel order the network expects
    scale: 0.00392156862745098        # multiplies the uint8 values (1/255 -> [0, 1])
    mean: [0.485, 0.456, 0.406]       # subtracted per channel after scale, in the card's colour order
    std: [0.229, 0.224, 0.225]        # divides per channel after mean
    kind: relative-inverse            # metric | relative-inverse | relative-depth | normalized
    calibration:                      # needed by the relative kinds to give metres
      scale: 0.0012
      shift: 0.05
    valid_range_m: [0.5, 30]          # [near, far]: distances outside are flagged unreliable (not hidden)
    domain: any                       # indoor | outdoor | driving | any: the scenes it was trained for
    domain_detail: 'a mix of 10 data sets, indoor and outdoor'

Required keys: ``name``, ``model``, ``input``, ``output``, ``layout``, ``output_layout``, ``size``, ``colour``,
``kind``, ``domain``; for a float input also ``scale``, ``mean`` and ``std`` (the preprocessing has no
defaults: a silently wrong normalisation gives silently wrong metres). A ``uint8`` input is fed the resized
pixels as they are (the network normalises inside): ``scale``, ``mean`` and ``std`` may be left out, and when
given must be 1, 0 and 1. Defaults: ``input_dtype: float32``, ``resize: stretch`` (the whole frame resized to
``size``); ``pad`` (0..255, default 0) is the pixel value around a letterboxed frame.

Resize modes, and how the output map goes back onto the frame (:mod:`stream.depth.geometry`):

- ``stretch``: the whole frame resized to ``size`` (its aspect ratio changes); the map is resized back.
- ``letterbox``: scaled to fit inside ``size`` with its aspect ratio kept, centred, padded with ``pad``; the
  part of the map over the frame is resized back, the padding's depth is dropped.
- ``crop``: scaled to cover ``size`` with its aspect ratio kept, the centre kept; the map covers only that
  centre of the frame: the cut-off sides have no depth (NaN), never an invented one.

Optional: ``max_depth_m`` (required and > 0 for ``normalized``, where it is the metres of an output of 1;
for the other kinds depths beyond it are marked invalid), ``calibration`` (only for the relative kinds),
``valid_range_m`` (default: [0, max_depth_m] when that is given, else not stated), ``domain_detail``.
Informational, written by ``python -m export`` and not used at run time: ``family`` (the model family, e.g.
``unet``, ``depth-anything-v2``) and ``notes`` (free text: weights, parity check, caveats).

When the model loads, the card is checked against the ONNX's real tensors (names, ranks, dtypes, sizes;
a dynamic dimension is accepted where the card gives the size), and a detector's ONNX is refused: see
:mod:`stream.depth.cardcheck`.

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

from depthstream.errors import ConfigError
from depthstream.store import resolve_model

from .adapter import read_yaml_mapping, validate
from .fields import Allowed, FiniteNumber, NonZero, SetByLoader, Text, integer, number

LAYOUTS = ("nchw", "nhwc")
OUTPUT_LAYOUTS = ("nchw", "nhwc", "hw")
INPUT_DTYPES = ("float32", "float16", "uint8")
RESIZE_MODES = ("stretch", "letterbox", "crop")
COLOURS = ("rgb", "bgr")
MODEL_KINDS = ("metric", "relative-inverse", "relative-depth", "normalized")
RELATIVE_KINDS = ("relative-inverse", "relative-depth")
DOMAINS = ("indoor", "outdoor", "driving", "any")

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
RangeMetres = number(ge=0, noun="metres")
Pixels = Annotated[int, Strict(), Field(gt=0, le=8192)]
PadValue = integer(ge=0, le=255, note="a pixel value")


@dataclass(frozen=True, config=SCHEMA, kw_only=True)
class ModelCard:
    """How to run an ONNX depth network, turn its output into metres and where they hold (module docstring).

    ``model`` is absolute once read by :func:`load_card`; ``card_path`` is the YAML file (for messages).
    To calibrate at run time, ``dataclasses.replace(card, calibration=Calibration(scale, shift))``.
    """

    name: Text
    model: Annotated[Path, BeforeValidator(_model_path), Allowed("an ONNX file (relative to the card's folder)")]
    input: Text
    output: Text
    input_dtype: Literal["float32", "float16", "uint8"] = "float32"
    layout: Literal["nchw", "nhwc"]
    output_layout: Annotated[Literal["nchw", "nhwc", "hw"],
                             Allowed("nchw ([1, 1, h, w]) | nhwc ([1, h, w, 1]) | hw ([1, h, w] or [h, w])")]
    size: Annotated[tuple[Pixels, Pixels], Allowed("[height, width], two positive integers of pixels, at most 8192 (e.g. [256, 256])")]
    resize: Literal["stretch", "letterbox", "crop"] = "stretch"
    pad: PadValue = 0
    colour: Literal["rgb", "bgr"]
    scale: PixelScale | None = None
    mean: Annotated[tuple[FiniteNumber, FiniteNumber, FiniteNumber],
                    Allowed("3 numbers, one per channel (e.g. [0.485, 0.456, 0.406])")] | None = None
    std: Annotated[tuple[Positive, Positive, Positive],
                   Allowed("3 numbers > 0, one per channel (e.g. [0.229, 0.224, 0.225])")] | None = None
    kind: Literal["metric", "relative-inverse", "relative-depth", "normalized"]
    max_depth_m: MaxDepth | None = None
    calibration: Calibration | None = None
    valid_range_m: Annotated[tuple[RangeMetres, RangeMetres],
                             Allowed("[near, far] metres, 0 <= near < far (e.g. [0.5, 10])")] | None = None
    domain: Annotated[Literal["indoor", "outdoor", "driving", "any"],
                      Allowed("indoor | outdoor | driving | any (the scenes the network was trained for)")]
    domain_detail: Annotated[str, Strict()] = ""
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
        if self.valid_range_m is not None and not self.valid_range_m[0] < self.valid_range_m[1]:
            raise ValueError(f"valid_range_m must be [near, far] with near < far, got {list(self.valid_range_m)}")
        missing = [k for k in ("scale", "mean", "std") if getattr(self, k) is None]
        if self.input_dtype == "uint8":
            identity = {"scale": 1.0, "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}
            wrong = [k for k, v in identity.items() if getattr(self, k) is not None and getattr(self, k) != v]
            if wrong:
                raise ValueError(f"input_dtype uint8 feeds the pixels as they are (the network normalises inside): "
                                 f"{', '.join(wrong)} cannot apply; remove {'them' if len(wrong) > 1 else 'it'} "
                                 f"(or give scale 1, mean [0, 0, 0], std [1, 1, 1])")
        elif missing:
            raise ValueError(f"input_dtype {self.input_dtype} needs {', '.join(missing)}: how the uint8 pixels become "
                             f"the network's numbers (e.g. scale: 0.00392156862745098, mean: [0.485, 0.456, 0.406], "
                             f"std: [0.229, 0.224, 0.225])")
        if self.pad != 0 and self.resize != "letterbox":
            raise ValueError(f"pad applies only to resize: letterbox, but resize is {self.resize}; remove pad")
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

    @property
    def pixel_scale(self) -> float:
        """What the uint8 pixels are multiplied by (1 for a uint8 input)."""
        return 1.0 if self.scale is None else float(self.scale)

    @property
    def pixel_mean(self) -> tuple[float, float, float]:
        return (0.0, 0.0, 0.0) if self.mean is None else tuple(self.mean)

    @property
    def pixel_std(self) -> tuple[float, float, float]:
        return (1.0, 1.0, 1.0) if self.std is None else tuple(self.std)

    @property
    def valid_range(self) -> tuple[float, float] | None:
        """[near, far] metres this network can measure: ``valid_range_m``, else [0, ``max_depth_m``], else None."""
        if self.valid_range_m is not None:
            return (float(self.valid_range_m[0]), float(self.valid_range_m[1]))
        if self.max_depth_m is not None:
            return (0.0, float(self.max_depth_m))
        return None


def _not_a_depth_card(data: dict, where: str) -> None:
    """A detector sidecar given where a depth card belongs: one line saying so (before the schema's
    own complaint about its keys)."""
    if data.get("task") == "detect" or (data.get("layout") in ("yolox", "ultralytics", "yolov5", "end2end")):
        raise ConfigError(f"{where}: is a detector sidecar (task: {data.get('task', 'detect')}, layout: "
                          f"{data.get('layout', '?')}), not a depth model card: give its ONNX to --detector "
                          f"(detect.model); --depth-model takes a depth network's card (see README, 'Depth')")


def load_card(path: str | Path) -> ModelCard:
    """Read and validate a model card YAML file (see the module docstring for the keys).

    The ``model`` path is resolved relative to the card's folder and must exist. Every problem raises one
    :class:`~depthstream.errors.ConfigError` naming the card file, the key, the value received and what is allowed.
    """
    path = Path(path)
    where = f"model card {path}"
    data = read_yaml_mapping(path, where)
    _not_a_depth_card(data, where)
    return validate(ModelCard, {**data, "card_path": path}, where=f"{where}: ", context={"base_dir": path.parent})
