"""The command line of ``python -m export``: its parser and the runners of ``detector`` and ``depth``
(``python -m export models`` runs the same runners on downloaded weights, through :mod:`export.fetch`).
"""

from __future__ import annotations

import argparse
from pathlib import Path


DESCRIPTION = """Export a detector or a depth model to ONNX with a sidecar (detectors) or a model card (depth)
that `python -m stream` reads, and check ONNX Runtime against torch on a random input and on real photos
(the largest absolute difference is printed and written into the sidecar).

commands:
  detector   YOLO-family detectors (Ultralytics .pt through Ultralytics' own exporter, or any torch.nn.Module)
  depth      monocular depth networks (U-Net, Depth Anything V2, MiDaS, YOLO26-depth, any torch.nn.Module)
  models     the model store's files (models/MANIFEST.yaml): from the cache or the mirror, else downloaded (sha256 checked)
  weights    download the pinned public checkpoints (URL + sha256, export/weights.yaml) and export them

families (details: python -m export detector --help, python -m export depth --help):
  detector --weights X.pt            Ultralytics YOLOv5u/v8/11/26, YOLOv10 (--end2end: NMS-free [1, K, 6] head)
  detector --module M --layout L     any torch.nn.Module; L = ultralytics | yolov5 | end2end | yolox
  depth --model unet                 the seed reports' U-Net (--weights checkpoint, or --random-init for timing)
  depth --model depth-anything-v2-small | depth-anything-v2-metric-indoor | depth-anything-v2-metric-outdoor
  depth --model midas-small | midas-dpt   MiDaS v2.1 small, MiDaS v3 DPT (relative inverse depth)
  depth --model yolo-depth           Ultralytics YOLO26-depth (metres)
  depth --model module --module M    any torch.nn.Module with the card you give (--size, --kind, ...)

torch and the model libraries are optional: pip install -e '.[export]' (torch, onnx); Depth Anything V2 and
MiDaS DPT from Hugging Face folders need `pip install transformers`; Ultralytics .pt files need
`pip install ultralytics` (which needs a torchvision matching your torch)."""

DETECTOR_EPILOG = """layouts (the ONNX output; python -m stream picks the decoder from the sidecar or the output shape):
  ultralytics  [1, 4+C, N]  YOLOv8 / YOLO11 / YOLO26 (default export): cx, cy, w, h in input pixels, C class
               scores, no objectness; input RGB / 255, letterbox centred, pad 114; needs NMS
  yolov5       [1, N, 5+C]  YOLOv5 / YOLOv7: cx, cy, w, h, objectness, C class scores; same input as above
  end2end      [1, K, 6]    YOLO26 / YOLOv10 NMS-free head (--end2end): x1, y1, x2, y2, score, class; no NMS
  yolox        [1, N, 5+C]  YOLOX raw grid output; input BGR 0..255, letterbox top-left, pad 114

examples:
  python -m export detector --weights yolo11n.pt --imgsz 640                      # -> models/yolo11n.onnx + .yaml
  python -m export detector --weights yolo26n.pt --imgsz 640 --end2end
  python -m export detector --module export.tiny:ultralytics_detector --layout ultralytics --imgsz 64 --names coco
  python -m stream --source clip.mp4 --detector models/yolo11n.onnx"""

DEPTH_EPILOG = """families (--model):
  unet                              the seed reports' depth U-Net (export/unet.py): --weights a trained state dict,
                                    or --random-init (timing only; the card says so). RGB / 255, half resolution
                                    (default 240x320), output in [0, 1] x --max-depth (default 10 m, NYU Depth V2)
  depth-anything-v2-small           Depth Anything V2 Small: relative inverse depth; RGB, ImageNet mean/std,
                                    518x518 (multiples of 14). --weights a Hugging Face folder (transformers) or
                                    depth_anything_v2_vits.pth (the official depth_anything_v2 package)
  depth-anything-v2-metric-indoor   the same fine-tuned on Hypersim: metres up to 20 m
  depth-anything-v2-metric-outdoor  the same fine-tuned on Virtual KITTI 2: metres up to 80 m
  midas-small                       MiDaS v2.1 small, 256x256: relative inverse depth; --weights
                                    midas_v21_small_256.pt; needs the MiDaS repository's 'midas' package
  midas-dpt                         MiDaS v3 DPT (Intel/dpt-hybrid-midas, Intel/dpt-large) through transformers,
                                    384x384, mean = std = 0.5: relative inverse depth
  yolo-depth                        Ultralytics YOLO26-depth .pt through Ultralytics' exporter: metres
  module                            any torch.nn.Module: --module pkg.mod:factory [--weights state_dict]
                                    --size H W --kind K and the preprocessing it was trained with

Relative models give metres only with a calibration: add 'calibration: {scale: S, shift: T}' to the card.

examples:
  python -m export depth --model unet --weights unet_nyu.pt --output models/unet.onnx
  python -m export depth --model unet --random-init --output models/unet-random.onnx
  python -m export depth --model depth-anything-v2-metric-indoor --weights Depth-Anything-V2-Metric-Indoor-Small-hf/
  python -m stream --source clip.mp4 --depth-model models/unet.yaml"""

MODELS_EPILOG = """Each file of models/MANIFEST.yaml is looked for in the model cache (~/.cache/depthstream/models;
DEPTHSTREAM_CACHE or engine.cache_dir move it), then in the mirror (DEPTHSTREAM_MIRROR; ../shared/assets beside a
checkout), else downloaded from its pinned URL into the cache with a progress bar; its sha256 is checked either way.
Offline and not mirrored: one line naming the file, its URL and where to put it by hand (exit 2).
This is the only command that downloads models; python -m stream and the tests never do."""

WEIGHTS_EPILOG = """The manifest lists each public checkpoint with a pinned URL and its sha256; files are downloaded into
--dir (default models/weights/), checked, then exported. Offline, each missing file fails with one line
saying what to download and where to put it; put the file there by hand and run the command again."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one clear line, no usage block
        self.exit(2, f"error: {message} (see python -m export --help)\n")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", metavar="FILE.onnx", help="where to write the ONNX; the sidecar goes beside it "
                   "with .yaml (default: models/<name>.onnx)")
    p.add_argument("--name", help="the name shown in overlays, logs and the JSONL (default: the family)")
    p.add_argument("--images", nargs="+", type=Path, metavar="IMG", help="real photos for the parity check "
                   "(default: the model store's two test photos)")
    p.add_argument("--tolerance", type=_positive_float, default=1e-3, help="largest allowed |ONNX - torch|, "
                   "relative to max(1, largest output) (default 1e-3)")


def build_parser() -> argparse.ArgumentParser:
    from .depth import FAMILIES

    p = _Parser(prog="python -m export", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", metavar="{detector,depth,models,weights}", parser_class=_Parser)

    det = sub.add_parser("detector", help="a YOLO-family detector -> ONNX + sidecar", epilog=DETECTOR_EPILOG,
                         formatter_class=argparse.RawDescriptionHelpFormatter,
                         description="Export a YOLO-family detector to ONNX with a sidecar (layout, input, classes).")
    src = det.add_mutually_exclusive_group(required=True)
    src.add_argument("--weights", type=Path, metavar="X.pt", help="an Ultralytics checkpoint (YOLOv5u/v8/11/26, "
                     "YOLOv10), exported by Ultralytics' own exporter")
    src.add_argument("--module", metavar="PKG.MOD:FACTORY", help="any torch.nn.Module factory (with --layout)")
    det.add_argument("--state-dict", type=Path, metavar="FILE", help="weights to load into --module")
    det.add_argument("--imgsz", type=int, nargs="+", default=[640], metavar="N", help="input size: N (square) or "
                     "H W; multiples of 32 (default 640)")
    det.add_argument("--end2end", action="store_true", help="Ultralytics YOLO26 / YOLOv10: export the NMS-free "
                     "head ([1, K, 6], no NMS at run time)")
    det.add_argument("--layout", choices=["ultralytics", "yolov5", "end2end", "yolox"], help="the --module's "
                     "output layout (see below)")
    det.add_argument("--names", metavar="coco|FILE|a,b,c", help="class names for --module: coco, a text file "
                     "(one per line) or a comma-separated list (default: coco when the model has 80 classes)")
    _common(det)

    dep = sub.add_parser("depth", help="a monocular depth model -> ONNX + model card", epilog=DEPTH_EPILOG,
                         formatter_class=argparse.RawDescriptionHelpFormatter,
                         description="Export a depth network to ONNX with a model card (preprocessing, output kind).")
    dep.add_argument("--model", required=True, choices=list(FAMILIES), metavar="FAMILY",
                     help=f"one of: {', '.join(FAMILIES)}")
    dep.add_argument("--weights", type=Path, metavar="PATH", help="checkpoint file or Hugging Face folder")
    dep.add_argument("--random-init", action="store_true", help="unet only: untrained weights, for timing only "
                     "(the card says so)")
    dep.add_argument("--module", metavar="PKG.MOD:FACTORY", help="--model module: a factory returning the nn.Module")
    dep.add_argument("--base-channels", type=int, metavar="C", help="unet --random-init: channels of the first "
                     "block (default 32; a checkpoint's own width is read from it)")
    dep.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="network input size (default: the family's)")
    dep.add_argument("--kind", choices=["metric", "relative-inverse", "relative-depth", "normalized"],
                     help="output kind (default: the family's; required for --model module)")
    dep.add_argument("--max-depth", type=_positive_float, metavar="M", help="metres an output of 1.0 means "
                     "(normalized) or the largest valid depth")
    dep.add_argument("--colour", choices=["rgb", "bgr"], help="channel order the network was trained with")
    dep.add_argument("--domain", choices=["indoor", "outdoor", "driving", "any"],
                     help="the scenes it was trained on (default: the family's; required for --model module): a "
                          "camera profile whose scene it does not cover has its distances flagged")
    dep.add_argument("--scale", type=_positive_float, help="multiplies the uint8 pixels (e.g. 0.00392156862745098)")
    dep.add_argument("--mean", type=float, nargs=3, metavar=("R", "G", "B"), help="per-channel mean after scale")
    dep.add_argument("--std", type=float, nargs=3, metavar=("R", "G", "B"), help="per-channel std after mean")
    _common(dep)

    mod = sub.add_parser("models", help="the model store's files: cache, mirror, else download", epilog=MODELS_EPILOG,
                         formatter_class=argparse.RawDescriptionHelpFormatter,
                         description="Make the model store's files available (models/MANIFEST.yaml), sha256 checked.")
    mod.add_argument("--for", dest="group", choices=["demo", "test"], help="only what this set-up needs "
                     "(default: what any set-up needs)")
    mod.add_argument("--only", action="append", metavar="NAME", help="only this file of the manifest (repeatable)")
    mod.add_argument("--timeout", type=_positive_float, default=30.0, help="seconds per network operation (default 30)")
    mod.add_argument("--list", action="store_true", help="list the manifest's files, the cache and the mirror, and exit")

    wts = sub.add_parser("weights", help="download the pinned public checkpoints and export them",
                         epilog=WEIGHTS_EPILOG,
                         description="Download (URL + sha256) and export the public models of export/weights.yaml.")
    wts.add_argument("--manifest", type=Path, help="the manifest (default: export/weights.yaml)")
    wts.add_argument("--only", action="append", metavar="NAME", help="only this entry (repeatable)")
    wts.add_argument("--dir", type=Path, help="where downloads go (default: models/weights/)")
    wts.add_argument("--timeout", type=_positive_float, default=30.0, help="seconds per network operation (default 30)")
    wts.add_argument("--list", action="store_true", help="list the manifest's entries and exit")
    return p


def _imgsz(values: list[int]) -> tuple[int, int]:
    from depthstream.errors import ConfigError

    if len(values) not in (1, 2):
        raise ConfigError(f"--imgsz takes N or H W, got {len(values)} numbers")
    h, w = (values[0], values[0]) if len(values) == 1 else (values[0], values[1])
    if h <= 0 or w <= 0 or h % 32 or w % 32:
        raise ConfigError(f"--imgsz must be positive multiples of 32 (the largest stride), got {h}x{w}")
    return h, w


def run_detector(args) -> list[str]:
    from .detector import export_detector

    res = export_detector(
        weights=args.weights, module=args.module, state_dict=args.state_dict, layout=args.layout,
        imgsz=_imgsz(args.imgsz), end2end=args.end2end, names=args.names, output=args.output, name=args.name,
        images=args.images, tolerance=args.tolerance,
    )
    return res.report()


def run_depth(args) -> list[str]:
    from .depth import export_depth

    res = export_depth(
        args.model, weights=args.weights, random_init=args.random_init, output=args.output, card_name=args.name,
        module=args.module, base_channels=args.base_channels, images=args.images, tolerance=args.tolerance,
        size=args.size, kind=args.kind, colour=args.colour, scale=args.scale, mean=args.mean, std=args.std,
        max_depth_m=args.max_depth, domain=args.domain,
    )
    lines = [f"wrote {res.onnx} ({res.onnx.stat().st_size / 1e6:.1f} MB) and {res.card}"]
    lines += [f"parity {r.describe()}" for r in res.parity]
    return lines + res.checks
