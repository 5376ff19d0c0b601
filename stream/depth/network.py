"""ONNX depth networks described by a model card (:mod:`depthstream.schema.card`), run with the product's
engines.

How the network's output becomes metres is the card's ``kind`` (see the card module). Non-finite or
non-positive metres become NaN. The output is never min-max normalised per frame: that would change the
unit with every frame's content.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from depthstream.errors import ConfigError, DepthError, EngineError
from depthstream.schema.card import ModelCard, load_card
from depthstream.types import DepthMap, Frame

from .base import DepthProvider


class OnnxDepth(DepthProvider):
    """An ONNX depth network described by a validated :class:`~depthstream.schema.card.ModelCard`.

    ``source`` is the card's name; ``kind`` is ``metric`` for metric / normalized cards and
    ``relative+calibrated`` for calibrated relative cards. A relative card without calibration raises
    :class:`DepthError` here: it cannot give metres.

    Per frame (``__call__``): (H, W, 3) uint8 BGR -> colour order of the card -> ``cv2.resize`` to the card's
    size (INTER_LINEAR) -> float32 × scale -> (x − mean) / std -> layout (NCHW / NHWC) + batch dim ->
    inference -> output squeezed to (h, w) (accepts (1, 1, h, w), (1, h, w), (h, w)) -> metres (see the
    card's ``kind``; non-finite or <= 0 -> NaN; beyond ``max_depth_m`` -> NaN) -> resized to (H, W) with
    INTER_LINEAR, averaging only valid pixels, with the validity mask resized INTER_NEAREST and
    re-applied -> DepthMap of (H, W) float32 metres.
    """

    def __init__(self, card: ModelCard, threads: int = 1, engine_options=None, *, autoscaled: bool = False) -> None:
        if card.relative and card.calibration is None and not autoscaled:
            raise DepthError(
                f"depth model '{card.name}' (card {card.label}) "
                f"gives {card.kind} depth and has no calibration: metres, and so --closer-than/--further-than, "
                f"need 'calibration: {{scale: ..., shift: ...}}' in the card, or the automatic scale from size priors "
                f"(depth.autoscale.mode: auto or always)")
        self.card = card
        self.threads = threads
        self.engine_options = engine_options  # engines.EngineOptions; None = ONNX Runtime on the CPU
        self.source = card.name
        self.kind = "relative+calibrated" if card.relative else "metric"
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
        from engines.backends import EngineOptions
        from engines.factory import create_engine

        card = self.card
        engine = create_engine(card.model, self.engine_options or EngineOptions("ort-cpu"), threads=self.threads,
                               shapes={card.input: self.card.input_shape})
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
        want = self.card.input_shape
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

    def raw_output(self, frame: Frame) -> np.ndarray:
        """The network's output for ``frame`` as it comes, (h, w) float32 at the network's resolution (see the
        card's ``kind`` for what it means; :meth:`to_metres` turns it into metres)."""
        if self._engine is None:
            raise EngineError(f"depth model '{self.card.name}' is not open: call open() or use it as a "
                              f"context manager ('with provider: ...') before calling it")
        x = self.preprocess(frame.image)
        out = self._engine.infer({self.card.input: x})[self.card.output]
        return np.asarray(self._squeeze(np.asarray(out)), dtype=np.float32)

    def __call__(self, frame: Frame) -> DepthMap:
        """Depth of ``frame``: (frame.height, frame.width) float32 metres along the optical axis, NaN = invalid."""
        metres = self.to_metres(self.raw_output(frame))
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


def open_depth_model(path: str | Path, threads: int = 1, engine_options=None, *, autoscaled: bool = False) -> OnnxDepth:
    """An :class:`OnnxDepth` from a model card (``.yaml`` / ``.yml``) or an ``.onnx`` with a sidecar card.

    ``x.onnx`` uses ``x.yaml`` (or ``x.yml``) next to it. The provider is returned **not yet opened**:
    ``with open_depth_model(p) as depth: ...`` or call ``.open()``. ConfigError for a missing file, an
    unknown suffix or an .onnx without a card; DepthError for an uncalibrated relative model.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return OnnxDepth(load_card(path), threads=threads, engine_options=engine_options, autoscaled=autoscaled)
    if suffix == ".onnx":
        if not path.is_file():
            raise ConfigError(f"depth model {path} not found")
        for card_suffix in (".yaml", ".yml"):
            card = path.with_suffix(card_suffix)
            if card.is_file():
                return OnnxDepth(load_card(card), threads=threads, engine_options=engine_options, autoscaled=autoscaled)
        raise ConfigError(f"depth model {path} has no model card: write {path.with_suffix('.yaml')} saying how to "
                          f"feed the network and how its output becomes metres (an example card "
                          f"is in the docstring of depthstream/schema/card.py and in the README)")
    raise ConfigError(f"depth model {path}: expected a model card (.yaml / .yml) or an .onnx file with a card "
                      f"next to it, got {suffix or 'no suffix'!r}")
