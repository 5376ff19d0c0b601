"""The command line of ``python -m bench``: its parser (the commands themselves: :mod:`bench.__main__`)."""

from __future__ import annotations

import argparse
import math

DEFAULT_OUT = "bench/results"

EPILOG = """examples:
  python -m bench pipeline --source demo --layouts serial parallel --frames 300 --out bench/results/
  python -m bench pipeline --depth-model models/midas-small.yaml --repeat 2     (another network, then ground plane)
  python -m bench pipeline --depth ground-plane unet --set engine.backend=ort-cuda
  python -m bench models --backend ort-cpu ort-cuda trt --precision fp32 fp16
  python -m bench depth --data PATH --depth-model models/unet.yaml --preset nyu --align none
  python -m bench board-rgbd tests/data/chessboard --board 9x6 --square-mm 25 --out out/chessboard-rgbd
  python -m bench depth --data out/chessboard-rgbd --max-depth 10      (the bundled FastDepth-224; --depth-model CARD for another)
  python -m bench depth-every --source demo --every 1 2 3 4     (FastDepth on every Nth frame: FPS and distance error)
  python -m bench live-age --fps 10 --minutes 10     (frame age vs service time over a 10-minute paced run)
  python -m bench fixed-costs --source demo --rounds 5     (CPU ms per frame of every step besides the models)
  python -m bench layouts-agree --source demo --closer-than 30 --out out/layouts     (serial vs parallel, per class)
  python -m bench size-prior --out bench/results/
  python -m bench overlay --source demo --closer-than 30
  python -m bench overlay --source demo --size 640x360 --stem overlay-640
  python -m bench tracks out/demo.jsonl
  python -m bench serve --viewers 10 --frames 300 --repeat 4
  python -m bench contact-sheet out/demo.jsonl --source demo --frames 100 --out out/sheets

exit codes: 0 ok, 1 runtime error, 2 usage or config error, 130 interrupted"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one clear line, no usage block
        self.exit(2, f"error: {message} (see python -m bench --help)\n")


def _positive(kind: type, name: str, minimum: float = 1):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not math.isfinite(value) or value < minimum:
            raise argparse.ArgumentTypeError(f"{name} must be >= {minimum}, got {text}")
        return value

    return parse


def _network_run_options(p: argparse.ArgumentParser, stem: str) -> None:
    """The options every benchmark of the product's runs with a depth network ends with."""
    p.add_argument("--depth-model", metavar="CARD", default=None, help="a depth model card (default: the bundled FastDepth-224)")
    p.add_argument("--config", metavar="YAML")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"folder for {stem}.json / .md (default {DEFAULT_OUT})")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m bench", description="Benchmarks of the depthstream pipeline, its models and its depth.",
                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    pp = sub.add_parser("pipeline", help="FPS, per-stage and end-to-end latency of each layout against a bare model loop",
                        description="Per workload (depth source): a bare loop (decode -> depth -> detect), then for each "
                                    "layout a throughput run and a live (paced) run. See bench/pipeline_bench.py.")
    pp.add_argument("--source", default="demo", help="what to decode (default: demo, the bundled clip, looped)")
    pp.add_argument("--layouts", nargs="+", default=["serial", "parallel"], choices=["serial", "parallel"])
    pp.add_argument("--frames", type=_positive(int, "--frames", 2), default=300, help="measured frames per run (default 300)")
    pp.add_argument("--warmup", type=_positive(int, "--warmup", 0), default=30, help="results left out at the start of every run (default 30)")
    pp.add_argument("--depth", nargs="+", default=None, metavar="SRC",
                    help="workloads, each with the detector: ground-plane, unet (the seed reports' U-Net, untrained) "
                         "and/or depth model cards (default: the bundled FastDepth-224, then ground-plane)")
    pp.add_argument("--depth-model", metavar="CARD", default=None,
                    help="the depth network of the default workloads instead of the bundled FastDepth-224")
    pp.add_argument("--pace", type=_positive(float, "--pace", 0.1), default=None, metavar="FPS",
                    help="frame rate of the live runs (default: half the slower layout's throughput)")
    pp.add_argument("--repeat", type=_positive(int, "--repeat", 1), default=1, help="rounds of every run, interleaved (default 1)")
    pp.add_argument("--closer-than", type=_positive(float, "--closer-than", 1e-6), default=30.0, metavar="M",
                    help="the distance band of every run, metres (default 30, as make demo)")
    pp.add_argument("--config", metavar="YAML", help="a config file whose keys override config.yaml")
    pp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one config key (repeatable)")
    pp.add_argument("--out", default=DEFAULT_OUT, help=f"folder for pipeline.json / .md / .png (default {DEFAULT_OUT})")
    pp.add_argument("--no-plot", action="store_true", help="skip the PNG")

    pm = sub.add_parser("models", help="each engine alone, batch 1, per backend and precision",
                        description="Times Engine.infer alone on fixed random inputs. Backends this machine cannot run "
                                    "are reported as skipped with the reason.")
    pm.add_argument("--backend", nargs="+", default=["ort-cpu", "ort-cuda", "ort-trt", "trt"], metavar="B",
                    help="ort-cpu | ort-cuda | ort-trt | trt (default: all)")
    pm.add_argument("--precision", nargs="+", default=["fp32", "fp16"], choices=["fp32", "fp16"])
    pm.add_argument("--model", nargs="+", default=None, metavar="ONNX",
                    help="ONNX models (default: the shipped detector and the bundled FastDepth-224, plus the U-Net when it has been exported)")
    pm.add_argument("--threads", nargs="+", type=_positive(int, "--threads", 1), default=None, metavar="N",
                    help="CPU threads of ONNX Runtime sessions (default: 1 and every core)")
    pm.add_argument("--iterations", type=_positive(int, "--iterations", 2), default=200, help="timed calls (default 200)")
    pm.add_argument("--warmup", type=_positive(int, "--warmup", 0), default=20, help="untimed calls first (default 20)")
    pm.add_argument("--out", default=DEFAULT_OUT, help=f"folder for models.json / .md (default {DEFAULT_OUT})")

    pd = sub.add_parser("depth", help="AbsRel, SqRel, RMSE, RMSE log, log10, delta1-3 and the seed reports' metric on RGB-D pairs",
                        description="The published protocol (bench/depth_metrics.py): prediction resized bilinear to "
                                    "the ground truth, valid pixels min < gt < max inside the crop, alignment, "
                                    "prediction capped to [min, max], metrics per image, mean over images. RGB-D "
                                    "pairs: DATA/rgb/NAME.(png|jpg) with DATA/depth/NAME.png, or NAME_rgb.* with "
                                    "NAME_depth.png side by side; 16-bit depth, metres = value / --depth-scale, 0 = none.")
    pd.add_argument("--data", required=True, help="folder of RGB-D pairs")
    pd.add_argument("--depth-model", metavar="CARD", default=None,
                    help="a depth model card .yaml (default: config depth.source; auto = the bundled FastDepth-224; "
                         "a ground plane: --set depth.source=ground-plane --set camera.profile=FILE)")
    pd.add_argument("--depth-scale", type=_positive(float, "--depth-scale", 1e-9), default=1000.0,
                    help="depth PNG units per metre (default 1000: millimetres; TUM RGB-D uses 5000)")
    pd.add_argument("--preset", choices=["nyu", "kitti"], default=None,
                    help="nyu: 1e-3..10 m, Eigen crop (480x640 frames); kitti: 1e-3..80 m, Garg crop")
    pd.add_argument("--align", choices=["auto", "none", "median", "lstsq"], default="auto",
                    help="none: metres as they are; median: median scaling; lstsq: least-squares scale and shift "
                         "(inverse depth for inverse-depth models); auto: none, or lstsq for an uncalibrated "
                         "relative model (default auto)")
    pd.add_argument("--crop", choices=["none", "eigen", "garg"], default=None,
                    help="eigen: NYU rows 45:471, columns 41:601; garg: KITTI's fractional crop (default: the preset's, else none)")
    pd.add_argument("--min-depth", type=_positive(float, "--min-depth", 1e-9), default=None,
                    help="metres; ground truth at or below it is left out, predictions are capped to it (default 1e-3)")
    pd.add_argument("--max-depth", type=_positive(float, "--max-depth", 1e-9), default=None,
                    help="metres; ground truth at or beyond it is left out, predictions are capped to it (default: the preset's)")
    pd.add_argument("--seed-decimals", type=_positive(int, "--seed-decimals", 0), default=0,
                    help="decimals kept when the seed reports' metric rounds the [0, 1] maps (default 0)")
    pd.add_argument("--config", metavar="YAML")
    pd.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    pd.add_argument("--out", default=DEFAULT_OUT, help=f"folder for depth.json / .md (default {DEFAULT_OUT})")

    pl = sub.add_parser("layouts-agree", help="objects found by the serial and by the parallel layout, per class",
                        description="Per frame, the product's stages of both layouts on the same depth map; boxes "
                                    "matched one to one (same class, IoU >= 0.5). See bench/layouts_agree.py.")
    pl.add_argument("--source", nargs="+", default=["demo"], metavar="SRC",
                    help="sources, each measured on its own (default: demo)")
    pl.add_argument("--closer-than", type=_positive(float, "--closer-than", 1e-9), default=None, metavar="M")
    pl.add_argument("--further-than", type=_positive(float, "--further-than", 1e-9), default=None, metavar="M")
    pl.add_argument("--depth-model", metavar="CARD", default=None, help="a depth model card (default: config depth.source)")
    pl.add_argument("--camera", metavar="PROFILE", default=None, help="a camera profile (default: config camera.profile, "
                    "else the source's own)")
    pl.add_argument("--max-frames", type=_positive(int, "--max-frames", 0), default=0, metavar="N",
                    help="frames per source (default 0: all)")
    pl.add_argument("--config", metavar="YAML")
    pl.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    pl.add_argument("--out", default=DEFAULT_OUT, help=f"folder for layouts.json / .md (default {DEFAULT_OUT})")

    pe = sub.add_parser("depth-every", help="FPS gained and distance error cost by running depth on every Nth frame",
                        description="depth.every N against every frame, on one source with a depth network: "
                                    "throughput, each box's distance against the every-frame run's, and a live run "
                                    "faster than the pipeline with depth.every 1 and auto. See bench/depth_every.py.")
    pe.add_argument("--source", default="demo", help="what to decode (default: demo, the bundled clip)")
    pe.add_argument("--every", nargs="+", type=_positive(int, "--every", 1), default=[1, 2, 3, 4], metavar="N",
                    help="depth rates to compare, 1 among them (default 1 2 3 4)")
    pe.add_argument("--frames", type=_positive(int, "--frames", 2), default=300, help="measured frames per throughput run (default 300)")
    pe.add_argument("--warmup", type=_positive(int, "--warmup", 0), default=30, help="results left out at the start of every run (default 30)")
    pe.add_argument("--repeat", type=_positive(int, "--repeat", 1), default=2, help="interleaved rounds (default 2)")
    pe.add_argument("--live-fps", type=_positive(float, "--live-fps", 0.1), default=None, metavar="FPS",
                    help="the live runs' camera rate (default 1.5 x the every-frame throughput)")
    pe.add_argument("--live-seconds", type=_positive(float, "--live-seconds", 1), default=30.0, metavar="S",
                    help="length of each live run (default 30 s)")
    _network_run_options(pe, "depth-every")

    pf = sub.add_parser("fixed-costs", help="CPU ms per frame of every step besides the models (pre/post-processing, "
                                           "overlay, encoder presets)",
                        description="Each per-frame step of the product on one thread, on the source's frames, steps "
                                    "interleaved over --rounds. See bench/fixed_costs.py.")
    pf.add_argument("--source", default="demo", help="what to decode (default: demo, the bundled clip)")
    pf.add_argument("--frames", type=_positive(int, "--frames", 1), default=150, help="frames timed (default 150)")
    pf.add_argument("--rounds", type=_positive(int, "--rounds", 1), default=5, help="interleaved rounds (default 5)")
    pf.add_argument("--presets", nargs="+", default=["ultrafast", "superfast", "veryfast"], metavar="P",
                    choices=["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"],
                    help="libx264 presets to time (default ultrafast superfast veryfast)")
    _network_run_options(pf, "fixed-costs")

    pa = sub.add_parser("live-age", help="a paced live run for minutes: frame age against the per-frame service time, "
                                         "window by window",
                        description="The whole product on a source paced like a camera (latest policy), MP4 written; "
                                    "per window the frame age, the service time and memory. See bench/live_age.py.")
    pa.add_argument("--source", default="demo", help="what to decode, looped (default: demo, the bundled clip)")
    pa.add_argument("--fps", type=_positive(float, "--fps", 0.1), default=10.0, help="the camera's rate (default 10, the clip's)")
    pa.add_argument("--minutes", type=_positive(float, "--minutes", 0.05), default=10.0, help="length of the run (default 10)")
    pa.add_argument("--window", type=_positive(float, "--window", 1), default=60.0, metavar="S", help="seconds per window (default 60)")
    pa.add_argument("--layout", choices=["serial", "parallel"], default="parallel")
    _network_run_options(pa, "live-age")

    pb = sub.add_parser("board-rgbd", help="RGB-D pairs with the true depth on a chessboard (solvePnP), from its photos",
                        description="Each photo's board pose (solvePnP, with a camera profile's intrinsics or ones "
                                    "calibrated from the same photos) gives the depth of every pixel on the board. "
                                    "See bench/board_rgbd.py.")
    pb.add_argument("photos", nargs="+", metavar="PHOTO", help="image files, folders or globs")
    pb.add_argument("--board", required=True, metavar="COLSxROWS", help="inner corners, e.g. 9x6")
    pb.add_argument("--square-mm", required=True, type=_positive(float, "--square-mm", 1e-6), metavar="MM",
                    help="the printed square's side in millimetres (every distance scales with it)")
    pb.add_argument("--camera", metavar="YAML", default=None,
                    help="a camera profile with the intrinsics (default: calibrate from these photos)")
    pb.add_argument("--out", required=True, help="folder for rgb/, depth/ and boards.json")
    pb.add_argument("--force", action="store_true", help="write into a folder that is not empty")

    ps = sub.add_parser("size-prior", help="size-prior distances vs the ground plane, automatic scale, cross-check",
                        description="On the bundled clip (and photos): the size priors' distances against the ground "
                                    "plane's, the automatic scale of deliberately rescaled sources (ground plane, "
                                    "FastDepth-224) and the cross-check's verdicts. See bench/sizeprior_bench.py.")
    ps.add_argument("--frames", type=_positive(int, "--frames", 2), default=150, help="frames of the clip (default 150: all)")
    ps.add_argument("--no-photos", action="store_true", help="only the clip (skip the cross-check on photos)")
    ps.add_argument("--config", metavar="YAML")
    ps.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ps.add_argument("--out", default=DEFAULT_OUT, help=f"folder for size-prior.json / .md / .png (default {DEFAULT_OUT})")
    ps.add_argument("--no-plot", action="store_true", help="skip the PNG")

    po = sub.add_parser("overlay", help="share of the found objects the overlay hides, and its ms per frame",
                        description="Runs the product on the source's frames (as lossless PNGs) and compares each "
                                    "annotated frame with its source inside every reported box. See "
                                    "bench/overlay_bench.py.")
    po.add_argument("--source", default="demo", help="demo (default), a video file, a folder or glob of images")
    po.add_argument("--size", type=_size, default=None, metavar="WxH",
                    help="scale every frame to this size first, e.g. 640x360 or 1920x1080 (default: as decoded)")
    po.add_argument("--frames", type=_positive(int, "--frames", 0), default=0, help="at most this many frames (default 0 = all)")
    po.add_argument("--closer-than", type=_positive(float, "--closer-than", 1e-6), default=None, metavar="M",
                    help="the distance band, metres (default: no band)")
    po.add_argument("--further-than", type=_positive(float, "--further-than", 1e-6), default=None, metavar="M")
    po.add_argument("--config", metavar="YAML", help="a config file whose keys override config.yaml")
    po.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one config key (repeatable)")
    po.add_argument("--keep", metavar="DIR", default=None, help="keep the source and annotated frames in this new folder")
    po.add_argument("--out", default=DEFAULT_OUT, help=f"folder for the report (default {DEFAULT_OUT})")
    po.add_argument("--stem", default="overlay", help="report file names: STEM.json, STEM.md (default overlay)")

    pt = sub.add_parser("tracks", help="per track: share of consecutive-frame distance changes above 10 %%, raw and filtered; the events",
                        description="Reads the JSONL of a python -m stream run. See bench/tracks.py.")
    pt.add_argument("jsonl", nargs="+", help="JSONL files of python -m stream runs")
    pt.add_argument("--threshold", type=_positive(float, "--threshold", 1e-6), default=0.10,
                    help="a change counts when it is above this share of the earlier distance (default 0.10)")
    pt.add_argument("--out", default=DEFAULT_OUT, help=f"folder for tracks.json / .md (default {DEFAULT_OUT})")

    pv = sub.add_parser("serve", help="FPS of a served run (--serve) without and with N MJPEG viewers, paired runs",
                        description="Runs the bundled clip looped through python -m stream's run with its browser view on "
                                    "127.0.0.1, alternately without and with N viewers (a separate process reading "
                                    "/stream.mjpg). See bench/serve_bench.py.")
    pv.add_argument("--source", default="demo", help="what to decode, looped (default: demo)")
    pv.add_argument("--viewers", type=_positive(int, "--viewers", 1), default=10, help="MJPEG viewers (default 10)")
    pv.add_argument("--stalled", type=_positive(int, "--stalled", 0), default=0,
                    help="viewers more that connect and never read (default 0)")
    pv.add_argument("--frames", type=_positive(int, "--frames", 2), default=300, help="measured frames per run (default 300)")
    pv.add_argument("--warmup", type=_positive(int, "--warmup", 0), default=30, help="frames left out at the start (default 30)")
    pv.add_argument("--repeat", type=_positive(int, "--repeat", 1), default=4, help="pairs of runs (default 4)")
    pv.add_argument("--pace", type=_positive(float, "--pace", 0.1), default=None, metavar="FPS",
                    help="feed frames at this rate, like a camera (default: as fast as the pipeline goes)")
    pv.add_argument("--closer-than", type=_positive(float, "--closer-than", 1e-6), default=30.0, metavar="M",
                    help="the distance band, metres (default 30, as make demo)")
    pv.add_argument("--config", metavar="YAML", help="a config file whose keys override config.yaml")
    pv.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one config key (repeatable)")
    pv.add_argument("--out", default=DEFAULT_OUT, help=f"folder for serve.json / .md (default {DEFAULT_OUT})")

    pu = sub.add_parser("multi", help="several sources in one process: total and per-camera FPS for 1, 2, 4 sources per backend",
                        description="Copies of the clip run at once through python -m stream's several-source run, the "
                                    "models shared (in-process, or on a Triton server: --backend triton://HOST:PORT, "
                                    "started as the README's 'Many cameras' says). See bench/multi_bench.py.")
    pu.add_argument("--sources", type=_positive(int, "--sources", 1), nargs="+", default=[1, 2, 4], help="source counts (default 1 2 4)")
    pu.add_argument("--backend", nargs="+", default=["ort-cpu"], help="backends, e.g. ort-cpu triton://127.0.0.1:8001 (default ort-cpu)")
    pu.add_argument("--frames", type=_positive(int, "--frames", 1), default=150, help="frames per source (default 150: the whole clip)")
    pu.add_argument("--repeat", type=_positive(int, "--repeat", 1), default=2, help="rounds over every backend and count (default 2)")
    pu.add_argument("--source", default="demo", help="the clip each source copies (default demo)")
    pu.add_argument("--batched", action="store_true", help="the detector with its batch axis freed (export/batch_axis.py): "
                    "frames of several cameras in one call; on Triton the server must hold it (python -m engines triton-repo FILE)")
    pu.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one config key (repeatable)")
    pu.add_argument("--out", default=DEFAULT_OUT, help=f"folder for multi.json / .md (default {DEFAULT_OUT})")
    pu.add_argument("--stem", default="multi", help="file names of the report (default multi)")

    pc = sub.add_parser("contact-sheet", help="grids of frames with every box's track id, to count identity switches by eye",
                        description="Draws the boxes of a python -m stream run's JSONL on the frames of its source.")
    pc.add_argument("jsonl", help="the JSONL of a python -m stream run")
    pc.add_argument("--source", default="demo", help="the run's --source (default demo)")
    pc.add_argument("--start", type=_positive(int, "--start", 0), default=0, help="first frame index (default 0)")
    pc.add_argument("--frames", type=_positive(int, "--frames", 1), default=100, help="frames drawn (default 100)")
    pc.add_argument("--cols", type=_positive(int, "--cols", 1), default=4)
    pc.add_argument("--rows", type=_positive(int, "--rows", 1), default=4)
    pc.add_argument("--scale", type=_positive(float, "--scale", 0.05), default=0.5, help="cell size / frame size (default 0.5)")
    pc.add_argument("--crop", default=None, metavar="X1,Y1,X2,Y2", help="show only this part of each frame (frame pixels)")
    pc.add_argument("--out", required=True, help="folder for the PNG sheets")
    return p


def _size(text: str) -> tuple[int, int]:
    from .overlay_bench import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
