"""Detector exporters: tiny torch detectors of every layout exported by our exporter, checked against torch,
read back through the sidecar by the product's detector stage; ``python -m export`` help and errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import DOG, ROOT  # noqa: E402
from export import tiny  # noqa: E402
from export.common import ExportError, align_topk_rows  # noqa: E402
from export.detector import export_detector, parse_names  # noqa: E402
from stream.detect import Detector  # noqa: E402
from depthstream.schema.sidecar import load_detector_card  # noqa: E402
from stream.detectors import grid_cells  # noqa: E402
from depthstream.errors import ConfigError  # noqa: E402
from depthstream.schema.config import DetectConfig  # noqa: E402

G64 = grid_cells((64, 64))


@pytest.mark.parametrize("layout, shape", [
    ("ultralytics", (1, 84, G64)),
    ("yolov5", (1, 3 * G64, 85)),
    ("end2end", (1, min(100, G64), 6)),
    ("yolox", (1, G64, 85)),
])
def test_tiny_detector_of_each_layout_exports_and_runs(tmp_path, layout, shape, dog_image):
    with torch.no_grad():
        assert tuple(getattr(tiny, f"{layout}_detector")()(torch.zeros(1, 3, 64, 64)).shape) == shape
    res = export_detector(module=f"export.tiny:{layout}_detector", layout=layout, imgsz=(64, 64),
                          output=tmp_path / f"{layout}.onnx")
    assert res.layout == layout
    assert [r.label for r in res.parity] == ["random input", "coco_val2017_000000000139.jpg", "dog.jpg"]
    assert max(r.max_abs_diff for r in res.parity) < 1e-4
    card = load_detector_card(res.sidecar)
    assert card.layout == layout and card.size == (64, 64) and len(card.names) == 80 and card.names[0] == "person"
    family_rgb = layout != "yolox"
    assert (card.colour, card.letterbox, card.scale) == (("rgb", "centre", pytest.approx(1 / 255)) if family_rgb
                                                         else ("bgr", "top-left", 1.0))
    assert any(line.startswith("detector stage on dog.jpg:") for line in res.checks)
    with Detector.from_path(res.onnx, DetectConfig(conf=0.0, max_det=7), threads=1) as det:
        dets, _ = det(dog_image)
    assert det.layout == layout and len(dets) == 7
    h, w = dog_image.shape[:2]
    assert dets.xyxy.min() >= 0 and dets.xyxy[:, 0::2].max() <= w and dets.xyxy[:, 1::2].max() <= h


def test_names_from_file_list_and_count(tmp_path):
    names_file = tmp_path / "names.txt"
    names_file.write_text("cat\ndog\n\n")
    assert parse_names(str(names_file), 2) == ["cat", "dog"]
    assert parse_names("a, b ,c", None) == ["a", "b", "c"]
    assert parse_names(None, 80)[:2] == ["person", "bicycle"]
    with pytest.raises(ConfigError, match=r"--names gives 2 class names, the model has 3 classes"):
        parse_names("a,b", 3)
    with pytest.raises(ConfigError, match=r"the model has 3 classes: give their names with --names"):
        parse_names(None, 3)


def tiny_three_class_detector():
    return tiny.ultralytics_detector(num_classes=3)


def test_module_with_its_own_classes(tmp_path):
    res = export_detector(module="test_export_detector:tiny_three_class_detector", layout="ultralytics",
                          imgsz=(64, 64), names="cat,dog,bird", output=tmp_path / "three.onnx", images=[DOG])
    assert load_detector_card(res.sidecar).names == ("cat", "dog", "bird") and res.num_classes == 3


@pytest.mark.parametrize("kwargs, message", [
    ({}, r"give either --weights X.pt \(an Ultralytics checkpoint\) or --module pkg.mod:factory"),
    ({"module": "export.tiny:ultralytics_detector"}, r"--module needs --layout, one of yolox, ultralytics, yolov5, end2end"),
    ({"module": "export.tiny:ultralytics_detector", "layout": "end2end"},
     r"--layout end2end does not fit the module's output shape \[1, 84, 84\]: an end2end output is \[1, K, 6\]"),
    ({"module": "export.tiny:yolov5_detector", "layout": "yolox"},
     r"--layout yolox, but the output shape \[1, 252, 85\] at input 64x64 is the yolov5 layout"),
    ({"module": "export.tiny", "layout": "yolox"}, r"--module must be 'package.module:factory'"),
    ({"module": "export.tiny:nothing", "layout": "yolox"}, r"--module export.tiny:nothing: export.tiny has no callable 'nothing'"),
    ({"module": "no_such_pkg:f", "layout": "yolox"}, r"--module no_such_pkg:f: cannot import 'no_such_pkg'"),
    ({"module": "export.tiny:ultralytics_detector", "layout": "ultralytics", "output": "x.pt"},
     r"--output must name an .onnx file, got 'x.pt'"),
])
def test_detector_export_usage_errors(tmp_path, kwargs, message):
    kwargs.setdefault("output", tmp_path / "d.onnx")
    with pytest.raises(ConfigError, match=message):
        export_detector(imgsz=(64, 64), images=[DOG], **kwargs)


def test_ultralytics_checkpoint_without_the_package_says_what_to_install(tmp_path, monkeypatch):
    pt = tmp_path / "yolo11n.pt"
    pt.write_bytes(b"not really")
    monkeypatch.setitem(sys.modules, "ultralytics", None)  # as if not installed
    with pytest.raises(ExportError, match=r"exporting an Ultralytics checkpoint .* needs the Python package "
                                          r"'ultralytics' .* pip install ultralytics"):
        export_detector(weights=pt, imgsz=(64, 64), output=tmp_path / "y.onnx")
    with pytest.raises(ConfigError, match=r"--weights .*yolo12n.pt not found \(.*this exporter never does"):
        export_detector(weights=tmp_path / "yolo12n.pt", imgsz=(64, 64))


def test_topk_alignment_tolerates_tied_rows_only():
    ref = np.array([[[0, 0, 1, 1, 0.9, 1], [5, 5, 6, 6, 0.5, 2], [7, 7, 8, 8, 0.1, 0]]], np.float32)
    got = ref[:, [1, 0, 2]].copy()
    got[0, 2] = [9, 9, 9, 9, 0.1, 3]  # a different row at the tie floor
    r, g = align_topk_rows(ref, got)
    assert np.array_equal(r, g) and len(r) == 2
    got[0, 0, 4] = 0.05
    with pytest.raises(ExportError, match=r"the top-K rows differ: torch has 2 rows scoring above"):
        align_topk_rows(ref, got)


def _run(*args, timeout=180):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_help_documents_every_family():
    top = _run("-m", "export", "--help")
    assert top.returncode == 0
    from export.depth import FAMILIES

    for word in ("detector", "depth", "models", "--weights X.pt", "--layout L", *FAMILIES):
        assert word in top.stdout, word
    det = _run("-m", "export", "detector", "--help")
    for word in ("ultralytics  [1, 4+C, N]", "yolov5       [1, N, 5+C]", "end2end      [1, K, 6]", "yolox", "--end2end",
                 "--module", "--weights"):
        assert word in det.stdout, word
    dep = _run("-m", "export", "depth", "--help")
    for family in FAMILIES:
        assert f"\n  {family} " in dep.stdout, family
    models = _run("-m", "export", "models", "--help")
    assert "sha256" in models.stdout


def test_cli_usage_error_is_one_line_and_exit_2(tmp_path):
    out = _run("-m", "export", "detector", "--module", "export.tiny:ultralytics_detector", "--imgsz", "60",
               "--layout", "ultralytics", "--output", str(tmp_path / "x.onnx"))
    assert out.returncode == 2
    assert out.stderr == "error: --imgsz must be positive multiples of 32 (the largest stride), got 60x60\n"
    out = _run("-m", "export", "depth", "--model", "nope")
    assert out.returncode == 2 and out.stderr.startswith("error: argument --model: invalid choice: 'nope'")


def test_cli_tiny_ultralytics_detector_and_unet_through_python_m_stream(tmp_path):
    det = tmp_path / "tiny_v8.onnx"
    out = _run("-m", "export", "detector", "--module", "export.tiny:ultralytics_detector", "--layout", "ultralytics",
               "--imgsz", "64", "--output", str(det), "--images", str(DOG))
    assert out.returncode == 0, out.stderr
    assert "layout ultralytics, 80 classes" in out.stdout and "parity dog.jpg: max abs diff" in out.stdout
    unet = tmp_path / "unet.onnx"
    out = _run("-m", "export", "depth", "--model", "unet", "--random-init", "--base-channels", "4", "--size", "64", "64",
               "--output", str(unet), "--images", str(DOG))
    assert out.returncode == 0, out.stderr
    jsonl = tmp_path / "run.jsonl"
    run = _run("-m", "stream", "--source", "demo", "--detector", str(det), "--depth-model", str(unet.with_suffix(".yaml")),
               "--max-frames", "5", "--set", "detect.conf=0.04", "--jsonl", str(jsonl), "--output", str(tmp_path / "o.mp4"))
    assert run.returncode == 0, run.stderr
    assert "5 frames in" in run.stdout and "depth: unet-random-init" in run.stdout
    frames = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(frames) == 5 and (tmp_path / "o.mp4").stat().st_size > 0
