"""FastDepth-224 run directly through the engine layer, for ``python -m bench depth --fastdepth ONNX``.

A stop-gap until model cards can describe it: today's card schema (``stream/depth.py``) cannot, because

- the input is **uint8** ``[1, 224, 224, 3]`` (``OnnxDepth`` refuses a non-float input: a card has no
  input dtype field), and
- the output is channels-last ``[1, 224, 224, 1]`` (``OnnxDepth._squeeze`` accepts ``(1, 1, h, w)``,
  ``(1, h, w)`` or ``(h, w)``: a card has no output-layout field).

The card fields that would describe it: ``input_dtype: uint8`` and ``output_layout: nhwc`` (besides today's
``layout: nhwc``, ``size: [224, 224]``, ``colour: rgb``, ``scale: 1``, mean 0, std 1, ``kind: metric``,
``max_depth_m: 10``, resize ``stretch``). Preprocessing as the model's README says: BGR -> RGB, the whole
frame resized (stretched) to 224 x 224 with ``cv2.INTER_LINEAR``, uint8 NHWC, no normalisation (the graph
divides by 255). Output: metres, resized to the frame's size bilinear.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from depthstream.errors import ConfigError
from depthstream.types import DepthMap, Frame

NAME = "fastdepth-224"
SIZE = 224
INPUT, OUTPUT = "image", "depth"


class FastDepthDirect:
    """FastDepth-224 (NYU Depth v2, metric) as a depth provider: ``with FastDepthDirect(p) as m: m(frame)``."""

    source = f"{NAME} (direct)"
    kind = "metric"

    def __init__(self, onnx: str | Path, threads: int = 1, engine_options=None) -> None:
        self.path = Path(onnx)
        if not self.path.is_file():
            raise ConfigError(f"--fastdepth {self.path}: file not found (give the path of "
                              f"fastdepth_224_nyu.onnx; python -m export models puts it in the model cache)")
        self.threads = threads
        self.engine_options = engine_options
        self._engine = None

    def open(self) -> None:
        from engines.backends import EngineOptions
        from engines.factory import create_engine

        engine = create_engine(self.path, self.engine_options or EngineOptions("ort-cpu"), threads=self.threads,
                               shapes={INPUT: (1, SIZE, SIZE, 3)})
        engine.open()
        spec_in, spec_out = engine.inputs.get(INPUT), engine.outputs.get(OUTPUT)
        if (spec_in is None or spec_out is None or np.dtype(spec_in.dtype) != np.uint8
                or tuple(spec_in.shape) != (1, SIZE, SIZE, 3) or tuple(spec_out.shape) != (1, SIZE, SIZE, 1)):
            found = (f"inputs {', '.join(s.describe() for s in engine.inputs.values())}; outputs "
                     f"{', '.join(s.describe() for s in engine.outputs.values())}")
            engine.close()
            raise ConfigError(f"--fastdepth {self.path}: expected input 'image' uint8 [1, 224, 224, 3] and output "
                              f"'depth' [1, 224, 224, 1] (FastDepth-224), got {found}")
        self._engine = engine

    def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()

    def __enter__(self) -> "FastDepthDirect":
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def metres_224(self, image_bgr: np.ndarray) -> np.ndarray:
        """(224, 224) float32 metres of a (H, W, 3) uint8 BGR image."""
        rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
        x = cv2.resize(rgb, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)[None]
        return np.array(self._engine.infer({INPUT: np.ascontiguousarray(x)})[OUTPUT][0, :, :, 0], np.float32)

    def __call__(self, frame: Frame) -> DepthMap:
        metres = self.metres_224(frame.image)
        full = cv2.resize(metres, (frame.width, frame.height), interpolation=cv2.INTER_LINEAR)
        return DepthMap(full, self.source, "metric")
