"""``python -m bench depth``: a depth source's accuracy on RGB-D pairs, by the published protocol.

Pairs: :mod:`stream.calibrate.rgbd` (``DATA/rgb/NAME.*`` + ``DATA/depth/NAME.png``, or ``NAME_rgb.*`` +
``NAME_depth.png``; 16-bit depth, metres = value / ``--depth-scale``, 0 = no depth). The protocol (resize,
valid pixels, crops, alignment, cap, metrics, mean over images) is :mod:`bench.depth_metrics`.

What is evaluated: the config's depth source, as ``python -m stream`` picks it for a source without a camera
profile of its own (:mod:`stream.depth.select`): by default the bundled network (FastDepth-224), ``--depth-model
CARD`` a depth model card, ``--set depth.source=ground-plane --set camera.profile=FILE`` a camera's ground
plane. A network runs through the product's own depth stage (``stream.depth.OnnxDepth``: the card's
preprocessing, output to metres, mapped back onto the RGB frame). A card's ``max_depth_m`` is lifted for the
benchmark so that the protocol's own cap, not the card's NaN, decides what happens past the range; a
relative card without a calibration gets an identity one and must be aligned (``--align median|lstsq``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2

from depthstream.errors import ConfigError, DepthError
from depthstream.schema.card import RELATIVE_KINDS, Calibration, load_card
from depthstream.schema.config import load_config
from depthstream.types import Frame
from stream.calibrate.rgbd import find_pairs, read_depth_png  # noqa: F401  (re-exported for the bench's users)
from stream.depth import GroundPlaneDepth, OnnxDepth, find_card
from stream.depth.select import select_camera, select_depth

from .depth_metrics import ALIGNS, CROPS, PRESETS, evaluate, mean_over_images
from .env import usable_cores


def _provider(cfg):
    """(provider, label, kind, inverse-depth output?, relative without calibration?) for what is evaluated."""
    camera = select_camera(cfg, "")  # RGB-D pairs: only a profile given by camera.profile
    choice = select_depth(cfg, camera)
    if not choice.is_network:
        return (GroundPlaneDepth(camera.profile, cfg.depth.ground_max_m), f"ground-plane ({camera.name})",
                "geometric", False, False)
    source = choice.source
    card = load_card(find_card(source))
    raw = card.kind in RELATIVE_KINDS and card.calibration is None
    changes = {"max_depth_m": None} if card.kind != "normalized" else {}
    if raw:  # identity: relative-depth gives y, relative-inverse 1 / y; aligned per image
        changes["calibration"] = Calibration(1.0, 0.0)
    return (OnnxDepth(dataclasses.replace(card, **changes), threads=usable_cores()), f"{card.name}: {source} ({card.kind})",
            card.kind, card.kind == "relative-inverse", raw)


def protocol(preset: str | None, min_depth: float | None, max_depth: float | None, crop: str | None) -> dict:
    """The evaluation settings: a preset's values, each overridden by an explicit flag."""
    if preset is not None and preset not in PRESETS:
        raise ConfigError(f"--preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    base = dict(PRESETS[preset]) if preset else {"min_depth": 1e-3, "max_depth": None, "crop": "none"}
    for key, value in (("min_depth", min_depth), ("max_depth", max_depth), ("crop", crop)):
        if value is not None:
            base[key] = value
    if base["max_depth"] is None:
        raise ConfigError("give --max-depth (metres; predictions are capped to it) or --preset nyu (10 m) / kitti (80 m)")
    if not 0 < base["min_depth"] < base["max_depth"]:
        raise ConfigError(f"need 0 < --min-depth < --max-depth, got {base['min_depth']:g} and {base['max_depth']:g}")
    if base["crop"] not in CROPS:
        raise ConfigError(f"--crop must be one of {', '.join(CROPS)}, got {base['crop']!r}")
    return base


def bench_depth(*, data: Path, depth_model: str | None, depth_scale: float, align: str, preset: str | None = None,
                min_depth: float | None = None, max_depth: float | None = None, crop: str | None = None,
                seed_decimals: int = 0, config: str | None = None, sets=()) -> tuple[dict, dict]:
    """(results, notes) of the depth report."""
    if depth_scale <= 0:
        raise ConfigError(f"--depth-scale must be > 0 (depth PNG units per metre), got {depth_scale}")
    settings = protocol(preset, min_depth, max_depth, crop)
    pairs = find_pairs(data)
    cfg = load_config(config, list(sets), {"depth.source": depth_model})
    provider, label, kind, inverse, raw = _provider(cfg)
    mode = align if align != "auto" else ("lstsq" if raw else "none")
    if mode not in ALIGNS:
        raise ConfigError(f"--align must be auto or one of {', '.join(ALIGNS)}, got {align!r}")
    if raw and mode == "none":
        raise DepthError(f"{cfg.depth.source} is a {kind} model without a calibration: its output has no unit; "
                         f"use --align lstsq or median")
    how = {
        "none": "none (the model's metres as they are)",
        "median": "median scaling per image (pred x median(gt) / median(pred))",
        "lstsq": "least-squares scale and shift per image" + (" in inverse depth (MiDaS protocol)" if inverse
                                                              else " in depth"),
    }[mode]
    per_image = []
    with provider:
        for i, (name, rgb_path, depth_path) in enumerate(pairs):
            image = cv2.imread(str(rgb_path), cv2.IMREAD_COLOR)
            if image is None:
                raise ConfigError(f"cannot read image {rgb_path} (corrupt, or not an image)")
            gt = read_depth_png(depth_path, depth_scale)
            pred = provider(Frame(image, i, None, 0, str(rgb_path))).metres
            try:
                m = evaluate(pred, gt, align_how=mode, inverse=inverse, min_depth=settings["min_depth"],
                             max_depth=settings["max_depth"], crop=settings["crop"], decimals=seed_decimals)
            except ValueError as exc:
                raise DepthError(f"{name}: {exc}") from exc
            per_image.append({"name": name, **{k: round(v, 6) if isinstance(v, float) else v for k, v in m.items()}})
    metrics = {k: round(v, 6) for k, v in mean_over_images(per_image).items()}
    results = {
        "settings": {"data": str(data), "depth_scale": depth_scale, "min_depth_m": settings["min_depth"],
                     "max_depth_m": settings["max_depth"], "crop": settings["crop"], "preset": preset,
                     "seed_decimals": seed_decimals, "align": align},
        "model": label,
        "alignment": how,
        "pairs": len(pairs),
        "metrics": metrics,
        "per_image": per_image,
    }
    crop_text = {"none": "none", "eigen": "Eigen (rows 45:471, columns 41:601 of 480x640)",
                 "garg": "Garg (rows 0.408-0.992 h, columns 0.036-0.964 w)"}[settings["crop"]]
    notes = {
        "protocol": "BTS / AdaBins / Depth Anything evaluation: see bench/depth_metrics.py",
        "prediction": "the depth source at the RGB frame's size, resized bilinear to the ground truth's resolution",
        "pixels": f"ground truth finite and {settings['min_depth']:g} < gt < {settings['max_depth']:g} m, crop: {crop_text}",
        "cap": f"predictions capped to [{settings['min_depth']:g}, {settings['max_depth']:g}] m after alignment "
               f"(no prediction -> {settings['min_depth']:g} m)",
        "averaging": "the mean over images of each per-image figure",
        "seed reports' metric": f"both maps min-max normalised to [0, 1], rounded to {seed_decimals} decimals, share "
                                f"of equal pixels; blind to units and to any positive scale/shift",
    }
    return results, notes
