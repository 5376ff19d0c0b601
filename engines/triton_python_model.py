"""Triton Python-backend model: this folder's ``model.onnx`` run by ONNX Runtime on the CPU.

``python -m engines triton-repo --runtime python`` copies this file to ``<repository>/<model>/1/model.py``,
for Triton servers that have no onnxruntime backend (the ``tritonserver`` in the nvidia-pytriton wheel,
which the tests run, ships only the Python backend). It runs inside Triton's Python backend stub, the only
place where ``triton_python_backend_utils`` exists: the product never imports this module.

Config parameters it reads: ``intra_op_threads`` (ONNX Runtime threads per instance, default 1). With
``max_batch_size`` > 0 the requests Triton's dynamic batcher hands over together are concatenated on axis 0,
run once and split back.
"""

import json
import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {k: v.get("string_value", "") for k, v in (config.get("parameters") or {}).items()}
        self.batched = int(config.get("max_batch_size", 0) or 0) > 0
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(params.get("intra_op_threads") or 1)
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        path = os.path.join(args["model_repository"], args["model_version"], "model.onnx")
        self.session = ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.outputs = [o.name for o in self.session.get_outputs()]

    def _run(self, feeds):
        return dict(zip(self.outputs, self.session.run(self.outputs, feeds)))

    def _response(self, values):
        return pb_utils.InferenceResponse([pb_utils.Tensor(n, np.ascontiguousarray(values[n])) for n in self.outputs])

    def _error(self, exc):
        return pb_utils.InferenceResponse(error=pb_utils.TritonError(f"onnxruntime: {exc}"))

    def execute(self, requests):
        feeds = [{n: pb_utils.get_input_tensor_by_name(r, n).as_numpy() for n in self.inputs} for r in requests]
        if self.batched and len(requests) > 1:
            sizes = [f[self.inputs[0]].shape[0] for f in feeds]
            try:
                out = self._run({n: np.concatenate([f[n] for f in feeds]) for n in self.inputs})
            except Exception as exc:  # onnxruntime's own exception types; every request gets the error
                return [self._error(exc) for _ in requests]
            bounds = np.cumsum([0] + sizes)
            return [self._response({n: v[a:b] for n, v in out.items()}) for a, b in zip(bounds[:-1], bounds[1:])]
        responses = []
        for f in feeds:
            try:
                responses.append(self._response(self._run(f)))
            except Exception as exc:  # onnxruntime's own exception types
                responses.append(self._error(exc))
        return responses
