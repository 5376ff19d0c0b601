"""ONNX depth networks described by a model card (:mod:`depthstream.schema.card`), run with the product's
engines.

How the network's output becomes metres is the card's ``kind`` (see the card module), then the camera
profile's depth calibration for this model when there is one. Non-finite or non-positive metres become NaN.
The output is never min-max normalised per frame: that would change the unit with every frame's content.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np

from depthstream.errors import ConfigError, DepthError, EngineError
from depthstream.schema.camera import CameraProfile
from depthstream.schema.card import Calibration, ModelCard, load_card
from depthstream.types import DepthMap, Frame

from .base import DepthProvider
from .cardcheck import check_card, output_map
from .geometry import Placement, map_to_frame, place, to_input

DOMAIN_WORDS = {"indoor": "indoor", "outdoor": "outdoor", "driving": "driving", "any": "any scene"}


def _a(word: str) -> str:
    """``an indoor``, ``a driving``."""
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def covers(domain: str, scene: str) -> bool:
    """Does a network trained for ``domain`` cover a ``scene`` (a camera profile's)? ``any`` covers every
    scene; ``outdoor`` covers ``driving`` (a street seen from a car is outdoors), not the reverse."""
    return domain == "any" or domain == scene or (domain == "outdoor" and scene == "driving")


class OnnxDepth(DepthProvider):
    """An ONNX depth network described by a validated :class:`~depthstream.schema.card.ModelCard`.

    ``source`` is the card's name; ``kind`` is ``metric`` for metric / normalized cards and
    ``relative+calibrated`` for calibrated relative cards. ``camera`` (optional) is the source's camera
    profile: its depth calibration for this model (``depth_calibrations``, by the card's name) replaces a
    relative card's calibration or rescales a metric one, and its ``scene`` is compared with the card's
    ``domain``. A relative card with no calibration from either raises :class:`DepthError` here: it cannot
    give metres.

    Per frame (``__call__``): (H, W, 3) uint8 BGR -> colour order of the card -> resized as the card's
    ``resize`` says (:mod:`stream.depth.geometry`) -> uint8 as it is, or float × scale, (x − mean) / std ->
    layout (NCHW / NHWC) + batch dim, in the card's ``input_dtype`` -> inference -> the (h, w) map by the card's
    ``output_layout`` -> metres (the card's ``kind``, then the profile's calibration; non-finite or <= 0 ->
    NaN; beyond ``max_depth_m`` -> NaN) -> mapped back onto the frame (stretch: resized; letterbox: the
    padding dropped; crop: the cut-off sides NaN), averaging only valid pixels -> DepthMap of (H, W) float32
    metres with the card's valid range and a state in words (``indoor, metric``).
    """

    def __init__(self, card: ModelCard, threads: int = 1, engine_options=None, *,
                 camera: CameraProfile | None = None, autoscaled: bool = False) -> None:
        profile_cal = camera.depth_calibration_for(card.name) if camera is not None else None
        self.rescale: tuple[float, float] | None = None
        if profile_cal is not None:
            want = card.kind if card.relative else "metric"
            if profile_cal.output != want:
                raise ConfigError(f"camera profile '{camera.name}': its depth calibration for model '{card.name}' is for "
                                  f"output {profile_cal.output}, but card {card.label} gives {want} output; calibrate "
                                  f"again (python -m stream calibrate distance|rgbd --depth-model {card.label} ...)")
            if card.relative:
                card = dataclasses.replace(card, calibration=Calibration(profile_cal.scale, profile_cal.shift))
            else:
                self.rescale = (float(profile_cal.scale), float(profile_cal.shift))
        if card.relative and card.calibration is None and not autoscaled:
            raise DepthError(
                f"depth model '{card.name}' (card {card.label}) "
                f"gives {card.kind} depth and has no calibration: metres, and so --closer-than/--further-than, "
                f"need 'calibration: {{scale: ..., shift: ...}}' in the card or a depth calibration for it in the "
                f"camera profile (python -m stream calibrate distance|rgbd --depth-model ...), or the automatic scale "
                f"from size priors (depth.autoscale.mode: auto or always)")
        self.card = card
        self.camera = camera
        self.calibrated_by = camera.name if profile_cal is not None else None
        self.threads = threads
        self.engine_options = engine_options  # engines.EngineOptions; None = ONNX Runtime on the CPU
        self.source = card.name
        self.kind = "relative+calibrated" if card.relative else "metric"
        self.valid_range_m = (tuple(float(v) for v in profile_cal.range_m) if profile_cal is not None and card.relative
                              else card.valid_range)
        scene = getattr(camera, "scene", None) if camera is not None else None
        self.domain_note = (None if scene is None or covers(card.domain, scene) else
                            f"out of domain: {card.name} is {_a(card.domain)} model, camera '{camera.name}' films "
                            f"{_a(scene)} scene")
        self.state = self._state(scene)
        self._engine = None
        mean = np.asarray(card.pixel_mean, dtype=np.float32)
        std = np.asarray(card.pixel_std, dtype=np.float32)
        self._mul = (np.float32(card.pixel_scale) / std).astype(np.float32)
        self._add = (-mean / std).astype(np.float32)

    def _state(self, scene: str | None) -> str:
        card = self.card
        words = [DOMAIN_WORDS[card.domain], "metric" if not card.relative else "relative, calibrated"]
        if self.calibrated_by is not None:
            words.append(f"calibrated on {self.calibrated_by}")
        if self.domain_note is not None:
            words = [f"{card.domain} model on {_a(scene)} scene: out of domain"]
        return ", ".join(words)

    @property
    def is_open(self) -> bool:
        return self._engine is not None

    @property
    def engine(self):
        """The open inference engine (None until ``open()``): which backend and providers really run."""
        return self._engine

    def open(self) -> None:
        """Create the engine (on the backend ``engine_options`` names) and check the card against the model's
        real tensors (:func:`~stream.depth.cardcheck.check_card`).

        Raises ConfigError when the card does not describe the model (one line naming the mismatch), or
        the model is a detector; EngineError from the engine when the model cannot be loaded.
        """
        if self._engine is not None:
            return
        from engines.backends import EngineOptions
        from engines.factory import create_engine

        card = self.card
        engine = create_engine(card.model, self.engine_options or EngineOptions("ort-cpu"), threads=self.threads,
                               shapes={card.input: card.input_shape})
        engine.open()
        try:
            check_card(card, engine.inputs, engine.outputs, card.model)
        except BaseException:
            engine.close()
            raise
        self._engine = engine

    def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()

    def preprocess(self, image: np.ndarray):
        """(H, W, 3) uint8 BGR -> (network input in the card's dtype and layout, its
        :class:`~stream.depth.geometry.Placement`)."""
        card = self.card
        if card.colour == "rgb":
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        placement = place(image.shape[:2], card.size, card.resize)
        pixels = to_input(image, placement, card.pad)
        if card.input_dtype == "uint8":
            x = pixels
        else:
            x = pixels.astype(np.float32) * self._mul + self._add
        if card.layout == "nchw":
            x = x.transpose(2, 0, 1)
        return np.ascontiguousarray(x[None], dtype=card.input_dtype), placement

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
            if self.rescale is not None:
                metres = np.float32(self.rescale[0]) * metres + np.float32(self.rescale[1])
            invalid = ~np.isfinite(metres) | (metres <= 0)
            if card.max_depth_m is not None and card.kind != "normalized":
                invalid |= metres > card.max_depth_m
        metres[invalid] = np.nan
        return metres

    def raw_output(self, frame: Frame) -> tuple[np.ndarray, Placement]:
        """The network's output for ``frame`` as it comes, (h, w) float32 at the network's resolution (see the
        card's ``kind`` for what it means; :meth:`to_metres` turns it into metres), and where the network's
        input sat on the frame (:func:`~stream.depth.geometry.map_to_frame` maps a map back)."""
        if self._engine is None:
            raise EngineError(f"depth model '{self.card.name}' is not open: call open() or use it as a "
                              f"context manager ('with provider: ...') before calling it")
        x, placement = self.preprocess(frame.image)
        out = self._engine.infer({self.card.input: x})[self.card.output]
        return output_map(np.asarray(out), self.card), placement

    def __call__(self, frame: Frame) -> DepthMap:
        """Depth of ``frame``: (frame.height, frame.width) float32 metres along the optical axis, NaN = invalid."""
        raw, placement = self.raw_output(frame)
        metres = self.to_metres(raw)
        return DepthMap(map_to_frame(metres, placement), self.source, self.kind, valid_range_m=self.valid_range_m,
                        state=self.state)


def find_card(path: str | Path) -> Path:
    """The card of a depth model given as a card (``.yaml`` / ``.yml``) or as an ``.onnx`` with a card of the
    same name beside it; ConfigError for a missing file, an unknown suffix or an .onnx without a card."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return path
    if suffix == ".onnx":
        if not path.is_file():
            raise ConfigError(f"depth model {path} not found")
        for card_suffix in (".yaml", ".yml"):
            card = path.with_suffix(card_suffix)
            if card.is_file():
                return card
        raise ConfigError(f"depth model {path} has no model card: write {path.with_suffix('.yaml')} saying how to "
                          f"feed the network and how its output becomes metres (an example card "
                          f"is in the docstring of depthstream/schema/card.py and in the README)")
    raise ConfigError(f"depth model {path}: expected a model card (.yaml / .yml) or an .onnx file with a card "
                      f"next to it, got {suffix or 'no suffix'!r}")


def open_depth_model(path: str | Path, threads: int = 1, engine_options=None, *,
                     camera: CameraProfile | None = None, autoscaled: bool = False) -> OnnxDepth:
    """An :class:`OnnxDepth` from a model card (``.yaml`` / ``.yml``) or an ``.onnx`` with a sidecar card.

    ``x.onnx`` uses ``x.yaml`` (or ``x.yml``) next to it. The provider is returned **not yet opened**:
    ``with open_depth_model(p) as depth: ...`` or call ``.open()``. ConfigError for a missing file, an
    unknown suffix, an .onnx without a card or a detector sidecar; DepthError for an uncalibrated relative model.
    ``camera``: the source's camera profile (its depth calibration for this model and its scene). ``autoscaled``:
    a relative model without a calibration is accepted, its metres to come from the size priors' automatic scale
    (:mod:`stream.depth.scaled`).
    """
    return OnnxDepth(load_card(find_card(path)), threads=threads, engine_options=engine_options, camera=camera,
                     autoscaled=autoscaled)
