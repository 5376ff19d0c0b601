"""FastDepth-224, the real network, with its metres deliberately rescaled, as cards the product runs: the size
priors' automatic scale must find the factor again (tests/test_autoscale.py, tests/test_sizing.py).

``write_variant(folder, factor, inverse)`` writes an ONNX and its card: the real FastDepth graph (through the
model store) with a Cast (float32 -> uint8) in front of its uint8 NHWC input and a Transpose (NHWC -> NCHW) after
its output, as conftest's ``fastdepth_card`` (today's cards cannot declare a uint8 input or a channels-last
output), then ``factor * metres`` (card kind ``metric``: metres off by the factor) or ``1 / (factor * metres)``
(card kind ``relative-inverse`` with no calibration: inverse depth, as MiDaS gives).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from depthstream.store import locate


def write_variant(folder: Path, factor: float, inverse: bool) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(locate("fastdepth_224_nyu.onnx")))
    graph = model.graph
    for node in graph.node:
        node.input[:] = ["image_u8" if name == "image" else name for name in node.input]
    graph.node.insert(0, helper.make_node("Cast", ["x"], ["image_u8"], to=TensorProto.UINT8))
    graph.node.append(helper.make_node("Transpose", ["depth"], ["depth_nchw"], perm=[0, 3, 1, 2]))
    graph.initializer.append(numpy_helper.from_array(np.array(factor, np.float32), "variant_factor"))
    graph.node.append(helper.make_node("Mul", ["depth_nchw", "variant_factor"], ["scaled"]))
    out = "scaled"
    if inverse:
        graph.node.append(helper.make_node("Reciprocal", ["scaled"], ["inverse"]))
        out = "inverse"
    del graph.input[:]
    graph.input.append(helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 224, 224, 3]))
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, 1, 224, 224]))
    onnx.checker.check_model(model)
    stem = f"fastdepth_{'inverse' if inverse else 'times'}_{factor:g}"
    onnx.save(model, str(folder / f"{stem}.onnx"))
    card = folder / f"{stem}.yaml"
    kind = "relative-inverse" if inverse else "metric"
    card.write_text(f"name: fastdepth-224-{stem}\nmodel: {stem}.onnx\ninput: x\noutput: {out}\nlayout: nhwc\n"
                    f"size: [224, 224]\ncolour: rgb\nscale: 1\nmean: [0, 0, 0]\nstd: [1, 1, 1]\nkind: {kind}\n")
    return card
