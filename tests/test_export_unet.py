"""The seed reports' depth U-Net: model definition, checkpoint loading, ONNX export with parity, the card,
the depth stage and ``python -m stream`` end to end. Tiny widths and 64x64 inputs keep it fast."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch")

from conftest import DOG, ROOT  # noqa: E402
from export.common import ExportError, check_parity, onnx_export  # noqa: E402
from export.depth import export_depth  # noqa: E402
from export.unet import build_unet, load_unet  # noqa: E402
from depthstream.schema.card import load_card  # noqa: E402
from stream.depth import open_depth_model  # noqa: E402
from depthstream.errors import ConfigError  # noqa: E402
from depthstream.types import Frame  # noqa: E402


def test_unet_architecture_follows_report_a():
    net = build_unet(base=4).eval()
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    # 4 encoder + 1 bottleneck + 4 decoder blocks of two 3x3 convs, then one 1x1 head
    assert [c.kernel_size for c in convs] == [(3, 3)] * 18 + [(1, 1)]
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()) == 18
    acts = [m for m in net.modules() if isinstance(m, torch.nn.LeakyReLU)]
    assert len(acts) == 18 and all(a.negative_slope == 0.2 for a in acts)
    assert [net.enc[i][0].out_channels for i in range(4)] == [4, 8, 16, 32] and net.mid[0].out_channels == 64
    # skip concatenation: the first decoder block sees the up-sampled bottleneck (64) + the last encoder block (32)
    assert net.dec[0][0].in_channels == 96
    with torch.no_grad():
        y = net(torch.rand(1, 3, 64, 96))
    assert y.shape == (1, 1, 64, 96) and float(y.min()) >= 0 and float(y.max()) <= 1


def _tiny_checkpoint(tmp_path, base=4):
    torch.manual_seed(0)
    net = build_unet(base=base)
    # move the batch-norm statistics away from their defaults so the checkpoint is distinguishable
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    path = tmp_path / "unet_nyu.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}, path)
    return net.eval(), path


def test_checkpoint_loads_with_its_own_width(tmp_path):
    net, path = _tiny_checkpoint(tmp_path, base=6)
    loaded = load_unet(path)
    x = torch.rand(1, 3, 32, 32)
    assert loaded.base == 6
    assert torch.equal(loaded(x), net(x))


def test_checkpoint_that_does_not_fit_is_a_clear_error(tmp_path):
    net, _ = _tiny_checkpoint(tmp_path)
    state = net.state_dict()
    state.pop("head.weight")
    state["extra.weight"] = torch.zeros(1)
    bad = tmp_path / "bad.pt"
    torch.save(state, bad)
    with pytest.raises(ConfigError, match=r"does not fit the model definition \(1 missing: head.weight; 1 unexpected: extra.weight\)"):
        load_unet(bad)
    other = tmp_path / "other.pt"
    torch.save({"conv.weight": torch.zeros(3, 3, 3, 3)}, other)
    with pytest.raises(ConfigError, match=r"has no 'enc.0.0.weight'"):
        load_unet(other)
    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint")
    with pytest.raises(ConfigError, match=r"is not a PyTorch checkpoint"):
        load_unet(junk)


def test_export_trained_checkpoint_writes_card_and_matches_torch(tmp_path):
    net, ckpt = _tiny_checkpoint(tmp_path)
    res = export_depth("unet", weights=ckpt, output=tmp_path / "unet.onnx", size=(64, 64), max_depth_m=10.0)
    assert [r.label for r in res.parity] == ["random input", "coco_val2017_000000000139.jpg", "dog.jpg"]
    assert all(r.max_abs_diff < 1e-5 for r in res.parity)
    card = load_card(res.card)
    assert (card.name, card.kind, card.max_depth_m, card.size, card.colour) == ("unet", "normalized", 10.0, (64, 64), "rgb")
    assert card.scale == pytest.approx(1 / 255) and card.mean == (0, 0, 0) and card.std == (1, 1, 1)
    raw = yaml.safe_load(res.card.read_text())
    assert raw["family"] == "unet" and "sha256" in raw["notes"][0] and "max abs diff" in raw["notes"][1]
    assert any(line.startswith("depth stage on dog.jpg: 768x576 map") for line in res.checks)

    # The depth stage gives torch's output x 10 m, resized to the frame, with no per-frame normalisation.
    import cv2

    image = cv2.imread(str(DOG))
    with open_depth_model(res.card) as depth:
        dm = depth(Frame(image, 0, None, 0, "t"))
    assert dm.metres.shape == image.shape[:2] and dm.kind == "metric"
    rgb = cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), (64, 64), interpolation=cv2.INTER_LINEAR)
    with torch.no_grad():
        ref = net(torch.from_numpy(rgb.astype(np.float32).transpose(2, 0, 1)[None] / 255.0))[0, 0].numpy() * 10.0
    small = cv2.resize(dm.metres, (64, 64), interpolation=cv2.INTER_AREA)
    assert np.abs(small - ref).mean() < 0.05


def test_random_init_is_labelled_in_the_card(tmp_path):
    res = export_depth("unet", random_init=True, base_channels=4, output=tmp_path / "u.onnx", size=(64, 64),
                       images=[DOG])
    text = res.card.read_text()
    assert "# RANDOM INIT: untrained weights, for timing only" in text
    assert load_card(res.card).name == "unet-random-init"


@pytest.mark.parametrize("kwargs, message", [
    ({}, r"unet: give either --weights CHECKPOINT \(a trained U-Net\) or --random-init"),
    ({"random_init": True, "size": (60, 64)}, r"input size must be two positive multiples of 16, got 60x64"),
])
def test_unet_usage_errors(tmp_path, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        export_depth("unet", output=tmp_path / "u.onnx", **kwargs)


def test_parity_check_catches_an_unfaithful_export(tmp_path):
    net = build_unet(base=4).eval()
    path = onnx_export(net, torch.zeros(1, 3, 32, 32), tmp_path / "u.onnx", "image", ["depth"])
    other = build_unet(base=4).eval()  # different random weights
    x = np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32)
    with pytest.raises(ExportError, match=r"ONNX Runtime disagrees with torch on random: max abs diff"):
        check_parity(other, path, "image", [("random", x)], tolerance=1e-6)


def test_cli_exports_unet_and_stream_runs_it_end_to_end(tmp_path):
    onnx_path = tmp_path / "unet.onnx"
    out = subprocess.run(
        [sys.executable, "-m", "export", "depth", "--model", "unet", "--random-init", "--base-channels", "4",
         "--size", "64", "64", "--output", str(onnx_path), "--images", str(DOG)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert f"wrote {onnx_path}" in out.stdout
    assert "parity random input: max abs diff" in out.stdout and "parity dog.jpg: max abs diff" in out.stdout
    jsonl = tmp_path / "run.jsonl"
    run = subprocess.run(
        [sys.executable, "-m", "stream", "--source", "demo", "--depth-model", str(onnx_path.with_suffix(".yaml")),
         "--max-frames", "5", "--jsonl", str(jsonl), "--quiet"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr
    import json

    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(lines) == 5
    assert "unet-random-init" in json.dumps(lines[0])
