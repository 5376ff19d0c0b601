"""Depth models -> ONNX + a model card that ``depthstream.schema.card.load_card`` reads.

Families (``python -m export depth --model NAME``):

==================================  ===============================================  ===================
NAME                                model definition from                             card kind
==================================  ===============================================  ===================
``unet``                            ``export.unet`` (ours; report A)                  normalized x max_depth_m
``depth-anything-v2-small``         ``transformers`` (HF folder) or the official      relative-inverse
                                    ``depth_anything_v2`` package (.pth)
``depth-anything-v2-metric-indoor`` same (Hypersim, max 20 m)                         metric
``depth-anything-v2-metric-outdoor`` same (Virtual KITTI 2, max 80 m)                 metric
``midas-small``                     the MiDaS repository's ``midas`` package (.pt)    relative-inverse
``midas-dpt``                       ``transformers`` DPT (Intel/dpt-hybrid-midas ...)  relative-inverse
``yolo-depth``                      ``ultralytics`` (YOLO26-depth .pt, its exporter)  metric
``module``                          any ``torch.nn.Module`` factory (``--module``)     as given
==================================  ===============================================  ===================

Preprocessing is fixed per family and written into the card; it is the family's own (Depth Anything
V2: RGB, /255, ImageNet mean/std, a multiple of 14; MiDaS v2.1 small: 256x256, ImageNet mean/std;
DPT: 384x384, mean = std = 0.5; YOLO26-depth: RGB /255, stretched to the input size).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from depthstream.schema.card import DOMAINS, MODEL_KINDS, RELATIVE_KINDS, load_card
from depthstream.errors import ConfigError

from . import ultralytics
from . import unet as unet_mod
from .common import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    UNIT_SCALE,
    ExportError,
    ParityResult,
    check_parity,
    load_into,
    load_state_dict,
    module_from_factory,
    normalise,
    onnx_export,
    output_paths,
    parity_note,
    random_input,
    require,
    require_torch,
    sample_images,
    sha256_of,
    write_card,
)

log = logging.getLogger(__name__)

INPUT_NAME = "image"
OUTPUT_NAME = "depth"


@dataclass(frozen=True)
class DepthFamily:
    """What the card says about a family, and its constraints."""

    name: str
    family: str
    summary: str
    size: tuple[int, int]
    kind: str
    colour: str = "rgb"
    scale: float = UNIT_SCALE
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    max_depth_m: float | None = None
    multiple: int = 1
    weights_hint: str = ""
    domain: str = "any"  # the scenes it was trained for (card key domain): indoor | outdoor | driving | any
    domain_detail: str = ""


FAMILIES: dict[str, DepthFamily] = {f.name: f for f in (
    DepthFamily("unet", "unet", "the seed reports' depth U-Net (export/unet.py); --weights a state dict, or "
                "--random-init for timing only", unet_mod.DEFAULT_SIZE, "normalized", mean=(0.0, 0.0, 0.0),
                std=(1.0, 1.0, 1.0), max_depth_m=unet_mod.DEFAULT_MAX_DEPTH_M, multiple=unet_mod.MULTIPLE,
                weights_hint="a state dict saved from export.unet's DepthUNet", domain="indoor",
                domain_detail="the seed reports trained it on NYU Depth V2: indoor rooms, Kinect, to 10 m"),
    DepthFamily("depth-anything-v2-small", "depth-anything-v2", "Depth Anything V2 Small, relative inverse depth "
                "(Apache-2.0)", (518, 518), "relative-inverse", multiple=14,
                weights_hint="depth_anything_v2_vits.pth, or a Hugging Face folder "
                             "(depth-anything/Depth-Anything-V2-Small-hf)",
                domain="any", domain_detail="synthetic scenes and 62 M unlabelled real photos, indoor and outdoor"),
    DepthFamily("depth-anything-v2-metric-indoor", "depth-anything-v2", "Depth Anything V2 Small fine-tuned on "
                "Hypersim: metres, up to 20 m", (518, 518), "metric", max_depth_m=20.0, multiple=14,
                weights_hint="depth_anything_v2_metric_hypersim_vits.pth, or a Hugging Face folder "
                             "(depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf)",
                domain="indoor", domain_detail="fine-tuned on Hypersim: synthetic indoor scenes, to 20 m"),
    DepthFamily("depth-anything-v2-metric-outdoor", "depth-anything-v2", "Depth Anything V2 Small fine-tuned on "
                "Virtual KITTI 2: metres, up to 80 m", (518, 518), "metric", max_depth_m=80.0, multiple=14,
                weights_hint="depth_anything_v2_metric_vkitti_vits.pth, or a Hugging Face folder "
                             "(depth-anything/Depth-Anything-V2-Metric-Outdoor-Small-hf)",
                domain="outdoor", domain_detail="fine-tuned on Virtual KITTI 2: streets seen from a car, to 80 m"),
    DepthFamily("midas-small", "midas", "MiDaS v2.1 small (EfficientNet-Lite3), relative inverse depth (MIT)",
                (256, 256), "relative-inverse", multiple=32, weights_hint="midas_v21_small_256.pt",
                domain="any", domain_detail="MiDaS' mix of indoor and outdoor data sets"),
    DepthFamily("midas-dpt", "midas", "MiDaS v3 DPT through transformers (Intel/dpt-hybrid-midas, Intel/dpt-large), "
                "relative inverse depth", (384, 384), "relative-inverse", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
                multiple=32, weights_hint="a Hugging Face folder (config.json + model.safetensors)",
                domain="any", domain_detail="MiDaS' mix of indoor and outdoor data sets"),
    DepthFamily("yolo-depth", "ultralytics-depth", "Ultralytics YOLO26-depth through Ultralytics' exporter: metres",
                (640, 640), "metric", mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), multiple=32,
                weights_hint="yolo26n-depth.pt", domain="any",
                domain_detail="not stated by its exporter: set domain in the card to what it was trained on"),
    DepthFamily("module", "module", "any torch.nn.Module: --module pkg.mod:factory plus --kind, --size, --domain and "
                "the preprocessing flags", (0, 0), "metric", domain=""),
)}


@dataclass
class DepthExport:
    """What an export produced and how it was checked."""

    onnx: Path
    card: Path
    parity: list[ParityResult] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)


# -- model builders -------------------------------------------------------------------------------------


def _hf_folder(weights: Path) -> bool:
    return weights.is_dir() and (weights / "config.json").is_file()


def _predicted_depth(model):
    """Wrap a transformers depth model so ``forward(x)`` returns ``predicted_depth`` (B, H, W)."""
    torch = require_torch()

    class PredictedDepth(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(pixel_values=x).predicted_depth

    return PredictedDepth(model).eval()


def _transformers_model(weights: Path, family: DepthFamily):
    transformers = require("transformers", "transformers", f"{family.name} from a Hugging Face folder")
    transformers.utils.logging.disable_progress_bar()
    config = json.loads((weights / "config.json").read_text())
    model_type = config.get("model_type")
    expected = "dpt" if family.name == "midas-dpt" else "depth_anything"
    if model_type != expected:
        raise ConfigError(f"{family.name}: {weights}/config.json has model_type {model_type!r}, expected "
                          f"{expected!r}; pick the --model that matches the folder")
    if expected == "depth_anything":
        kind = config.get("depth_estimation_type", "relative")
        want = "metric" if family.kind == "metric" else "relative"
        if kind != want:
            raise ConfigError(f"{family.name}: {weights} holds a {kind} Depth Anything model "
                              f"(depth_estimation_type: {kind}); use --model "
                              f"{'depth-anything-v2-small' if kind == 'relative' else 'depth-anything-v2-metric-indoor or -outdoor'}")
        if want == "metric" and float(config.get("max_depth") or 0) != family.max_depth_m:
            raise ConfigError(f"{family.name}: {weights} was trained for max_depth {config.get('max_depth')} m, the "
                              f"family expects {family.max_depth_m:g} m; use the other metric family")
        cls = transformers.DepthAnythingForDepthEstimation
    else:
        cls = transformers.DPTForDepthEstimation
    try:
        model = cls.from_pretrained(str(weights), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{family.name}: cannot load the Hugging Face folder {weights}: "
                          f"{str(exc).splitlines()[0]}") from exc
    return _predicted_depth(model)


def _official_depth_anything(weights: Path, family: DepthFamily):
    why = f"{family.name} from an official .pth checkpoint"
    if family.kind == "metric":
        dpt = require("depth_anything_v2.dpt", "the Depth-Anything-V2 repository's metric_depth folder on PYTHONPATH",
                      why + " (the metric DepthAnythingV2 takes max_depth; or use a Hugging Face folder with "
                      "pip install transformers)")
    else:
        dpt = require("depth_anything_v2.dpt", "jkp-depth-anything-v2 --no-deps",
                      why + " (or a clone of github.com/DepthAnything/Depth-Anything-V2 on PYTHONPATH, or a "
                      "Hugging Face folder with pip install transformers)")
    kwargs: dict[str, Any] = {"encoder": "vits", "features": 64, "out_channels": [48, 96, 192, 384]}
    if family.kind == "metric":
        kwargs["max_depth"] = family.max_depth_m
    try:
        model = dpt.DepthAnythingV2(**kwargs)
    except TypeError as exc:
        raise ExportError(f"{family.name}: the installed depth_anything_v2 package does not take "
                          f"{sorted(kwargs)} ({exc}); the metric variants need the repository's metric_depth "
                          f"version of the package") from exc
    load_into(model, load_state_dict(weights, family.name), weights, family.name,
              hint="is it the ViT-S (small) checkpoint of this variant?")
    return model.eval()


def _midas_small(weights: Path, family: DepthFamily):
    mod = require("midas.midas_net_custom", "the MiDaS repository (not on PyPI: the PyPI package 'midas' is "
                  "unrelated): git clone https://github.com/isl-org/MiDaS and add it to PYTHONPATH, plus "
                  "pip install timm", "midas-small")
    if not hasattr(mod, "MidasNet_small"):
        raise ExportError("midas-small: the imported 'midas' package has no midas_net_custom.MidasNet_small; it is "
                          "not the MiDaS repository's package (the PyPI package 'midas' is unrelated)")
    model = mod.MidasNet_small(None, features=64, backbone="efficientnet_lite3", exportable=True,
                               non_negative=True, blocks={"expand": True})
    load_into(model, load_state_dict(weights, "midas-small"), weights, "midas-small")
    return model.eval()


def build_depth_module(family: DepthFamily, weights: Path | None, random_init: bool, module: str | None,
                       base_channels: int | None):
    """The torch module of ``family`` (in eval mode)."""
    name = family.name
    if name == "module":
        if not module:
            raise ConfigError("--model module needs --module package.module:factory")
        model = module_from_factory(module, "a depth module")
        if weights is not None:
            load_into(model, load_state_dict(weights, "module"), weights, "module")
        return model.eval()
    if name == "unet":
        if random_init == (weights is not None):
            raise ConfigError("unet: give either --weights CHECKPOINT (a trained U-Net) or --random-init (timing "
                              "only: its depths are meaningless)")
        if random_init:
            return unet_mod.build_unet(base_channels or unet_mod.DEFAULT_BASE).eval()
        return unet_mod.load_unet(weights)
    if random_init:
        raise ConfigError(f"--random-init is only for --model unet; {name} needs --weights ({family.weights_hint})")
    if weights is None:
        raise ConfigError(f"{name} needs --weights ({family.weights_hint}); 'python -m export weights' downloads the public ones")
    if not weights.exists():
        raise ConfigError(f"{name}: weights {weights} not found (expected {family.weights_hint})")
    if name.startswith("depth-anything-v2"):
        return _transformers_model(weights, family) if _hf_folder(weights) else _official_depth_anything(weights, family)
    if name == "midas-dpt":
        if not _hf_folder(weights):
            raise ConfigError(f"midas-dpt: --weights must be a Hugging Face folder with config.json, got {weights}")
        return _transformers_model(weights, family)
    if name == "midas-small":
        return _midas_small(weights, family)
    raise ConfigError(f"unknown depth family {name!r}")


# -- export ---------------------------------------------------------------------------------------------


def resolve_family(name: str, *, size: Sequence[int] | None = None, kind: str | None = None,
                   colour: str | None = None, scale: float | None = None, mean: Sequence[float] | None = None,
                   std: Sequence[float] | None = None, max_depth_m: float | None = None,
                   domain: str | None = None) -> DepthFamily:
    """The family's card values with the user's overrides, checked."""
    if name not in FAMILIES:
        raise ConfigError(f"unknown depth model {name!r}; expected one of {', '.join(FAMILIES)}")
    fam = FAMILIES[name]
    changes: dict[str, Any] = {}
    if size is not None:
        changes["size"] = (int(size[0]), int(size[1]))
    for key, value in (("kind", kind), ("colour", colour), ("scale", scale), ("max_depth_m", max_depth_m),
                       ("domain", domain)):
        if value is not None:
            changes[key] = value
    for key, value in (("mean", mean), ("std", std)):
        if value is not None:
            changes[key] = tuple(float(v) for v in value)
    fam = replace(fam, **changes)
    if name == "module" and (size is None or kind is None or domain is None):
        raise ConfigError("--model module needs --size H W, --kind (metric | relative-inverse | relative-depth | "
                          "normalized), --domain (indoor | outdoor | driving | any: the scenes it was trained on) and "
                          "the preprocessing flags your model was trained with")
    if fam.domain not in DOMAINS:
        raise ConfigError(f"--domain must be one of {', '.join(DOMAINS)}, got {fam.domain!r}")
    if fam.kind not in MODEL_KINDS:
        raise ConfigError(f"--kind must be one of {', '.join(MODEL_KINDS)}, got {fam.kind!r}")
    h, w = fam.size
    if h <= 0 or w <= 0 or h % fam.multiple or w % fam.multiple:
        raise ConfigError(f"{name}: input size must be two positive multiples of {fam.multiple}, got {h}x{w}")
    if fam.kind == "normalized" and fam.max_depth_m is None:
        raise ConfigError(f"{name}: kind normalized needs --max-depth (the metres an output of 1.0 means)")
    return fam


def export_depth(name: str, *, weights: str | Path | None = None, random_init: bool = False,
                 output: str | Path | None = None, card_name: str | None = None, module: str | None = None,
                 base_channels: int | None = None, images: Sequence[Path] | None = None,
                 tolerance: float = 1e-3, **overrides: Any) -> DepthExport:
    """Export a depth model of family ``name`` to ONNX, write its card, check ONNX Runtime against torch on
    one random and up to two real inputs, and run the card through the product's depth stage.

    ``overrides``: size, kind, colour, scale, mean, std, max_depth_m (see :func:`resolve_family`).
    """
    fam = resolve_family(name, **overrides)
    weights_path = Path(weights) if weights is not None else None
    if fam.name == "yolo-depth":
        return export_ultralytics_depth(weights_path, fam, output=output, card_name=card_name, images=images)
    model = build_depth_module(fam, weights_path, random_init, module, base_channels)
    label = card_name or (f"{fam.name}-random-init" if random_init else fam.name)
    onnx_path, card_path = output_paths(output, label)
    h, w = fam.size
    torch = require_torch()
    onnx_export(model, torch.zeros(1, 3, h, w), onnx_path, INPUT_NAME, [OUTPUT_NAME])
    inputs = [("random input", random_input((1, 3, h, w)))]
    photos = sample_images(images)
    inputs += [(label_, normalise(img, fam.size, fam.colour, fam.scale, fam.mean, fam.std)) for label_, img in photos]
    parity = check_parity(model, onnx_path, INPUT_NAME, inputs, tolerance=tolerance)
    notes = [parity_note(parity)]
    if random_init:
        notes.insert(0, "RANDOM INIT: untrained weights, for timing only; its depths are meaningless")
    elif weights_path is not None and weights_path.is_file():
        notes.insert(0, f"weights {weights_path.name} sha256 {sha256_of(weights_path)}")
    elif weights_path is not None:
        notes.insert(0, f"weights {weights_path}")
    write_depth_card(card_path, onnx_path, fam, label, notes)
    result = DepthExport(onnx_path, card_path, parity)
    result.checks = smoke_depth_card(card_path, photos)
    return result


def output_layout_of(onnx_path: Path, output_name: str) -> str:
    """The layout of the exported ONNX's depth output, read from its rank: [1, 1, h, w] -> nchw (a torch export's
    channel is second), [1, h, w, 1] -> nhwc, [1, h, w] or [h, w] -> hw. The card is checked against the ONNX
    again when the product loads it."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    out = next((o for o in model.graph.output if o.name == output_name), None)
    if out is None:
        raise ExportError(f"{onnx_path.name} has no output {output_name!r}")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in out.type.tensor_type.shape.dim]
    if len(dims) == 4:
        return "nhwc" if dims[3] == 1 and dims[1] != 1 else "nchw"
    if len(dims) in (2, 3):
        return "hw"
    raise ExportError(f"{onnx_path.name}: output {output_name!r} has {len(dims)} dimensions; a depth map has 2, 3 or 4")


def write_depth_card(card_path: Path, onnx_path: Path, fam: DepthFamily, label: str, notes: Sequence[str],
                     input_name: str = INPUT_NAME, output_name: str = OUTPUT_NAME) -> Path:
    data: dict[str, Any] = {
        "name": label,
        "family": fam.family,
        "model": onnx_path.name if onnx_path.parent.resolve() == card_path.parent.resolve() else str(onnx_path.resolve()),
        "input": input_name,
        "output": output_name,
        "input_dtype": "float32",
        "layout": "nchw",
        "output_layout": output_layout_of(onnx_path, output_name),
        "size": [int(fam.size[0]), int(fam.size[1])],
        "resize": "stretch",
        "colour": fam.colour,
        "scale": float(fam.scale),
        "mean": [float(v) for v in fam.mean],
        "std": [float(v) for v in fam.std],
        "kind": fam.kind,
    }
    if fam.max_depth_m is not None:
        data["max_depth_m"] = float(fam.max_depth_m)
    data["domain"] = fam.domain
    if fam.domain_detail:
        data["domain_detail"] = fam.domain_detail
    data["notes"] = list(notes)
    header = [f"Model card written by python -m export depth --model {fam.name} ({fam.summary})."]
    if fam.kind in RELATIVE_KINDS:
        header.append("Relative depth: add 'calibration: {scale: S, shift: T}' (1 / metres = S * output + T) "
                      "before asking for metres.")
    if any("RANDOM INIT" in n for n in notes):
        header.append("RANDOM INIT: untrained weights, for timing only; its depths are meaningless.")
    return write_card(card_path, data, header)


def smoke_depth_card(card_path: Path, photos: Sequence[tuple[str, np.ndarray]]) -> list[str]:
    """Load the card as ``python -m stream --depth-model`` would and run it on the photos."""
    from stream.depth import OnnxDepth
    from depthstream.types import Frame

    card = load_card(card_path)
    if card.kind in RELATIVE_KINDS:
        return [f"depth stage: {card.kind} card loads; metres need a calibration in the card"]
    lines = []
    with OnnxDepth(card, threads=1) as depth:
        for label, image in photos:
            dm = depth(Frame(image, index=0, pts_s=None, captured_ns=0, source_id=label))
            valid = np.isfinite(dm.metres)
            median = float(np.median(dm.metres[valid])) if valid.any() else float("nan")
            lines.append(f"depth stage on {label}: {dm.metres.shape[1]}x{dm.metres.shape[0]} map, median "
                         f"{median:.2f} m, {100 * valid.mean():.0f}% valid")
    return lines


def export_ultralytics_depth(weights: Path | None, fam: Any, *, output: str | Path | None, card_name: str | None,
                             images: Sequence[Path] | None) -> DepthExport:
    """YOLO26-depth through Ultralytics' own exporter, then our card, parity check and smoke run."""
    if weights is None:
        raise ConfigError(f"yolo-depth needs --weights ({fam.weights_hint})")
    require_torch()
    yolo = ultralytics.load_yolo(weights, "depth")
    label = card_name or weights.stem
    onnx_path, card_path = output_paths(output, label)
    ultralytics.run_exporter(yolo, fam.size, onnx_path)
    h, w = fam.size
    photos = sample_images(images)
    inputs = [("random input", np.random.default_rng(0).random((1, 3, h, w), dtype=np.float32))]
    inputs += [(lbl, normalise(img, fam.size, fam.colour, fam.scale, fam.mean, fam.std)) for lbl, img in photos]
    parity = check_parity(ultralytics.export_mode_copy(yolo, None), onnx_path, ultralytics.INPUT_NAME, inputs)
    notes = [f"weights {weights.name} sha256 {sha256_of(weights)}", "exported by Ultralytics' exporter",
             parity_note(parity)]
    write_depth_card(card_path, onnx_path, fam, label, notes, input_name=ultralytics.INPUT_NAME, output_name=ultralytics.OUTPUT_NAME)
    result = DepthExport(onnx_path, card_path, parity)
    result.checks = smoke_depth_card(card_path, photos)
    return result
