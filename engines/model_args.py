"""Which models a ``python -m engines`` command works on: the ones the config uses, or the ones named.

``build`` and ``triton-repo`` share it. A depth model card (or an ``.onnx`` with its card beside it) stands
for its ONNX and the input shape the card feeds; a path ``models/NAME`` whose NAME the model manifest lists
is the model store's file. The config is read through :mod:`depthstream.schema.config`, so ``engines``
imports nothing of ``stream``.
"""

from __future__ import annotations

from pathlib import Path

from depthstream.schema.config import Config, load_config
from depthstream.store import resolve_model


def model_and_shapes(text: str) -> tuple[Path, dict | None]:
    """An .onnx -> (it, None); a depth card (or an .onnx with one beside it) -> (its .onnx, its input shape)."""
    path = Path(text)
    card_path = path if path.suffix.lower() in (".yaml", ".yml") else None
    if card_path is None and path.suffix.lower() == ".onnx":
        for suffix in (".yaml", ".yml"):
            if path.with_suffix(suffix).is_file():
                card_path = path.with_suffix(suffix)
    if card_path is None:
        return resolve_model(path), None  # models/NAME of the model manifest: the store's file
    from depthstream.schema.card import load_card

    card = load_card(card_path)
    return Path(card.model), {card.input: card.input_shape}


def config_models(config: str | None) -> tuple[list[tuple[Path, dict | None]], Config]:
    """The models the config uses: the detector, and the depth network a run may use (``depth.source auto``: the
    bundled one, which every source without a camera profile's mounting runs)."""
    cfg = load_config(config)
    models: list[tuple[Path, dict | None]] = [(resolve_model(cfg.detect.model, cfg.engine.cache_dir), None)]
    if cfg.depth.network_card is not None:
        models.append(model_and_shapes(cfg.depth.network_card))
    return models, cfg
