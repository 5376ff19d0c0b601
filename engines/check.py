"""Numeric check of two variants of one model: the engine-level parts.

A variant is ``BACKEND[:OPTION]``: BACKEND one of ``auto``, ``ort-cpu``, ``ort-cuda``, ``ort-trt``,
``trt``; OPTION ``fp32`` (the default), ``fp16`` or, for ONNX Runtime, ``noopt`` (graph optimisations
off). FP16 means:

- ``trt:fp16`` / ``ort-trt:fp16``: TensorRT builds an FP16 engine;
- ``ort-cpu:fp16`` / ``ort-cuda:fp16``: the ONNX converted to float16 weights and activations (inputs and
  outputs stay float32) with ONNX Runtime's converter (``onnxruntime.transformers.float16``, needs
  the ``onnx`` package), then run on that provider — what the CPU-only machine can check.

Here: parsing variants, building their engines, recording their outputs, the statistics (max / mean
absolute difference per output; for detectors, box agreement) and the report. How a model is fed (a
detector's letterbox, a depth card's preprocessing) is the product's knowledge: the check command that
feeds it frames lives above, in :mod:`stream.enginecheck` (``python -m engines check`` dispatches there).
Models that are neither get :func:`generic_feeds`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import cv2
import numpy as np

from depthstream.errors import ConfigError, EngineError

from .backends import BACKENDS, EngineOptions, resolve_backend
from .base import Engine, TensorSpec
from .build import convert_fp16
from .factory import create_engine


OPTIONS = ("fp32", "fp16", "noopt")


@dataclass(frozen=True)
class Variant:
    backend: str
    option: str = "fp32"

    @property
    def label(self) -> str:
        return f"{self.backend}:{self.option}"


def parse_variant(text: str) -> Variant:
    backend, _, option = text.strip().partition(":")
    option = option or "fp32"
    if backend not in BACKENDS:
        raise ConfigError(f"variant {text!r}: unknown backend '{backend}', expected one of {', '.join(BACKENDS)} "
                          f"(e.g. ort-cpu, ort-cpu:fp16, trt:fp16)")
    if option not in OPTIONS:
        raise ConfigError(f"variant {text!r}: unknown option '{option}', expected one of {', '.join(OPTIONS)}")
    if option == "noopt" and backend == "trt":
        raise ConfigError(f"variant {text!r}: noopt is an ONNX Runtime option; TensorRT takes fp16 or fp32")
    return Variant(backend, option)


# -- statistics (pure) ---------------------------------------------------------------------------


@dataclass
class DiffStats:
    """Absolute differences of one output over all frames."""

    max_abs: float = 0.0
    sum_abs: float = 0.0
    count: int = 0
    ref_max_abs: float = 0.0
    ref_sum_abs: float = 0.0

    def add(self, a: np.ndarray, b: np.ndarray) -> None:
        if a.shape != b.shape:
            raise EngineError(f"the two variants give outputs of different shapes: {a.shape} and {b.shape}")
        a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
        d = np.abs(a64 - b64)
        d = np.where(np.isfinite(d), d, np.inf)
        self.max_abs = max(self.max_abs, float(d.max()) if d.size else 0.0)
        self.sum_abs += float(d.sum())
        self.count += d.size
        ref = np.abs(a64[np.isfinite(a64)])
        self.ref_max_abs = max(self.ref_max_abs, float(ref.max()) if ref.size else 0.0)
        self.ref_sum_abs += float(ref.sum())

    @property
    def mean_abs(self) -> float:
        return self.sum_abs / self.count if self.count else 0.0

    @property
    def rel_mean(self) -> float:
        """Mean absolute difference / mean absolute reference value."""
        ref_mean = self.ref_sum_abs / self.count if self.count else 0.0
        return self.mean_abs / ref_mean if ref_mean > 0 else (0.0 if self.mean_abs == 0 else float("inf"))


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (N, 4 xyxy) with every box in ``b`` (M, 4)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float64)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def match_boxes(boxes_a: np.ndarray, cls_a: np.ndarray, boxes_b: np.ndarray, cls_b: np.ndarray,
                iou_threshold: float = 0.5) -> list[tuple[int, int, float]]:
    """Greedy one-to-one matching, highest IoU first, same class only: [(i in a, j in b, IoU)]."""
    iou = iou_matrix(np.asarray(boxes_a, np.float64), np.asarray(boxes_b, np.float64))
    if iou.size:
        iou = np.where(np.asarray(cls_a)[:, None] == np.asarray(cls_b)[None, :], iou, 0.0)
    pairs = []
    while iou.size and iou.max() >= iou_threshold:
        i, j = np.unravel_index(int(iou.argmax()), iou.shape)
        pairs.append((int(i), int(j), float(iou[i, j])))
        iou[i, :] = 0.0
        iou[:, j] = 0.0
    return pairs


@dataclass
class BoxStats:
    boxes_a: int = 0
    boxes_b: int = 0
    matched: int = 0
    iou_sum: float = 0.0
    score_diff_max: float = 0.0

    def add(self, a, b, iou_threshold: float = 0.5) -> None:
        """a, b: objects with ``xyxy``, ``class_id``, ``confidence`` (depthstream.types.Detections)."""
        pairs = match_boxes(a.xyxy, a.class_id, b.xyxy, b.class_id, iou_threshold)
        self.boxes_a += len(a.xyxy)
        self.boxes_b += len(b.xyxy)
        self.matched += len(pairs)
        self.iou_sum += sum(p[2] for p in pairs)
        for i, j, _ in pairs:
            self.score_diff_max = max(self.score_diff_max, abs(float(a.confidence[i]) - float(b.confidence[j])))

    @property
    def agreement(self) -> float:
        """2 * matched / (boxes in A + boxes in B): 1.0 = the same boxes (F1 of B against A)."""
        total = self.boxes_a + self.boxes_b
        return 2 * self.matched / total if total else 1.0

    @property
    def mean_iou(self) -> float:
        return self.iou_sum / self.matched if self.matched else 0.0


@dataclass
class Report:
    model: str
    a: str
    b: str
    frames: int
    fed: str
    outputs: dict[str, DiffStats] = field(default_factory=dict)
    boxes: BoxStats | None = None
    ms_a: float = 0.0
    ms_b: float = 0.0
    notes: list[str] = field(default_factory=list)

    def problems(self, tol: float, min_agreement: float) -> list[str]:
        out = []
        for name, s in self.outputs.items():
            if not np.isfinite(s.max_abs):
                out.append(f"output '{name}' has non-finite values in one variant")
            elif s.rel_mean > tol:
                out.append(f"output '{name}': mean abs diff is {s.rel_mean:.2%} of the mean |value| (tolerance {tol:.2%})")
        if self.boxes is not None and self.boxes.agreement < min_agreement:
            out.append(f"box agreement {self.boxes.agreement:.3f} < {min_agreement}")
        return out

    def lines(self) -> list[str]:
        out = [f"model {self.model}: {self.a} (A, reference) vs {self.b} (B) on {self.frames} frames ({self.fed})"]
        out += [f"  note: {n}" for n in self.notes]
        out.append(f"  {'output':<16} {'max |A-B|':>11} {'mean |A-B|':>11} {'mean |A|':>11} {'rel. mean':>10}")
        for name, s in self.outputs.items():
            ref_mean = s.ref_sum_abs / s.count if s.count else 0.0
            out.append(f"  {name:<16} {s.max_abs:11.4g} {s.mean_abs:11.4g} {ref_mean:11.4g} {s.rel_mean:10.3%}")
        if self.boxes is not None:
            b = self.boxes
            out.append(f"  boxes: A {b.boxes_a}, B {b.boxes_b}, matched {b.matched} (same class, IoU >= 0.5), "
                       f"agreement {b.agreement:.3f}, mean IoU {b.mean_iou:.3f}, max score diff {b.score_diff_max:.3f}")
        out.append(f"  time per inference: A {self.ms_a:.1f} ms, B {self.ms_b:.1f} ms")
        return out


# -- feeds for models that are neither detectors nor depth cards -------------------------------------


def _image_feed(spec: TensorSpec, image: np.ndarray) -> np.ndarray | None:
    """A frame as this input, when it looks like an image (4-D, 3 channels first or last): RGB 0..1 for a float
    input, the pixels 0..255 as they are for a uint8 one (a network that normalises inside, e.g. FastDepth)."""
    shape = spec.shape
    dtype = np.dtype(spec.dtype)
    if len(shape) != 4 or not (dtype.kind == "f" or dtype == np.uint8):
        return None
    if shape[1] == 3:
        h, w, chw = shape[2] or 416, shape[3] or 416, True
    elif shape[3] == 3:
        h, w, chw = shape[1] or 416, shape[2] or 416, False
    else:
        return None
    rgb = cv2.cvtColor(cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
    x = rgb if dtype == np.uint8 else rgb.astype(np.float32) / 255.0
    x = x.transpose(2, 0, 1) if chw else x
    return np.ascontiguousarray(x[None], dtype=spec.dtype)


def generic_feeds(inputs: Mapping[str, TensorSpec], frames: Sequence[np.ndarray], seed: int = 0) -> tuple[list[dict], str]:
    rng = np.random.default_rng(seed)
    feeds, kinds = [], set()
    for image in frames:
        feed = {}
        for name, spec in inputs.items():
            x = _image_feed(spec, image)
            if x is None:
                shape = tuple(d or 1 for d in spec.shape)
                kind = np.dtype(spec.dtype).kind
                x = (rng.standard_normal(shape) if kind == "f" else rng.integers(0, 2, shape)).astype(spec.dtype)
                kinds.add(f"'{name}' random (seed {seed})")
            else:
                kinds.add(f"'{name}' frames resized, RGB " + ("0..255 uint8" if np.dtype(spec.dtype) == np.uint8 else "0..1"))
            feed[name] = x
        feeds.append(feed)
    return feeds, ", ".join(sorted(kinds))


# -- engines for variants --------------------------------------------------------------------------


def variant_engine(onnx_path: Path, variant: Variant, *, threads: int, cache_dir: str | None, work: Path,
                   shapes: Mapping[str, Sequence] | None = None) -> tuple[Engine, str]:
    """An engine (not opened) for the variant, and the variant's label with ``auto`` resolved."""
    backend, fallback = variant.backend, False
    if backend == "auto":
        backend, fallback = resolve_backend("auto").backend, True
    fp16 = variant.option == "fp16"
    path = onnx_path
    if fp16 and backend in ("ort-cpu", "ort-cuda"):
        path = convert_fp16(onnx_path, work)
    opts = EngineOptions(backend, fp16=fp16, cache_dir=cache_dir, fallback=fallback)
    engine = create_engine(path, opts, threads=threads, shapes=shapes)
    if variant.option == "noopt" and hasattr(engine, "optimization"):
        engine.optimization = "none"
    return engine, f"{backend}:{variant.option}"


class Recorder(Engine):
    """Wraps an engine and keeps a copy of the last outputs (so a detector's raw output can be compared)."""

    def __init__(self, inner: Engine) -> None:
        super().__init__(inner.path)
        self.inner = inner
        self.backend = inner.backend
        self.last: dict[str, np.ndarray] = {}
        self.seconds = 0.0
        self.calls = 0

    def _open(self):
        self.inner.open()
        return self.inner.inputs, self.inner.outputs

    def _close(self) -> None:
        self.inner.close()

    def _infer(self, feeds):
        t0 = time.perf_counter()
        out = self.inner.infer(feeds)
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        self.last = {k: np.array(v, copy=True) for k, v in out.items()}
        return out

    @property
    def ms(self) -> float:
        return self.seconds / self.calls * 1e3 if self.calls else 0.0


def add_outputs(report: Report, out_a: Mapping[str, np.ndarray], out_b: Mapping[str, np.ndarray]) -> None:
    for name, va in out_a.items():
        if name not in out_b:
            raise EngineError(f"output '{name}' of variant A is missing from variant B (outputs {sorted(out_b)})")
        report.outputs.setdefault(name, DiffStats()).add(np.asarray(va), np.asarray(out_b[name]))
