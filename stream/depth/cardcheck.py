"""A depth model card against the model it names: the ONNX's real tensors, checked when the model loads.

:func:`check_card` compares the card (:mod:`depthstream.schema.card`) with the engine's inputs and outputs
(:class:`~engines.base.TensorSpec`: name, dtype, shape with None for a dynamic dimension) and raises one
:class:`~depthstream.errors.ConfigError` line naming the first mismatch: a detector given as a depth model,
a tensor name, the number of inputs, a dtype, a rank, a size (a dynamic dimension is accepted where the card
gives the size), an output that is not a map of the input's field of view. :func:`output_map` takes the
(h, w) map out of a real output by the card's ``output_layout`` and says what is wrong when it cannot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from depthstream.errors import ConfigError, EngineError
from depthstream.schema.card import ModelCard

from ..detectors import infer_layout

__all__ = ["check_card", "output_map", "OUTPUT_FORMS"]

OUTPUT_FORMS = {"nchw": "[1, 1, h, w]", "nhwc": "[1, h, w, 1]", "hw": "[1, h, w] or [h, w]"}


def _dims(shape) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _fits(dim: int | None, want: int) -> bool:
    return dim is None or dim == want


def output_layout_of(shape: tuple) -> str | None:
    """The output layout a shape can only be (None: none, or more than one), for hints in messages."""
    fits = [name for name in OUTPUT_FORMS if _spatial(shape, name) is not None]
    return fits[0] if len(fits) == 1 else None


def _spatial(shape: tuple, layout: str) -> tuple | None:
    """(h, w) of an output ``shape`` read with ``layout`` (entries may be None), or None when it does not fit."""
    if layout == "nchw" and len(shape) == 4 and _fits(shape[0], 1) and _fits(shape[1], 1):
        return shape[2], shape[3]
    if layout == "nhwc" and len(shape) == 4 and _fits(shape[0], 1) and _fits(shape[3], 1):
        return shape[1], shape[2]
    if layout == "hw" and len(shape) == 3 and _fits(shape[0], 1):
        return shape[1], shape[2]
    if layout == "hw" and len(shape) == 2:
        return shape[0], shape[1]
    return None


def _refuse_detector(card: ModelCard, where: str, model: str, inputs, outputs) -> None:
    if len(inputs) != 1:
        return
    spec = next(iter(inputs.values()))
    shape = tuple(spec.shape)
    if len(shape) != 4 or shape[1] != 3 or shape[2] is None or shape[3] is None:
        return
    for out in outputs.values():
        info = infer_layout(tuple(out.shape), (int(shape[2]), int(shape[3])))
        if info is not None:
            raise ConfigError(f"{where}: {model} is a YOLO detector (layout {info.layout}: output {out.describe()}), not "
                              f"a depth network; give it to --detector (detect.model). --depth-model takes a depth "
                              f"network's card (README, 'Depth: where the metres come from')")


def check_card(card: ModelCard, inputs: Mapping, outputs: Mapping, model: str | Path | None = None) -> None:
    """ConfigError (one line) at the first way the card does not describe the model's tensors."""
    where = f"model card {card.label}"
    name = Path(model).name if model is not None else Path(card.model).name
    _refuse_detector(card, where, name, inputs, outputs)
    if card.input not in inputs:
        raise ConfigError(f"{where}: input {card.input!r} is not an input of {name}; the model's inputs are: "
                          f"{', '.join(inputs)}")
    if len(inputs) != 1:
        raise ConfigError(f"{where}: {name} has {len(inputs)} inputs ({', '.join(s.describe() for s in inputs.values())}); "
                          f"a depth card feeds one image input")
    if card.output not in outputs:
        raise ConfigError(f"{where}: output {card.output!r} is not an output of {name}; the model's outputs are: "
                          f"{', '.join(outputs)}")
    spec = inputs[card.input]
    dtype = np.dtype(spec.dtype)
    if dtype != np.dtype(card.input_dtype):
        raise ConfigError(f"{where}: input {card.input!r} of {name} is {spec.describe()}, but the card says input_dtype "
                          f"{card.input_dtype}; set input_dtype: {dtype.name}"
                          + ("" if dtype.name in ("float32", "float16", "uint8") else
                             " (a depth card feeds float32, float16 or uint8 images)"))
    want = card.input_shape
    shape = tuple(spec.shape)
    if len(shape) != 4 or any(not _fits(d, w) for d, w in zip(shape, want)):
        raise ConfigError(f"{where}: size {list(card.size)} with layout {card.layout} gives input shape {want}, "
                          f"but the model's input {card.input!r} has shape {tuple('?' if d is None else d for d in shape)}; "
                          f"fix size/layout in the card")
    out = outputs[card.output]
    if np.dtype(out.dtype).kind != "f":
        raise ConfigError(f"{where}: output {card.output!r} of {name} is {out.describe()}: a depth map is float32 or "
                          f"float16; is this the right output?")
    oshape = tuple(out.shape)
    spatial = _spatial(oshape, card.output_layout)
    if spatial is None:
        hint = output_layout_of(oshape)
        raise ConfigError(f"{where}: output {card.output!r} of {name} has shape {_dims(oshape)}, but output_layout "
                          f"{card.output_layout} means {OUTPUT_FORMS[card.output_layout]}"
                          + (f"; set output_layout: {hint}" if hint else
                             f"; a depth map's output is {', '.join(f'{k} {v}' for k, v in OUTPUT_FORMS.items())}"))
    oh, ow = spatial
    if oh is not None and ow is not None:
        check_map_aspect((int(oh), int(ow)), card, where, f"output {card.output!r} of {name} {_dims(oshape)}",
                         ConfigError)


def check_map_aspect(out_hw: tuple[int, int], card: ModelCard, where: str, what: str, error=EngineError) -> None:
    """A depth map covers the input's field of view: its aspect ratio is the input's, to within one output pixel."""
    oh, ow = out_hw
    h, w = card.size
    if abs(oh - ow * h / w) > 1.0:
        raise error(f"{where}: {what} is not a depth map of the {h}x{w} input (a map has the input's aspect ratio "
                    f"{h}:{w}, this one {oh}:{ow}); is this the network's depth output?")


def output_map(out: np.ndarray, card: ModelCard) -> np.ndarray:
    """The (h, w) map inside a real output array, read with the card's ``output_layout``; EngineError (one
    line) when its shape does not fit (a dynamic output can only be checked here)."""
    shape = tuple(out.shape)
    spatial = _spatial(shape, card.output_layout)
    if spatial is None:
        raise EngineError(f"depth model '{card.name}': output {card.output!r} has shape {_dims(shape)}, expected "
                          f"{OUTPUT_FORMS[card.output_layout]} (output_layout {card.output_layout} in {card.label})")
    if card.output_layout == "nchw":
        m = out[0, 0]
    elif card.output_layout == "nhwc":
        m = out[0, :, :, 0]
    else:
        m = out[0] if out.ndim == 3 else out
    check_map_aspect(m.shape, card, f"depth model '{card.name}'", f"output {card.output!r} {_dims(shape)}")
    return m
