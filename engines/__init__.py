"""Inference backends behind one interface (:class:`engines.base.Engine`).

- :mod:`engines.base`: the interface (inputs / outputs as name -> dtype, shape; open / close; checked
  ``infer``).
- :mod:`engines.backends`: backend names, this machine's facts, the ``auto`` choice.
- :mod:`engines.factory`: :func:`create_engine`, the one factory the detector and the depth network use.
- :mod:`engines.ort`: ONNX Runtime (``ort-cpu``, ``ort-cuda``, ``ort-trt``) with verified providers.
- :mod:`engines.trt`: TensorRT 10 and 11 engines (``trt``); :mod:`engines.build`: ONNX -> cached engine.
- :mod:`engines.triton`: a model served by a Triton Inference Server (``triton://HOST:PORT``);
  :mod:`engines.triton_repo` / :mod:`engines.triton_cli`: ``python -m engines triton-repo``.
- :mod:`engines.model_args`: which models a ``python -m engines`` command works on.
- :mod:`engines.check`: two variants of a model compared (the command that feeds them frames is
  :mod:`stream.enginecheck`).

TensorRT and pycuda are imported only when used: this package and its CPU tests need neither.
"""

from .backends import BACKENDS, EngineOptions, resolve_backend
from .factory import create_engine

__all__ = ["BACKENDS", "EngineOptions", "create_engine", "resolve_backend"]
