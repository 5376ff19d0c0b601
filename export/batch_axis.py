"""A model with its batch axis freed: the same weights, a first dimension left open, so frames of several cameras can
go through one call (several sources in one process batch them: engines/shared.py; a Triton model repository gets
``dynamic_batching`` for it: ``python -m engines triton-repo``). The tests and ``python -m bench multi --batched`` run
the product's own models so.

Both shipped ONNX files are exported with a batch of 1 written into their graphs: YOLOX-Nano's three ``Reshape``
nodes ask for ``[1, 85, -1]``, FastDepth-224's output ``Reshape`` for ``[1, 224, 224, 1]``. ``free_batch_axis``
names the first dimension of every input and output ``batch`` and turns such a leading 1 into ONNX's 0 ("keep this
dimension of the input"), which is the batch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def free_batch_axis(model_path: Path, dest: Path) -> Path:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(model_path))
    graph = model.graph
    for value in list(graph.input) + list(graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    del graph.value_info[:]  # shapes inferred for batch 1
    initializers = {t.name: t for t in graph.initializer}
    changed = 0
    for node in graph.node:
        if node.op_type != "Reshape" or node.input[1] not in initializers:
            continue
        shape = numpy_helper.to_array(initializers[node.input[1]]).copy()
        if shape.size and shape[0] == 1:
            shape[0] = 0
            initializers[node.input[1]].CopyFrom(numpy_helper.from_array(shape.astype(np.int64), node.input[1]))
            changed += 1
    if not changed:
        raise ValueError(f"{model_path.name}: no Reshape with a batch of 1 found")
    onnx.checker.check_model(model)
    onnx.save(model, str(dest))
    return dest
