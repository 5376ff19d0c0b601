"""Depth providers: each turns a :class:`~depthstream.types.Frame` into a :class:`~depthstream.types.DepthMap`.

A depth map is (H, W) float32 **metres along the optical axis** (z-depth) at the frame's resolution,
NaN where the provider cannot give a depth. Two families:

- :class:`GroundPlaneDepth` (kind ``geometric``): a fixed camera above flat ground; no model at all.
- :class:`OnnxDepth` (kind ``metric`` or ``relative+calibrated``): an ONNX depth network described by a
  *model card*, a small YAML file next to the model that says how to feed the network and how its output
  becomes metres.

Providers are pure computation: no threads, no I/O except loading the model in ``open()``.

Model card
----------
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

Non-finite or non-positive metres become NaN. The output is never min-max normalised per frame: that
would change the unit with every frame's content.
"""

from __future__ import annotations

import abc
import difflib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from depthstream.errors import ConfigError, DepthError, EngineError
from depthstream.store import resolve_model
from depthstream.types import DepthKind, DepthMap, Frame

__all__ = [
    "DepthProvider",
    "GroundPlaneDepth",
    "ground_plane_z",
    "Calibration",
    "ModelCard",
    "load_card",
    "OnnxDepth",
    "open_depth_model",
    "CARD_KEYS",
    "CARD_REQUIRED_KEYS",
    "LAYOUTS",
    "COLOURS",
    "MODEL_KINDS",
]


class DepthProvider(abc.ABC):
    """Base of every depth provider.

    ``source`` names what produced the depth (``ground-plane`` or the model card's name); ``kind`` is the
    :data:`~depthstream.types.DepthKind` of the maps it returns. ``open()`` loads what the provider needs
    (a model), ``close()`` frees it; both are no-ops here. Use as a context manager:
    ``with provider: depth = provider(frame)``.
    """

    source: str
    kind: DepthKind

    def open(self) -> None:
        """Load what the provider needs; calling it again while open does nothing."""

    def close(self) -> None:
        """Free what ``open()`` loaded; safe to call more than once."""

    def __enter__(self) -> "DepthProvider":
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @abc.abstractmethod
    def __call__(self, frame: Frame) -> DepthMap:
        """Depth of ``frame``: a DepthMap of (frame.height, frame.width) float32 metres, NaN = invalid."""


# --------------------------------------------------------------------------------------------------
# Ground plane
# --------------------------------------------------------------------------------------------------

def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _fmt(value: Any) -> str:
    if _is_number(value):
        return f"{float(value):g}"
    return repr(value)


def _require_number(value: Any, key: str, low: float | None = None, high: float | None = None) -> float:
    """``value`` as a finite float, > low (and < high when given), else ConfigError naming ``key``."""
    if not _is_number(value) or not math.isfinite(float(value)):
        raise ConfigError(f"{key} must be a finite number, got {_fmt(value)}")
    v = float(value)
    if low is not None and high is not None and not (low < v < high):
        raise ConfigError(f"{key} must be in ({low:g}, {high:g}), got {_fmt(value)}")
    if low is not None and high is None and not v > low:
        raise ConfigError(f"{key} must be > {low:g}, got {_fmt(value)}")
    return v


def ground_plane_z(v: np.ndarray, height_m: float, pitch_deg: float, focal_px: float, cy_px: float) -> np.ndarray:
    """z-depth in metres where the rays through image rows ``v`` meet flat ground; NaN at/above the horizon.

    v:        vertical image coordinates in pixels (float, any shape; the centre of pixel row r is r + 0.5).
    height_m: camera height above the ground in metres (> 0).
    pitch_deg: downward pitch of the optical axis in degrees (positive = looking down).
    focal_px: vertical focal length in pixels; cy_px: principal row in pixels.
    Returns float64 of ``v``'s shape: ``z = H / (cos(pitch) * (v - cy) / f + sin(pitch))``, NaN where the
    denominator is <= 0 (the ray never reaches the ground). See :class:`GroundPlaneDepth` for the derivation.
    """
    theta = math.radians(pitch_deg)
    down = math.cos(theta) * (np.asarray(v, dtype=np.float64) - cy_px) / focal_px + math.sin(theta)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(down > 0, height_m / np.where(down > 0, down, 1.0), np.nan)
    return z


class GroundPlaneDepth(DepthProvider):
    """Depth of flat ground seen by a fixed, pitched pinhole camera (no model; kind ``geometric``).

    Parameters (config section ``depth.ground_plane``):
      height_m:    camera height above the ground, metres, > 0.
      pitch_deg:   angle of the optical axis below the horizontal, degrees, in (-90, 90); positive looks down.
      vfov_deg:    vertical field of view, degrees, in (0, 180); gives ``f = (img_h / 2) / tan(vfov / 2)``.
      focal_px:    vertical focal length in pixels, > 0. Give exactly one of ``vfov_deg`` / ``focal_px``.
      cy_px:       principal row in pixels (default ``img_h / 2``, the image centre).
      max_depth_m: depths beyond it are invalid (NaN), metres, > 0.

    Derivation. Camera frame: x right, y down (image rows), z forward along the optical axis. The ray
    through the centre of pixel row ``v`` (``v = row + 0.5``) is ``d = ((u - cx)/fx, (v - cy)/f, 1)`` and its
    points are ``P = t * d``; since d's z-component is 1, the **z-depth of P equals the ray parameter t**.
    Level world frame at the camera: X right, Y straight down (gravity), Z horizontal forward; the ground is
    the plane ``Y = H``. Pitching the camera down by θ is the rotation about the x axis
    ``R = [[1, 0, 0], [0, cosθ, sinθ], [0, -sinθ, cosθ]]`` (camera -> world), which maps the camera's z axis
    to ``(0, sinθ, cosθ)`` and its y axis to ``(0, cosθ, -sinθ)``; the world-down (Y) component of ``R·d``
    is therefore ``cosθ·(v - cy)/f + sinθ`` (the column does not enter). The ray meets the ground where
    ``t·(cosθ·(v - cy)/f + sinθ) = H``, hence

        z(v) = t = H / (cosθ·(v - cy)/f + sinθ).

    A denominator <= 0 means the ray points at or above the horizon and never meets the ground: NaN.
    The map depends only on the image size, so it is computed once per size and returned read-only.
    """

    source = "ground-plane"
    kind: DepthKind = "geometric"

    def __init__(self, height_m: float, pitch_deg: float, vfov_deg: float | None = None,
                 focal_px: float | None = None, cy_px: float | None = None, max_depth_m: float = 100.0) -> None:
        key = "depth.ground_plane"
        self.height_m = _require_number(height_m, f"{key}.height_m", low=0.0)
        self.pitch_deg = _require_number(pitch_deg, f"{key}.pitch_deg", low=-90.0, high=90.0)
        if (vfov_deg is None) == (focal_px is None):
            got = "both" if vfov_deg is not None else "neither"
            raise ConfigError(f"{key}: give exactly one of vfov_deg (vertical field of view, degrees) and "
                              f"focal_px (vertical focal length, pixels), got {got}"
                              + (" (set the other to null, e.g. --set depth.ground_plane.focal_px=null)" if got == "both" else ""))
        self.vfov_deg = None if vfov_deg is None else _require_number(
            vfov_deg, f"{key}.vfov_deg", low=0.0, high=180.0)
        self.focal_px = None if focal_px is None else _require_number(
            focal_px, f"{key}.focal_px", low=0.0)
        self.cy_px = None if cy_px is None else _require_number(cy_px, f"{key}.cy_px")
        self.max_depth_m = _require_number(max_depth_m, f"{key}.max_depth_m", low=0.0)
        self._cache: dict[tuple[int, int], DepthMap] = {}

    def focal_for(self, img_h: int) -> float:
        """Vertical focal length in pixels for images ``img_h`` rows high."""
        if self.focal_px is not None:
            return self.focal_px
        return (img_h / 2.0) / math.tan(math.radians(self.vfov_deg) / 2.0)

    def depth_for_size(self, height: int, width: int) -> DepthMap:
        """The (height, width) float32 read-only depth map (metres, NaN = invalid), cached per size."""
        size = (int(height), int(width))
        cached = self._cache.get(size)
        if cached is not None:
            return cached
        h, w = size
        cy = self.cy_px if self.cy_px is not None else h / 2.0
        z = ground_plane_z(np.arange(h) + 0.5, self.height_m, self.pitch_deg, self.focal_for(h), cy)
        with np.errstate(invalid="ignore"):
            z[z > self.max_depth_m] = np.nan
        metres = np.ascontiguousarray(np.broadcast_to(z.astype(np.float32)[:, None], (h, w)))
        metres.setflags(write=False)
        depth = DepthMap(metres, self.source, self.kind)
        self._cache[size] = depth
        return depth

    def __call__(self, frame: Frame) -> DepthMap:
        """(frame.height, frame.width) float32 metres, the same read-only map for every frame of a size."""
        return self.depth_for_size(frame.height, frame.width)


# --------------------------------------------------------------------------------------------------
# Model cards
# --------------------------------------------------------------------------------------------------

LAYOUTS = ("nchw", "nhwc")
COLOURS = ("rgb", "bgr")
MODEL_KINDS = ("metric", "relative-inverse", "relative-depth", "normalized")
RELATIVE_KINDS = ("relative-inverse", "relative-depth")
CARD_REQUIRED_KEYS = ("name", "model", "input", "output", "layout", "size", "colour", "scale", "mean", "std", "kind")
# Written by the exporters (python -m export) for people and tools; not used at run time.
CARD_INFO_KEYS = ("family", "notes")
CARD_KEYS = CARD_REQUIRED_KEYS + ("max_depth_m", "calibration") + CARD_INFO_KEYS
CALIBRATION_KEYS = ("scale", "shift")


@dataclass(frozen=True)
class Calibration:
    """Affine calibration of a relative model: ``scale`` (non-zero) and ``shift``, finite floats.

    relative-depth: metres = scale * y + shift. relative-inverse: 1 / metres = scale * y + shift.
    """

    scale: float
    shift: float

    def __post_init__(self) -> None:
        for key in CALIBRATION_KEYS:
            value = getattr(self, key)
            if not _is_number(value) or not math.isfinite(float(value)):
                raise ConfigError(f"calibration.{key} must be a finite number, got {_fmt(value)}")
            object.__setattr__(self, key, float(value))
        if self.scale == 0.0:
            raise ConfigError("calibration.scale must be non-zero, got 0")


@dataclass(frozen=True)
class ModelCard:
    """How to run an ONNX depth network and turn its output into metres (see the module docstring).

    name: str; model: Path of the .onnx (absolute once loaded by :func:`load_card`); input / output: tensor
    names; layout: ``nchw`` | ``nhwc``; size: (height, width) network input in pixels; colour: ``rgb`` |
    ``bgr``; scale: float > 0 multiplying uint8 values; mean / std: 3 floats each, in the card's colour order
    (std > 0); kind: one of :data:`MODEL_KINDS`; max_depth_m: metres (> 0, required for ``normalized``);
    calibration: :class:`Calibration` or None (relative kinds only); card_path: the YAML file, for messages.

    To calibrate at run time, ``dataclasses.replace(card, calibration=Calibration(scale, shift))``.
    """

    name: str
    model: Path
    input: str
    output: str
    layout: str
    size: tuple[int, int]
    colour: str
    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    kind: str
    max_depth_m: float | None = None
    calibration: Calibration | None = None
    card_path: Path | None = None

    @property
    def label(self) -> str:
        """How messages name this card: its file, or its name when built in code."""
        return str(self.card_path) if self.card_path is not None else f"'{self.name}'"

    def __post_init__(self) -> None:
        where = f"model card {self.label}"
        if self.layout not in LAYOUTS:
            raise ConfigError(f"{where}: layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if self.colour not in COLOURS:
            raise ConfigError(f"{where}: colour must be one of {', '.join(COLOURS)}, got {self.colour!r}")
        if self.kind not in MODEL_KINDS:
            raise ConfigError(f"{where}: kind must be one of {', '.join(MODEL_KINDS)}, got {self.kind!r}")
        if not (len(self.size) == 2 and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0
                                            for s in self.size)):
            raise ConfigError(f"{where}: size must be [height, width], two positive integers of pixels, "
                              f"got {list(self.size)!r}")
        if not (_is_number(self.scale) and math.isfinite(self.scale) and self.scale > 0):
            raise ConfigError(f"{where}: scale must be a finite number > 0 (e.g. 0.00392156862745098 for 1/255), "
                              f"got {_fmt(self.scale)}")
        for key in ("mean", "std"):
            values = getattr(self, key)
            if not (len(values) == 3 and all(_is_number(v) and math.isfinite(v) for v in values)):
                raise ConfigError(f"{where}: {key} must be a list of 3 finite numbers (one per channel), "
                                  f"got {list(values)!r}")
        if not all(v > 0 for v in self.std):
            raise ConfigError(f"{where}: std must be 3 numbers > 0, got {list(self.std)!r}")
        if self.max_depth_m is not None and not (
                _is_number(self.max_depth_m) and math.isfinite(self.max_depth_m) and self.max_depth_m > 0):
            raise ConfigError(f"{where}: max_depth_m must be a finite number of metres > 0, got {_fmt(self.max_depth_m)}")
        if self.kind == "normalized" and self.max_depth_m is None:
            raise ConfigError(f"{where}: kind normalized needs max_depth_m (the metres that an output of 1.0 "
                              f"means, e.g. 'max_depth_m: 10' for NYU Depth V2)")
        if self.calibration is not None and self.kind not in RELATIVE_KINDS:
            raise ConfigError(f"{where}: calibration applies only to kind {' or '.join(RELATIVE_KINDS)}, "
                              f"but kind is {self.kind}; remove the calibration block")


def _suggest(key: str, valid: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    if close:
        return f"did you mean '{close[0]}'?"
    return f"valid keys: {', '.join(valid)}"


def _card_number(where: str, key: str, value: Any, example: str) -> float:
    if not _is_number(value) or not math.isfinite(float(value)):
        raise ConfigError(f"{where}: {key} must be a finite number (e.g. {example}), got {value!r}")
    return float(value)


def _card_str(where: str, key: str, value: Any, example: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: {key} must be a non-empty string (e.g. {example}), got {value!r}")
    return value


def _card_list(where: str, key: str, value: Any, n: int, example: str) -> list:
    if not isinstance(value, (list, tuple)) or len(value) != n:
        raise ConfigError(f"{where}: {key} must be a list of {n} values (e.g. {example}), got {value!r}")
    return list(value)


def load_card(path: str | Path) -> ModelCard:
    """Read and validate a model card YAML file (see the module docstring for the keys).

    The ``model`` path is resolved relative to the card's folder and must exist. Every problem raises
    :class:`ConfigError` naming the card file, the key, the value received and what is allowed.
    """
    path = Path(path)
    where = f"model card {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{where}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot be read: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: must be a mapping of keys ({', '.join(CARD_REQUIRED_KEYS)}), "
                          f"got {type(data).__name__}")
    for key in data:
        if key not in CARD_KEYS:
            raise ConfigError(f"{where}: unknown key {str(key)!r} ({_suggest(str(key), CARD_KEYS)})")
    missing = [k for k in CARD_REQUIRED_KEYS if k not in data]
    if missing:
        raise ConfigError(f"{where}: missing required key{'s' if len(missing) > 1 else ''} "
                          f"{', '.join(missing)} (required: {', '.join(CARD_REQUIRED_KEYS)})")

    name = _card_str(where, "name", data["name"], "'midas-small'")
    model_rel = _card_str(where, "model", data["model"], "'midas_v21_small_256.onnx'")
    model = resolve_model((path.parent / model_rel).resolve())  # a manifest name in models/: the store's file
    if not model.is_file():
        raise ConfigError(f"{where}: model {model_rel!r} not found (looked for {model}); the path is relative "
                          f"to the card's folder")
    size = _card_list(where, "size", data["size"], 2, "[256, 256]")
    mean = _card_list(where, "mean", data["mean"], 3, "[0.485, 0.456, 0.406]")
    std = _card_list(where, "std", data["std"], 3, "[0.229, 0.224, 0.225]")
    mean = [_card_number(where, "mean", v, "[0.485, 0.456, 0.406]") for v in mean]
    std = [_card_number(where, "std", v, "[0.229, 0.224, 0.225]") for v in std]

    max_depth_m = data.get("max_depth_m")
    if max_depth_m is not None:
        max_depth_m = _card_number(where, "max_depth_m", max_depth_m, "10")

    calibration = None
    calib = data.get("calibration")
    if calib is not None:
        if not isinstance(calib, dict):
            raise ConfigError(f"{where}: calibration must be a mapping {{scale: ..., shift: ...}}, got {calib!r}")
        for key in calib:
            if key not in CALIBRATION_KEYS:
                raise ConfigError(f"{where}: unknown key 'calibration.{key}' "
                                  f"({_suggest(str(key), CALIBRATION_KEYS)})")
        for key in CALIBRATION_KEYS:
            if key not in calib:
                raise ConfigError(f"{where}: calibration needs both scale and shift, missing {key}")
        c_scale = _card_number(where, "calibration.scale", calib["scale"], "0.0012")
        c_shift = _card_number(where, "calibration.shift", calib["shift"], "0.05")
        if c_scale == 0.0:
            raise ConfigError(f"{where}: calibration.scale must be non-zero, got 0")
        calibration = Calibration(c_scale, c_shift)

    return ModelCard(
        name=name,
        model=model,
        input=_card_str(where, "input", data["input"], "'image'"),
        output=_card_str(where, "output", data["output"], "'depth'"),
        layout=data["layout"],
        size=(size[0], size[1]),
        colour=data["colour"],
        scale=_card_number(where, "scale", data["scale"], "0.00392156862745098"),
        mean=(mean[0], mean[1], mean[2]),
        std=(std[0], std[1], std[2]),
        kind=data["kind"],
        max_depth_m=max_depth_m,
        calibration=calibration,
        card_path=path,
    )


# --------------------------------------------------------------------------------------------------
# ONNX depth networks
# --------------------------------------------------------------------------------------------------

class OnnxDepth(DepthProvider):
    """An ONNX depth network run with ONNX Runtime, described by a :class:`ModelCard`.

    ``source`` is the card's name; ``kind`` is ``metric`` for metric / normalized cards and
    ``relative+calibrated`` for calibrated relative cards. A relative card without calibration raises
    :class:`DepthError` here: it cannot give metres.

    Per frame (``__call__``): (H, W, 3) uint8 BGR -> colour order of the card -> ``cv2.resize`` to the card's
    size (INTER_LINEAR) -> float32 × scale -> (x − mean) / std -> layout (NCHW / NHWC) + batch dim ->
    inference -> output squeezed to (h, w) (accepts (1, 1, h, w), (1, h, w), (h, w)) -> metres (see the
    module docstring; non-finite or <= 0 -> NaN; beyond ``max_depth_m`` -> NaN) -> resized to (H, W) with
    INTER_LINEAR, averaging only valid pixels, with the validity mask resized INTER_NEAREST and
    re-applied -> DepthMap of (H, W) float32 metres.
    """

    def __init__(self, card: ModelCard, threads: int = 1, engine_options=None) -> None:
        if card.kind in RELATIVE_KINDS and card.calibration is None:
            raise DepthError(
                f"depth model '{card.name}' (card {card.label}) "
                f"gives {card.kind} depth and has no calibration: metres, and so --closer-than/--further-than, "
                f"need 'calibration: {{scale: ..., shift: ...}}' in the card")
        if not isinstance(threads, (int, np.integer)) or isinstance(threads, bool) or threads < 1:
            raise ConfigError(f"depth model threads must be an integer >= 1, got {threads!r}")
        self.card = card
        self.threads = int(threads)
        self.engine_options = engine_options  # engines.EngineOptions; None = ONNX Runtime on the CPU
        self.source = card.name
        self.kind = "relative+calibrated" if card.kind in RELATIVE_KINDS else "metric"
        self._engine = None
        self._in_dtype = np.dtype(np.float32)
        mean = np.asarray(card.mean, dtype=np.float32)
        std = np.asarray(card.std, dtype=np.float32)
        self._mul = (np.float32(card.scale) / std).astype(np.float32)
        self._add = (-mean / std).astype(np.float32)

    @property
    def is_open(self) -> bool:
        return self._engine is not None

    @property
    def engine(self):
        """The open inference engine (None until ``open()``): which backend and providers really run."""
        return self._engine

    def open(self) -> None:
        """Create the engine (on the backend ``engine_options`` names) and check the card's tensor names
        and input shape against it.

        Raises ConfigError when the card's input/output names or size do not match the model (listing
        what the model has); EngineError from the engine when the model cannot be loaded.
        """
        if self._engine is not None:
            return
        from engines.backends import EngineOptions, create_engine

        card = self.card
        if not Path(card.model).is_file():
            raise ConfigError(f"model card {card.label}: model file {card.model} not found")
        engine = create_engine(card.model, self.engine_options or EngineOptions("ort-cpu"), threads=self.threads,
                               shapes={card.input: self._input_shape()})
        engine.open()
        try:
            self._check_engine(engine)
        except BaseException:
            engine.close()
            raise
        self._engine = engine

    def _check_engine(self, engine) -> None:
        card = self.card
        where = f"model card {card.label}"
        if card.input not in engine.inputs:
            raise ConfigError(f"{where}: input {card.input!r} is not an input of {Path(card.model).name}; "
                              f"the model's inputs are: {', '.join(engine.inputs)}")
        if card.output not in engine.outputs:
            raise ConfigError(f"{where}: output {card.output!r} is not an output of {Path(card.model).name}; "
                              f"the model's outputs are: {', '.join(engine.outputs)}")
        spec = engine.inputs[card.input]
        want = self._input_shape()
        shape = tuple(spec.shape)
        if len(shape) != 4 or any(d is not None and d != w for d, w in zip(shape, want)):
            shown = tuple("?" if d is None else d for d in shape)
            raise ConfigError(f"{where}: size {list(card.size)} with layout {card.layout} gives input shape {want}, "
                              f"but the model's input {card.input!r} has shape {shown}; fix size/layout in the card")
        dtype = np.dtype(spec.dtype)
        if dtype.kind != "f":
            raise ConfigError(f"{where}: input {card.input!r} has dtype {dtype}, expected a float tensor "
                              f"(float32 or float16) of normalised pixels")
        self._in_dtype = dtype

    def _input_shape(self) -> tuple[int, int, int, int]:
        h, w = self.card.size
        return (1, 3, h, w) if self.card.layout == "nchw" else (1, h, w, 3)

    def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 BGR -> network input, (1, 3, h, w) or (1, h, w, 3) in the model's float dtype."""
        card = self.card
        if card.colour == "rgb":
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        h, w = card.size
        if image.shape[:2] != (h, w):
            image = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
        x = image.astype(np.float32) * self._mul + self._add
        if card.layout == "nchw":
            x = x.transpose(2, 0, 1)
        return np.ascontiguousarray(x[None], dtype=self._in_dtype)

    def to_metres(self, out: np.ndarray) -> np.ndarray:
        """Network output (h, w) -> (h, w) float32 metres (a new array), NaN where invalid."""
        card = self.card
        y = np.asarray(out, dtype=np.float32)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if card.kind == "metric":
                metres = y.copy()
            elif card.kind == "normalized":
                metres = y * np.float32(card.max_depth_m)
            elif card.kind == "relative-depth":
                metres = np.float32(card.calibration.scale) * y + np.float32(card.calibration.shift)
            else:
                metres = np.float32(1.0) / (np.float32(card.calibration.scale) * y + np.float32(card.calibration.shift))
            invalid = ~np.isfinite(metres) | (metres <= 0)
            if card.max_depth_m is not None and card.kind != "normalized":
                invalid |= metres > card.max_depth_m
        metres[invalid] = np.nan
        return metres

    def _squeeze(self, out: np.ndarray) -> np.ndarray:
        shape = out.shape
        if out.ndim == 4 and shape[:2] == (1, 1):
            return out[0, 0]
        if out.ndim == 3 and shape[0] == 1:
            return out[0]
        if out.ndim == 2:
            return out
        raise EngineError(f"depth model '{self.card.name}': output {self.card.output!r} has shape {shape}, "
                          f"expected (1, 1, h, w), (1, h, w) or (h, w)")

    def __call__(self, frame: Frame) -> DepthMap:
        """Depth of ``frame``: (frame.height, frame.width) float32 metres along the optical axis, NaN = invalid."""
        if self._engine is None:
            raise EngineError(f"depth model '{self.card.name}' is not open: call open() or use it as a "
                              f"context manager ('with provider: ...') before calling it")
        x = self.preprocess(frame.image)
        out = self._engine.infer({self.card.input: x})[self.card.output]
        metres = self.to_metres(self._squeeze(np.asarray(out)))
        return DepthMap(_resize_depth(metres, frame.height, frame.width), self.source, self.kind)


def _resize_depth(metres: np.ndarray, height: int, width: int) -> np.ndarray:
    """(h, w) float32 metres with NaN holes -> (height, width) float32; NaN stays NaN.

    Bilinear over valid pixels only (a normalised convolution: resize depth·valid and valid, divide), so
    valid pixels next to a hole are not pulled towards 0; the hole itself is the validity mask resized
    with INTER_NEAREST.
    """
    if metres.shape == (height, width):
        return metres
    dsize = (width, height)
    valid = np.isfinite(metres)
    if valid.all():
        return cv2.resize(metres, dsize, interpolation=cv2.INTER_LINEAR)
    weight = valid.astype(np.float32)
    num = cv2.resize(np.where(valid, metres, np.float32(0)), dsize, interpolation=cv2.INTER_LINEAR)
    den = cv2.resize(weight, dsize, interpolation=cv2.INTER_LINEAR)
    keep = cv2.resize(valid.view(np.uint8), dsize, interpolation=cv2.INTER_NEAREST).astype(bool) & (den > 1e-6)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / den
    out[~keep] = np.nan
    return out.astype(np.float32, copy=False)


def open_depth_model(path: str | Path, threads: int = 1, engine_options=None) -> OnnxDepth:
    """An :class:`OnnxDepth` from a model card (``.yaml`` / ``.yml``) or an ``.onnx`` with a sidecar card.

    ``x.onnx`` uses ``x.yaml`` (or ``x.yml``) next to it. The provider is returned **not yet opened**:
    ``with open_depth_model(p) as depth: ...`` or call ``.open()``. ConfigError for a missing file, an
    unknown suffix or an .onnx without a card; DepthError for an uncalibrated relative model.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return OnnxDepth(load_card(path), threads=threads, engine_options=engine_options)
    if suffix == ".onnx":
        if not path.is_file():
            raise ConfigError(f"depth model {path} not found")
        for card_suffix in (".yaml", ".yml"):
            card = path.with_suffix(card_suffix)
            if card.is_file():
                return OnnxDepth(load_card(card), threads=threads, engine_options=engine_options)
        raise ConfigError(f"depth model {path} has no model card: write {path.with_suffix('.yaml')} saying how to "
                          f"feed the network and how its output becomes metres (keys: {', '.join(CARD_KEYS)}; "
                          f"an example card is in the docstring of stream/depth.py and in the README)")
    raise ConfigError(f"depth model {path}: expected a model card (.yaml / .yml) or an .onnx file with a card "
                      f"next to it, got {suffix or 'no suffix'!r}")
