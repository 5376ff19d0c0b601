"""Numeric check: run one model on two backends (or precisions) over sample frames and compare.

A variant is ``BACKEND[:OPTION]``: BACKEND one of ``auto``, ``ort-cpu``, ``ort-cuda``, ``ort-trt``,
``trt``; OPTION ``fp32`` (the default), ``fp16`` or, for ONNX Runtime, ``noopt`` (graph optimisations
off). FP16 means:

- ``trt:fp16`` / ``ort-trt:fp16``: TensorRT builds an FP16 engine;
- ``ort-cpu:fp16`` / ``ort-cuda:fp16``: the ONNX converted to float16 weights and activations (inputs and
  outputs stay float32) with ONNX Runtime's converter (``onnxruntime.transformers.float16``, needs
  the ``onnx`` package), then run on that provider — what the CPU-only machine can check.

Inputs: a detector (any layout :mod:`stream.detect` knows: YOLOX, Ultralytics, YOLOv5/v7, end-to-end)
is fed frames letterboxed as its family expects and its boxes are compared too (greedy IoU matching,
same class, IoU >= 0.5); a depth model card (``.yaml``) is fed its own preprocessing; any other model
gets frames resized to its image input (RGB, 0..1) or, for non-image inputs, seeded random values.
The report gives max / mean absolute difference per output and, for detectors, box agreement.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import cv2
import numpy as np

from stream.detect import iou_matrix
from depthstream.errors import ConfigError, EngineError

from .backends import BACKENDS, EngineOptions, create_engine, resolve_backend
from .base import Engine, TensorSpec
from .build import convert_fp16

log = logging.getLogger(__name__)

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


# -- frames and feeds ----------------------------------------------------------------------------


def sample_frames(source: str = "demo", count: int = 8, stride: int = 15) -> list[np.ndarray]:
    """``count`` BGR frames from a source (every ``stride``-th frame of a video, each image of a folder)."""
    from stream.sources import open_source

    frames: list[np.ndarray] = []
    with open_source(source) as src:
        step = stride if src.frame_count is None or src.frame_count > count else 1
        index = 0
        while len(frames) < count:
            frame = src.read()
            if frame is None:
                break
            if index % step == 0:
                frames.append(frame.image)
            index += 1
    if not frames:
        raise EngineError(f"no frames could be read from {source} to check with")
    return frames


def _image_feed(spec: TensorSpec, image: np.ndarray) -> np.ndarray | None:
    """A frame as this input, when it looks like an image (4-D, 3 channels first or last, float)."""
    shape = spec.shape
    if len(shape) != 4 or np.dtype(spec.dtype).kind != "f":
        return None
    if shape[1] == 3:
        h, w, chw = shape[2] or 416, shape[3] or 416, True
    elif shape[3] == 3:
        h, w, chw = shape[1] or 416, shape[2] or 416, False
    else:
        return None
    rgb = cv2.cvtColor(cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
    x = rgb.astype(np.float32) / 255.0
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
                kinds.add(f"'{name}' frames resized, RGB 0..1")
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


class _Recorder(Engine):
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


def _try_detector(engine: _Recorder, model: Path):
    """A detector on ``engine`` when the model is one (any layout stream.detect knows; the sidecar of the
    original ``model`` is used, since a variant may run a converted copy), else None."""
    from stream.detect import Detector
    from stream.detectors import find_sidecar

    det = Detector(engine, conf=0.3, iou=0.45, card=find_sidecar(model))
    try:
        det.open()
    except (EngineError, ConfigError):
        engine.open()  # not a detector; the failed detector open may have closed the engine
        return None
    return det


def run_check(
    model: str | Path,
    a: Variant,
    b: Variant,
    *,
    frames: Sequence[np.ndarray],
    threads: int = 1,
    cache_dir: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Run ``model`` on variants A and B over ``frames`` and compare their outputs (and boxes)."""
    model = Path(model)
    if not model.is_file():
        raise EngineError(f"model file not found: {model} (give an .onnx or a depth model card .yaml)")
    card = None
    if model.suffix.lower() in (".yaml", ".yml"):
        from stream.depth import load_card

        card = load_card(model)
        onnx_path = Path(card.model)
    else:
        onnx_path = model
    shapes = None
    if card is not None:
        h, w = card.size
        shapes = {card.input: (1, 3, h, w) if card.layout == "nchw" else (1, h, w, 3)}
    with tempfile.TemporaryDirectory(prefix="engines-check-") as tmp:
        work = Path(tmp)
        eng_a, _ = variant_engine(onnx_path, a, threads=threads, cache_dir=cache_dir, work=work, shapes=shapes)
        eng_b, _ = variant_engine(onnx_path, b, threads=threads, cache_dir=cache_dir, work=work, shapes=shapes)
        rec_a, rec_b = _Recorder(eng_a), _Recorder(eng_b)
        with rec_a, rec_b:
            # labels after open: an `auto` variant may have fallen back
            report = Report(str(model), f"{rec_a.inner.backend}:{a.option}", f"{rec_b.inner.backend}:{b.option}", len(frames), "")
            det_a = _try_detector(rec_a, onnx_path) if card is None else None
            det_b = _try_detector(rec_b, onnx_path) if det_a is not None else None
            if det_a is not None and det_b is not None:
                report.fed = f"{det_a.layout} detector: frames letterboxed as its family expects"
                report.boxes = BoxStats()
                for i, image in enumerate(frames):
                    dets_a, _ = det_a(image)
                    dets_b, _ = det_b(image)
                    report.boxes.add(dets_a, dets_b)
                    _add_outputs(report, rec_a.last, rec_b.last)
                    if progress:
                        progress(f"frame {i + 1}/{len(frames)}")
            else:
                if card is not None:
                    from stream.depth import OnnxDepth

                    prep = OnnxDepth(dataclasses.replace(card, kind="metric", calibration=None), threads=1)
                    feeds = [{card.input: prep.preprocess(image).astype(rec_a.inputs[card.input].dtype)} for image in frames]
                    report.fed = f"depth card {card.name}: its own preprocessing"
                else:
                    feeds, report.fed = generic_feeds(rec_a.inputs, frames)
                for i, feed in enumerate(feeds):
                    out_a = {k: np.array(v, copy=True) for k, v in rec_a.infer(feed).items()}
                    out_b = rec_b.infer(feed)
                    _add_outputs(report, out_a, out_b)
                    if progress:
                        progress(f"frame {i + 1}/{len(feeds)}")
            report.ms_a, report.ms_b = rec_a.ms, rec_b.ms
    return report


def _add_outputs(report: Report, out_a: Mapping[str, np.ndarray], out_b: Mapping[str, np.ndarray]) -> None:
    for name, va in out_a.items():
        if name not in out_b:
            raise EngineError(f"output '{name}' of variant A is missing from variant B (outputs {sorted(out_b)})")
        report.outputs.setdefault(name, DiffStats()).add(np.asarray(va), np.asarray(out_b[name]))
