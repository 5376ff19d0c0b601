"""``python -m engines triton-repo``: a Triton model repository for the product's models.

    python -m engines triton-repo --out triton_repo/                   # the models the product uses
    python -m engines triton-repo models/ --out triton_repo/           # every .onnx in a folder
    python -m engines triton-repo models/yolox_nano.onnx --out triton_repo/ --runtime python
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from depthstream.store import locate, resolve_model

from .model_args import model_and_shapes
from .triton_repo import INSTANCE_KINDS, RUNTIMES, RepoOptions, write_repository

FASTDEPTH = "fastdepth_224_nyu.onnx"  # the default depth network, a model store name


def add_parser(sub) -> None:
    r = sub.add_parser("triton-repo", help="write a Triton model repository (config.pbtxt + model) for the product's models")
    r.add_argument("models", nargs="*", metavar="MODEL",
                   help=".onnx files, depth model cards (.yaml) or folders of .onnx; none = the product's models "
                        "(the config's detector and depth network, FastDepth-224 when the config has none)")
    r.add_argument("--out", required=True, metavar="DIR", help="the repository folder (tritonserver --model-repository DIR)")
    r.add_argument("--runtime", default="auto", choices=RUNTIMES,
                   help="auto (a TensorRT plan where python -m engines build made one, else onnxruntime) | onnxruntime "
                        "| tensorrt | python (ONNX Runtime on the CPU in Triton's Python backend)")
    r.add_argument("--instance-kind", default="gpu", choices=INSTANCE_KINDS, help="where onnxruntime / tensorrt instances run (default gpu)")
    r.add_argument("--instances", type=int, default=1, metavar="N", help="instances of each model (default 1)")
    r.add_argument("--max-batch-size", type=int, default=8, metavar="N", help="dynamic batching limit, for models with a batch dimension (default 8)")
    r.add_argument("--queue-delay-us", type=int, default=2000, metavar="US", help="how long Triton waits to fill a batch (default 2000)")
    r.add_argument("--threads", type=int, default=1, metavar="N", help="ONNX Runtime threads per instance, --runtime python (default 1)")
    r.add_argument("--cache-dir", metavar="DIR", help="where python -m engines build put its TensorRT plans (default ~/.cache/depthstream)")
    r.add_argument("--force", action="store_true", help="replace model folders that already exist in --out")
    r.add_argument("--config", metavar="YAML", help="a config file whose keys override config.yaml (which models the product uses)")


def product_models(config: str | None) -> list[Path]:
    """The ONNX files of the models the product runs: the config's detector, and its depth network (the
    depth card's model), else FastDepth-224, both through the model store.
    """
    from depthstream.schema.config import load_config

    cfg = load_config(config)
    models = [Path(cfg.detect.model)]
    card = cfg.depth.network_card
    models.append(model_and_shapes(card)[0] if card is not None else locate(FASTDEPTH))
    return [resolve_model(path) for path in models]


def cmd_triton_repo(args: argparse.Namespace) -> int:
    options = RepoOptions(args.runtime, args.instance_kind, args.instances, args.max_batch_size, args.queue_delay_us,
                          args.threads, args.cache_dir, args.force)
    if args.models:
        models = [m if Path(m).is_dir() else model_and_shapes(m)[0] for m in args.models]
    else:
        models = product_models(args.config)
    written = write_repository(models, Path(args.out), options)
    for model in written:
        sys.stdout.write(model.line() + "\n")
    sys.stdout.write(f"start it: tritonserver --model-repository {Path(args.out).resolve()}   "
                     f"then: python -m stream --backend triton://HOST:8001 ...\n")
    return 0
