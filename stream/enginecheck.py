"""``python -m engines check``: one model on two variants over real frames, fed as the product feeds it.

The command combines the layers: the engine-level comparison (:mod:`engines.check`: variants, recorded
outputs, statistics, the report) with what the product knows about a model (:mod:`stream.detect`: a
detector's letterbox and decoding, so its boxes are compared too; :mod:`stream.depth`: a depth card's own
preprocessing) and the frames of a source (:mod:`stream.sources`). It lives here, above ``engines``, so
that ``engines`` imports nothing of ``stream``; ``engines/__main__.py`` only parses the command line and
calls :func:`check_command` (and :func:`check_after_build` for ``build --check``).

Inputs: a detector (any layout :mod:`stream.detect` knows: YOLOX, Ultralytics, YOLOv5/v7, end-to-end)
is fed frames letterboxed as its family expects and its boxes are compared (greedy IoU matching, same
class, IoU >= 0.5); a depth model card (``.yaml``) is fed its own preprocessing; any other model gets
frames resized to its image input (RGB, 0..1) or, for non-image inputs, seeded random values.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from depthstream.errors import ConfigError, EngineError
from depthstream.schema.card import load_card
from depthstream.store import resolve_model
from engines.check import BoxStats, Recorder, Report, Variant, add_outputs, generic_feeds, parse_variant, variant_engine

from .depth import OnnxDepth
from .detect import Detector
from .sources import open_source

log = logging.getLogger("engines")


def sample_frames(source: str = "demo", count: int = 8, stride: int = 15) -> list[np.ndarray]:
    """``count`` BGR frames from a source (every ``stride``-th frame of a video, each image of a folder)."""
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


def _try_detector(engine: Recorder, model: Path) -> Detector | None:
    """A detector on ``engine`` when the model is one (any layout stream.detect knows; the sidecar of the
    original ``model`` is used, since a variant may run a converted copy), else None."""
    from depthstream.schema.sidecar import find_sidecar

    det = Detector(engine, card=find_sidecar(model))
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
    card = load_card(model) if model.suffix.lower() in (".yaml", ".yml") else None
    onnx_path = Path(card.model) if card is not None else model
    shapes = {card.input: card.input_shape} if card is not None else None
    with tempfile.TemporaryDirectory(prefix="engines-check-") as tmp:
        work = Path(tmp)
        eng_a, _ = variant_engine(onnx_path, a, threads=threads, cache_dir=cache_dir, work=work, shapes=shapes)
        eng_b, _ = variant_engine(onnx_path, b, threads=threads, cache_dir=cache_dir, work=work, shapes=shapes)
        rec_a, rec_b = Recorder(eng_a), Recorder(eng_b)
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
                    add_outputs(report, rec_a.last, rec_b.last)
                    if progress:
                        progress(f"frame {i + 1}/{len(frames)}")
            else:
                if card is not None:
                    prep = OnnxDepth(dataclasses.replace(card, kind="metric", calibration=None), threads=1)
                    feeds = [{card.input: prep.preprocess(image)[0].astype(rec_a.inputs[card.input].dtype)}
                             for image in frames]
                    report.fed = f"depth card {card.name}: its own preprocessing"
                else:
                    feeds, report.fed = generic_feeds(rec_a.inputs, frames)
                for i, feed in enumerate(feeds):
                    out_a = {k: np.array(v, copy=True) for k, v in rec_a.infer(feed).items()}
                    out_b = rec_b.infer(feed)
                    add_outputs(report, out_a, out_b)
                    if progress:
                        progress(f"frame {i + 1}/{len(feeds)}")
            report.ms_a, report.ms_b = rec_a.ms, rec_b.ms
    return report


def check_command(args) -> int:
    """``python -m engines check MODEL --a ... --b ...`` (arguments parsed by engines/__main__.py)."""
    a, b = parse_variant(args.a), parse_variant(args.b)
    if args.frames < 1:
        raise ConfigError(f"--frames must be >= 1, got {args.frames}")
    model = resolve_model(args.model, args.cache_dir)  # models/NAME of the model manifest: the store's file
    if not model.is_file():
        raise ConfigError(f"model not found: {model} (give an .onnx or a depth model card .yaml)")
    frames = sample_frames(args.source, args.frames)
    report = run_check(model, a, b, frames=frames, threads=max(1, args.threads), cache_dir=args.cache_dir)
    sys.stdout.write("\n".join(report.lines()) + "\n")
    problems = report.problems(args.tol, args.min_agreement)
    if problems:
        sys.stdout.write("FAIL: " + "; ".join(problems) + "\n")
        return 1
    sys.stdout.write(f"OK: within tolerance (mean |A-B| <= {args.tol:.2%} of mean |A| per output"
                     + (f", box agreement >= {args.min_agreement}" if report.boxes is not None else "") + ")\n")
    return 0


def check_after_build(path: Path, fp16: bool, cache_dir: str | None) -> None:
    """``python -m engines build --check``: the built engine against ONNX Runtime on the CPU, a warning past tolerance."""
    report = run_check(path, Variant("ort-cpu"), Variant("trt", "fp16" if fp16 else "fp32"),
                       frames=sample_frames("demo", 8), cache_dir=cache_dir)
    sys.stdout.write("\n".join(report.lines()) + "\n")
    for problem in report.problems(0.03, 0.9):
        log.warning("check: %s", problem)
