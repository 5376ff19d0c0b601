"""FastDepth-224, the real network, with its metres deliberately rescaled, as cards the product runs: the size
priors' automatic scale must find the factor again (tests/test_autoscale.py, tests/test_sizing.py).

``write_variant(folder, factor, inverse)`` writes an ONNX and its card: the real FastDepth graph (through the
model store) with one more node after its output, ``factor * metres`` (card kind ``metric``: metres off by the
factor) or then a reciprocal, ``1 / (factor * metres)`` (card kind ``relative-inverse`` with no calibration:
inverse depth, as MiDaS gives). Everything else is the bundled card's (uint8 NHWC in, channels-last out).
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
    graph.initializer.append(numpy_helper.from_array(np.array(factor, np.float32), "variant_factor"))
    graph.node.append(helper.make_node("Mul", ["depth", "variant_factor"], ["scaled"]))
    out = "scaled"
    if inverse:
        graph.node.append(helper.make_node("Reciprocal", ["scaled"], ["inverse"]))
        out = "inverse"
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, 224, 224, 1]))
    onnx.checker.check_model(model)
    stem = f"fastdepth_{'inverse' if inverse else 'times'}_{factor:g}"
    onnx.save(model, str(folder / f"{stem}.onnx"))
    card = folder / f"{stem}.yaml"
    kind = "relative-inverse" if inverse else "metric"
    card.write_text(f"name: fastdepth-224-{stem.replace('_', '-')}\nmodel: {stem}.onnx\ninput: image\noutput: {out}\n"
                    f"input_dtype: uint8\nlayout: nhwc\noutput_layout: nhwc\nsize: [224, 224]\nresize: stretch\n"
                    f"colour: rgb\nkind: {kind}\ndomain: indoor\n")
    return card
