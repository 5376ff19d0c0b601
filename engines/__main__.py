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

from depthstream.errors import guarded_main

from .backends import BACKENDS, cache_dir_of, choose_backend, probe, unavailable_reason
from .model_args import config_models, model_and_shapes
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


def cmd_build(args) -> int:
    from .build import ensure_engine, parse_shapes, require_tensorrt
    from depthstream.errors import ConfigError

    if args.models:
        models, cfg = [model_and_shapes(m) for m in args.models], None
    else:
        models, cfg = config_models(args.config)
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
            from stream.enginecheck import check_after_build

            check_after_build(path, fp16, cache_dir)
    return 0


def cmd_check(args) -> int:
    # The check feeds the model as the product does (a detector's letterbox, a depth card's preprocessing),
    # so it lives in the layer that knows those: stream. This entry point only dispatches to it.
    from stream.enginecheck import check_command

    return check_command(args)


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
