"""``python -m bench.fixed_cost_changes``: two per-frame costs before and after their change, on one thread, the
two versions interleaved over 5 rounds (CPU ms a frame, median of the rounds' means).

- the detector's input blob (416x416, :func:`stream.detectors.to_blob`), against the code before commit c33aff4:
  ``astype`` of the channel-first view, then a second copy to make it contiguous;
- the serial layout's fill (``mask.fill: blur``, 31 px, :func:`stream.mask.fill_outside`) on the demo's frames,
  against the full-resolution blur before commit bb644c5; with how far apart the two results are (grey levels).
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import cv2
import numpy as np

from depthstream.schema.config import MaskConfig
from stream.detectors import ULTRALYTICS_PREPROCESS, YOLOX_PREPROCESS, Preprocess, to_blob
from stream.mask import fill_outside
from stream.sources import open_source

ROUNDS = 5


def blob_before(canvas: np.ndarray, pre: Preprocess) -> np.ndarray:
    if pre.colour == "rgb":
        canvas = canvas[..., ::-1]
    blob = canvas.transpose(2, 0, 1)[None].astype(np.float32)
    if pre.scale != 1.0:
        blob *= np.float32(pre.scale)
    return np.ascontiguousarray(blob, dtype=np.float32)


def fill_before(image: np.ndarray, keep: np.ndarray, ksize: int) -> np.ndarray:
    return cv2.copyTo(image, keep.view(np.uint8), cv2.GaussianBlur(image, (ksize, ksize), 0))


def _paired(before: Callable, after: Callable, inputs: Sequence) -> tuple[float, float]:
    rounds: dict[str, list[float]] = {"before": [], "after": []}
    for _ in range(ROUNDS):
        for label, fn in (("before", before), ("after", after)):
            t0 = time.process_time()
            for x in inputs:
                fn(x)
            rounds[label].append((time.process_time() - t0) * 1e3 / len(inputs))
    return float(np.median(rounds["before"])), float(np.median(rounds["after"]))


def main() -> None:
    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    canvases = [rng.integers(0, 256, (416, 416, 3), dtype=np.uint8) for _ in range(50)]
    for name, pre in (("yolox: BGR, scale 1", YOLOX_PREPROCESS), ("ultralytics: RGB, 1/255", ULTRALYTICS_PREPROCESS)):
        before, after = _paired(lambda c: blob_before(c, pre), lambda c: to_blob(c, pre), canvases)
        print(f"detector blob 416x416 ({name}): {before:.2f} -> {after:.2f} CPU ms a frame")
    with open_source("demo") as src:
        frames = [f.image for f in iter(src.read, None)][:60]
    options = MaskConfig(fill="blur", blur_ksize=31)
    keep = np.zeros(frames[0].shape[:2], bool)
    keep[:, : keep.shape[1] // 2] = True  # the left half kept, the right half hidden
    apart = np.mean([np.abs(fill_before(f, keep, 31).astype(int) - fill_outside(f, keep, options)).mean() for f in frames])
    before, after = _paired(lambda f: fill_before(f, keep, 31), lambda f: fill_outside(f, keep, options), frames)
    h, w = frames[0].shape[:2]
    print(f"serial fill, blur 31 px, {w}x{h}: {before:.2f} -> {after:.2f} CPU ms a frame, {apart:.2f} grey levels apart "
          f"on average (half the frame hidden)")


if __name__ == "__main__":
    main()
