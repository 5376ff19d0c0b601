"""The one factory: an engine for a model on the backend the options name.

It sits above the backends' own modules (``ort``, ``trt``, ``triton``), which use :mod:`engines.backends` for the
machine's facts; ``backends`` imports none of their engines, so the imports inside ``engines`` form no circle.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Mapping, Sequence

from .backends import EngineOptions, resolve_options
from .base import Engine
from .triton import TritonEngine, is_triton


def create_engine(
    path: str | Path,
    options: EngineOptions | None = None,
    *,
    threads: int = 1,
    shapes: Mapping[str, Sequence[int]] | None = None,
) -> Engine:
    """An engine (not yet opened) for the model at ``path`` on the backend ``options`` names.

    threads: CPU threads of an ONNX Runtime session. shapes: input name -> the shape the caller
    will feed, for TensorRT inputs whose size the ONNX leaves open. For ``trt``, ``path`` may be an
    ``.onnx`` (built and cached on ``open()``) or a serialised engine (``.engine`` / ``.plan``).
    """
    options = options or EngineOptions()
    if options.pool is not None:  # several pipelines in one process: one engine per model for all of them
        return options.pool.engine(path, replace(options, pool=None), threads=threads, shapes=shapes)
    if is_triton(options.backend):  # a Triton server runs the model: nothing of this machine is probed
        return TritonEngine(path, options.backend)
    if options.backend != "ort-cpu":  # auto is resolved; an explicit GPU backend is checked here, before loading
        options, _ = resolve_options(options)
    if options.backend == "trt":
        from .trt import TrtEngine

        return TrtEngine(path, fp16=options.fp16, cache_dir=options.cache_dir, shapes=shapes)
    from .ort import OrtEngine

    return OrtEngine(path, threads=threads, backend=options.backend, fp16=options.fp16,
                     cache_dir=options.cache_dir, fallback=options.fallback)
