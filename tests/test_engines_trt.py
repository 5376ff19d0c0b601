"""TensorRT and the ONNX Runtime GPU providers, on a machine that has them (marked gpu; they skip here
and on CI: no GPU, no TensorRT). Run with: python -m pytest -m gpu tests/test_engines_trt.py"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from conftest import YOLOX
from engines.backends import probe
from stream.detectors import YOLOX_PREPROCESS, letterbox_image, to_blob
from depthstream.errors import EngineError
from test_engines_ort import tiny_onnx

pytestmark = pytest.mark.gpu

FACTS = probe()
needs_trt = pytest.mark.skipif(not FACTS.trt_usable, reason="needs TensorRT, pycuda and an NVIDIA GPU "
                               f"(TensorRT: {FACTS.tensorrt or FACTS.tensorrt_note}; GPU: {FACTS.gpu_note or 'none'})")


def blobs(frames, n=4):
    return [to_blob(letterbox_image(f, (416, 416), "top-left")[0], YOLOX_PREPROCESS) for f in frames[:n]]


@needs_trt
@pytest.mark.timeout(900)
def test_build_is_cached_and_reused(tmp_path):
    from engines.build import ensure_engine

    engine, reason = ensure_engine(YOLOX, fp16=True, cache_dir=tmp_path)
    assert reason == "no cached engine" and engine.stat().st_size > 0
    assert engine.with_suffix(".json").is_file()
    assert list((tmp_path / "trt").glob("timing-*.cache"))
    assert ensure_engine(YOLOX, fp16=True, cache_dir=tmp_path) == (engine, None)


@needs_trt
@pytest.mark.timeout(900)
def test_trt_fp16_agrees_with_onnx_runtime_cpu(tmp_path, demo_frames):
    from engines.check import Variant
    from stream.enginecheck import run_check

    report = run_check(YOLOX, Variant("ort-cpu"), Variant("trt", "fp16"), frames=demo_frames[:6], cache_dir=str(tmp_path))
    assert report.b == "trt:fp16"
    assert report.boxes.agreement > 0.9 and report.outputs["output"].rel_mean < 0.03, "\n".join(report.lines())


@needs_trt
@pytest.mark.timeout(900)
def test_outputs_are_reused_buffers_and_two_engines_run_from_two_threads(tmp_path, demo_frames):
    from engines.trt import TrtEngine

    feeds = blobs(demo_frames)
    with TrtEngine(YOLOX, cache_dir=tmp_path) as a, TrtEngine(YOLOX, cache_dir=tmp_path) as b:
        assert a.inputs["images"].shape == (1, 3, 416, 416) and a.outputs["output"].shape == (1, 3549, 85)
        first = a.infer({"images": feeds[0]})["output"]
        kept = first.copy()
        second = a.infer({"images": feeds[1]})["output"]
        assert np.shares_memory(first, second)  # documented: the next infer overwrites the last outputs
        assert not np.array_equal(kept, second)
        expected = [a.infer({"images": x})["output"].copy() for x in feeds]
        errors, results = [], {}

        def work(engine, key):
            try:
                results[key] = [engine.infer({"images": x})["output"].copy() for x in feeds * 5]
            except Exception as exc:  # reported by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(e, k)) for e, k in ((a, "a"), (b, "b"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors
        for key in "ab":
            for i, out in enumerate(results[key]):
                np.testing.assert_allclose(out, expected[i % len(feeds)], atol=1e-2)


@needs_trt
@pytest.mark.timeout(900)
def test_dynamic_batch_through_an_optimization_profile(tmp_path):
    from engines.trt import TrtEngine

    model = tiny_onnx(tmp_path / "tiny.onnx")
    with TrtEngine(model, fp16=False, cache_dir=tmp_path, shapes={"x": ((1, 3), (4, 3), (8, 3))}) as e:
        assert e.inputs["x"].shape == (None, 3)
        for n in (1, 5, 8):
            x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
            np.testing.assert_allclose(e.infer({"x": x})["y"], x * 2 + 1)
        with pytest.raises(EngineError, match=r"outside the engine's optimization profile"):
            e.infer({"x": np.zeros((9, 3), np.float32)})


@pytest.mark.skipif("CUDAExecutionProvider" not in FACTS.ort_providers or not FACTS.gpus, reason="needs onnxruntime-gpu and a GPU")
def test_ort_cuda_really_runs_on_cuda(demo_frames):
    from engines.ort import OrtEngine

    with OrtEngine(YOLOX, backend="ort-cuda") as e:
        assert e.providers[0] == "CUDAExecutionProvider" and e.backend == "ort-cuda"
        assert e.infer({"images": blobs(demo_frames, 1)[0]})["output"].shape == (1, 3549, 85)


@pytest.mark.skipif("TensorrtExecutionProvider" not in FACTS.ort_providers or not FACTS.gpus,
                    reason="needs onnxruntime-gpu with TensorRT and a GPU")
@pytest.mark.timeout(900)
def test_ort_trt_really_runs_on_tensorrt_and_caches_its_engine(tmp_path, demo_frames):
    from engines.ort import OrtEngine

    with OrtEngine(YOLOX, backend="ort-trt", fp16=True, cache_dir=tmp_path) as e:
        assert e.providers[0] == "TensorrtExecutionProvider"
        e.infer({"images": blobs(demo_frames, 1)[0]})
    assert any((tmp_path / "ort-trt").iterdir())
