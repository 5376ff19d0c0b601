"""``python -m engines``: what this machine can run, TensorRT engine builds, numeric checks.

    python -m engines info                                  # backends, providers, GPU, TensorRT / ORT versions
    python -m engines build [MODEL ...] [--fp16|--fp32]     # cached TensorRT engines (default: the config's models)
    python -m engines check MODEL [--a ort-cpu] [--b auto:fp16]   # two variants on sample frames, compared
    python -m engines triton-repo [MODEL|DIR ...] --out DIR    # a Triton model repository (engines/triton_cli.py)

Exit codes: 0 ok, 1 runtime error (e.g. TensorRT missing, a check past its tolerance), 2 usage or config error.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from depthstream.errors import guarded_main
from depthstream.store import resolve_model

from .backends import BACKENDS, cache_dir_of, choose_backend, probe, unavailable_reason
from .triton_cli import add_parser as add_triton_repo_parser, cmd_triton_repo

EPILOG = """examples:
  python -m engines info
  python -m engines build models/yolox_nano.onnx --fp16
  python -m engines build                      # every model the config uses (what 'make engines' runs)
  python -m engines check models/yolox_nano.onnx --a ort-cpu --b ort-cpu:fp16
  python -m engines check models/yolox_nano.onnx --a ort-cpu --b trt:fp16
  python -m engines triton-repo models/ --out triton_repo/   # then: tritonserver --model-repository triton_repo/

variants (check): BACKEND[:fp32|fp16|noopt], BACKEND one of auto, ort-cpu, ort-cuda, ort-trt, trt
exit codes: 0 ok, 1 runtime error or a check past its tolerance, 2 usage or config error"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one clear line, no usage block
        self.exit(2, f"error: {message} (see python -m engines --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m engines", description="Inference backends: what this machine has, TensorRT engine builds, numeric checks.",
                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("info", help="backends, ONNX Runtime providers, GPU, TensorRT version")
    b = sub.add_parser("build", help="build (or reuse) cached TensorRT engines from ONNX models")
    b.add_argument("models", nargs="*", metavar="MODEL", help=".onnx files or depth model cards (.yaml); none = every model the config uses")
    prec = b.add_mutually_exclusive_group()
    prec.add_argument("--fp16", dest="fp16", action="store_true", default=None, help="FP16 engine (default: config engine.fp16)")
    prec.add_argument("--fp32", dest="fp16", action="store_false", help="FP32 engine")
    b.add_argument("--shape", action="append", default=[], metavar="NAME:SHAPE", help="shape of a dynamic input: NAME:1x3x416x416 or NAME:MIN,OPT,MAX (repeatable)")
    b.add_argument("--cache-dir", metavar="DIR", help="where engines go (default: config engine.cache_dir, else ~/.cache/depthstream)")
    b.add_argument("--force", action="store_true", help="rebuild even when the cached engine matches")
    b.add_argument("--check", action="store_true", help="after building, compare the engine with ONNX Runtime on the CPU and warn past tolerance")
    b.add_argument("--config", metavar="YAML", help="a config file whose keys override config.yaml")
    c = sub.add_parser("check", help="run a model on two backends / precisions over sample frames and compare")
    c.add_argument("model", metavar="MODEL", help="an .onnx or a depth model card (.yaml)")
    c.add_argument("--a", default="ort-cpu", metavar="VARIANT", help="reference variant (default: ort-cpu, i.e. ONNX Runtime CPU FP32)")
    c.add_argument("--b", default="auto:fp16", metavar="VARIANT", help="compared variant (default: auto:fp16; on a CPU-only machine that is ort-cpu:fp16)")
    c.add_argument("--source", default="demo", help="frames to check on: demo (the bundled clip), a video, a folder or glob of images")
    c.add_argument("--frames", type=int, default=8, metavar="N", help="number of frames (default 8, spread over the clip)")
    c.add_argument("--tol", type=float, default=0.03, metavar="R", help="largest mean |A-B| as a share of mean |A| per output (default 0.03 = 3%%; FP16 YOLOX-Nano on ORT CPU: 0.9%%)")
    c.add_argument("--min-agreement", type=float, default=0.9, metavar="F", help="smallest box agreement for detectors (default 0.9)")
    c.add_argument("--threads", type=int, default=1, metavar="N", help="CPU threads per ONNX Runtime session")
    c.add_argument("--cache-dir", metavar="DIR", help="TensorRT engine cache (default: ~/.cache/depthstream)")
    add_triton_repo_parser(sub)
    return p


def info_lines() -> list[str]:
    facts = probe()
    lines = [f"backends: {', '.join(BACKENDS)}",
             f"onnxruntime {facts.ort_version}: providers {', '.join(facts.ort_providers)}"]
    if facts.gpus:
        for i, gpu in enumerate(facts.gpus):
            mem = f", {gpu.memory_mib} MiB" if gpu.memory_mib else ""
            lines.append(f"GPU {i}: {gpu.name} (compute capability {gpu.compute_capability}{mem}; found by {facts.gpu_note})")
    else:
        lines.append(f"GPU: none ({facts.gpu_note})")
    hint = " (pip install -e '.[gpu]' on a GPU machine; JetPack on Jetson)"
    lines.append(f"TensorRT: {facts.tensorrt}" if facts.tensorrt else f"TensorRT: {facts.tensorrt_note or 'not installed'}{hint}")
    lines.append(f"pycuda: {facts.pycuda}" if facts.pycuda else f"pycuda: {facts.pycuda_note or 'not installed'}{hint}")
    for backend in BACKENDS[1:]:
        why = unavailable_reason(backend, facts)
        lines.append(f"  {backend:<9} {'yes' if why is None else 'no: ' + why}")
    auto = choose_backend("auto", facts)
    lines.append(f"auto -> {auto.backend} ({auto.reason})")
    cache = cache_dir_of(None)
    engines = sorted((cache / "trt").glob("*.engine")) if (cache / "trt").is_dir() else []
    lines.append(f"engine cache: {cache} ({len(engines)} TensorRT engine(s))")
    return lines


def _config_models(config: str | None) -> tuple[list[tuple[Path, dict | None]], object]:
    """The models the config uses: the detector, and the depth network when there is one."""
    from stream.config import load_config

    cfg = load_config(config)
    models: list[tuple[Path, dict | None]] = [(resolve_model(cfg.detect.model, cfg.engine.cache_dir), None)]
    if cfg.depth.source != "ground-plane":
        models.append(_model_and_shapes(cfg.depth.source))
    return models, cfg


def _model_and_shapes(text: str) -> tuple[Path, dict | None]:
    """An .onnx -> (it, None); a depth card (or an .onnx with one beside it) -> (its .onnx, its input shape)."""
    path = Path(text)
    card_path = path if path.suffix.lower() in (".yaml", ".yml") else None
    if card_path is None and path.suffix.lower() == ".onnx":
        for suffix in (".yaml", ".yml"):
            if path.with_suffix(suffix).is_file():
                card_path = path.with_suffix(suffix)
    if card_path is None:
        return resolve_model(path), None  # models/NAME of the model manifest: the store's file
    from stream.depth import load_card

    card = load_card(card_path)
    h, w = card.size
    return Path(card.model), {card.input: (1, 3, h, w) if card.layout == "nchw" else (1, h, w, 3)}


def cmd_build(args) -> int:
    from .build import ensure_engine, parse_shapes, require_tensorrt
    from depthstream.errors import ConfigError

    if args.models:
        models, cfg = [_model_and_shapes(m) for m in args.models], None
    else:
        models, cfg = _config_models(args.config)
    for path, _ in models:
        if not path.is_file():
            raise ConfigError(f"model not found: {path} (give an .onnx or a depth model card .yaml)")
    fp16 = args.fp16 if args.fp16 is not None else (cfg.engine.fp16 if cfg is not None else True)
    cache_dir = args.cache_dir or (cfg.engine.cache_dir if cfg is not None else None)
    require_tensorrt(probe())
    extra = parse_shapes(args.shape)
    for path, shapes in models:
        wanted = {**(shapes or {}), **extra} or None
        engine, reason = ensure_engine(path, fp16=fp16, cache_dir=cache_dir, shapes=wanted, force=args.force)
        sys.stdout.write(f"{path.name}: {engine} ({'built: ' + reason if reason else 'cached, up to date'})\n")
        if args.check:
            _warn_check(path, fp16, cache_dir)
    return 0


def _warn_check(path: Path, fp16: bool, cache_dir: str | None) -> None:
    from .check import Variant, run_check, sample_frames

    report = run_check(path, Variant("ort-cpu"), Variant("trt", "fp16" if fp16 else "fp32"),
                       frames=sample_frames("demo", 8), cache_dir=cache_dir)
    sys.stdout.write("\n".join(report.lines()) + "\n")
    for problem in report.problems(0.03, 0.9):
        logging.getLogger("engines").warning("check: %s", problem)


def cmd_check(args) -> int:
    from depthstream.errors import ConfigError

    from .check import parse_variant, run_check, sample_frames

    a, b = parse_variant(args.a), parse_variant(args.b)
    if args.frames < 1:
        raise ConfigError(f"--frames must be >= 1, got {args.frames}")
    model = resolve_model(args.model, args.cache_dir)
    if not model.is_file():
        raise ConfigError(f"model not found: {model} (give an .onnx or a depth model card .yaml)")
    frames = sample_frames(args.source, args.frames)
    report = run_check(model, a, b, frames=frames, threads=max(1, args.threads), cache_dir=args.cache_dir)
    sys.stdout.write("\n".join(report.lines()) + "\n")
    problems = report.problems(args.tol, args.min_agreement)
    if problems:
        sys.stdout.write("FAIL: " + "; ".join(problems) + "\n")
        return 1
    sys.stdout.write(f"OK: within tolerance (mean |A-B| <= {args.tol:.2%} of mean |A| per output"
                     + (f", box agreement >= {args.min_agreement}" if report.boxes is not None else "") + ")\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")

    def body() -> int:
        if args.command == "info":
            sys.stdout.write("\n".join(info_lines()) + "\n")
            return 0
        if args.command == "build":
            return cmd_build(args)
        if args.command == "triton-repo":
            return cmd_triton_repo(args)
        return cmd_check(args)

    return guarded_main(body)


if __name__ == "__main__":
    sys.exit(main())
