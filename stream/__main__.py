"""``python -m stream``: detect objects and tell how far away they are, on a video, camera or stream.

Exit codes: 0 ok, 1 runtime error, 2 usage or config error, 130 interrupted (Ctrl-C), 143 terminated
(SIGTERM). Both signals close the outputs first, at any moment of a run: the MP4 is playable and holds the same
frames as the JSONL (:mod:`stream.signals`).
"""

from __future__ import annotations

import sys

from . import signals

if __name__ == "__main__":
    signals.install(armed=False)  # before the imports below: a signal during them is noted, main() then exits

import argparse
import logging
import math
import os
import signal
import threading

from engines.backends import BACKENDS

from depthstream.schema.config import load_config
from depthstream.errors import ConfigError, StreamError
from depthstream.redact import RedactingFilter, redact

EPILOG = """examples:
  python -m stream --source demo --closer-than 30 --output out/near.mp4 --jsonl out/near.jsonl
  python -m stream --source clip.mp4 --further-than 3 --layout parallel --output out.mp4
  python -m stream --source clip.mp4 --set detect.conf=0.4 --max-frames 200 --show
  python -m stream --source rtsp://cam/1 --source rtsp://cam/2 --output-dir out/    (several sources, shared models)
  python -m stream --source 0 --serve 127.0.0.1:8080    (a browser view: open http://127.0.0.1:8080/)
  DEPTHSTREAM_SERVE_TOKEN=... python -m stream --source rtsp://cam/1 --serve 0.0.0.0:8080
  python -m stream calibrate --help    (camera profiles: chessboard photos, known distances, RGB-D pairs)

every default lives in config.yaml; --set KEY=VALUE overrides any of them (e.g. --set detect.classes=[person,car])
exit codes: 0 ok, 1 runtime error, 2 usage or config error, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM)"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one clear line, no usage block
        self.exit(2, f"error: {redact(message)} (see python -m stream --help)\n")


def _metres(flag: str):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be a distance in metres, got {text!r}") from None
        if not math.isfinite(value) or value <= 0:
            raise argparse.ArgumentTypeError(f"{flag} must be a positive number of metres, got {text}")
        return value

    return parse


def _backend(text: str) -> str:
    if text in BACKENDS or text.startswith("triton://"):
        return text
    raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from {', '.join(BACKENDS)}, or triton://HOST:PORT)")


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--max-frames must be a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"--max-frames must be >= 0 (0 = all), got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m stream",
        description="Find objects in a video and tell how far away they are, in metres, from one ordinary camera.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--source", action="append", help="demo (bundled clip) | video file | image folder or glob | camera index | rtsp://... (default: config source.uri); repeat it for several sources in one process, with --output-dir")
    p.add_argument("--closer-than", type=_metres("--closer-than"), metavar="M", help="keep objects nearer than M metres")
    p.add_argument("--further-than", type=_metres("--further-than"), metavar="M", help="keep objects farther than M metres")
    p.add_argument("--layout", choices=["serial", "parallel"], help="serial: mask by depth, then detect; parallel: depth and detection at once (default: config)")
    p.add_argument("--output", metavar="MP4", help="write the annotated video (H.264 MP4)")
    p.add_argument("--jsonl", metavar="FILE", help="write one JSON line per frame (boxes, classes, scores, metres, timings)")
    p.add_argument("--output-dir", metavar="DIR", help="write each source's NAME.mp4 and NAME.jsonl there, NAME taken from the source (for several --source; also fine with one)")
    p.add_argument("--config", metavar="YAML", help="a config file whose keys override config.yaml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one config key, e.g. detect.conf=0.4 (repeatable)")
    p.add_argument("--max-frames", type=_count, metavar="N", help="stop after N frames (0 = all)")
    p.add_argument("--show", action="store_true", default=None, help="show the annotated video in a window (q or Esc stops)")
    p.add_argument("--backend", type=_backend, metavar="BACKEND", help="how the models run: auto (TensorRT, else ONNX Runtime CUDA, else CPU) | ort-cpu | ort-cuda | ort-trt | trt | triton://HOST:PORT (a Triton server, gRPC) (default: config engine.backend; python -m engines info lists this machine's)")
    p.add_argument("--detector", metavar="ONNX", help="a YOLO-family detector: YOLOX, Ultralytics v8/11/26, YOLOv5/v7 or end-to-end YOLO26/v10 (python -m export detector writes one with its sidecar; default: config detect.model)")
    p.add_argument("--depth-model", metavar="CARD", help="a depth model card (.yaml) or an .onnx with its card beside it "
                   "(default: config depth.source auto = the camera profile's ground plane when it has a mounting, else "
                   "the bundled network FastDepth-224: metric, indoor, 0.5-10 m)")
    p.add_argument("--camera", metavar="PROFILE", help="the source's camera profile (.yaml: intrinsics with their "
                   "resolution, mounting, depth calibrations; python -m stream calibrate writes one). Default: config "
                   "camera.profile, else the source's own (the bundled clip's, for that clip only), else none")
    p.add_argument("--on-event", metavar="TARGET", help="deliver each track event (entered / left the band, approaching) as JSON: an http(s):// URL gets a POST, anything else is a command run with the event on its standard input (default: config events.on_event)")
    p.add_argument("--serve", metavar="HOST:PORT", help="a browser view of the run: live video, the band and layout controls, the objects in the band, events, try a photo (PORT alone: 127.0.0.1; any other address needs --serve-token) (default: config serve.listen)")
    p.add_argument("--serve-token", metavar="TOKEN", help="every request to the browser view must carry it (?token=TOKEN or Authorization: Bearer TOKEN); DEPTHSTREAM_SERVE_TOKEN keeps it out of the process list")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no summary; errors are still printed")
    return p


MANY_FLAGGED = 0.25  # the summary shouts when at least this share of the boxes had a distance flagged unreliable


def format_summary(s) -> str:
    from .app import MAIN_STAGES

    lines = [
        f"{s.frames} frames in {s.wall_s:.1f} s = {s.fps:.1f} FPS  ({s.layout} layout, {s.policy} policy, stopped by {s.stopped_by})",
        f"source: {s.source}   camera profile: {s.camera}",
        f"depth: {s.depth_source} ({s.depth_state or s.depth_kind}; {s.depth_why}), box distance = {s.box_stat}   "
        f"band: {s.band}",
    ]
    rate = s.depth_rate
    if rate is not None and (rate.auto or rate.every > 1):
        at = ", ".join(f"every {n}: {k}" for n, k in sorted(rate.frames_at.items()))
        lines.append(f"depth rate: {rate.describe()}: the network ran on {rate.runs} frames, {rate.reused} reused its "
                     f"last map (frames processed at {at})")
    lines += s.depth_notes
    if s.backend:
        lines.append(f"backend: {s.backend}")
    if s.threads is not None:
        lines.append(f"model threads: detect {s.threads.detect}" + (f", depth {s.threads.depth}" if s.threads.depth else ""))
    if s.dropped or s.policy == "latest":
        lines.append(f"dropped frames (live source, newest kept): {s.dropped}")
    if s.outages:
        lines.append(f"source outages: {s.outages}, {s.outage_s:.1f} s without frames in all (no frame invented: indices and times jump over each gap)")
    if s.frames:
        lines.append("per-stage ms      p50     p95")
        for stage in MAIN_STAGES:
            if stage in s.timings:
                p50, p95 = s.percentiles(stage)
                lines.append(f"  {stage:<12} {p50:7.1f} {p95:7.1f}")
        p50, p95, p99 = s.age_percentiles()
        lines.append(f"  {'frame age':<12} {p50:7.1f} {p95:7.1f}   p99 {p99:.1f}  (decode -> written)")
    if s.tracks is not None:
        rejected, measured = s.distances_rejected
        share = f" ({100 * rejected / measured:.1f} %)" if measured else ""
        events = ", ".join(f"{k} {v}" for k, v in sorted(s.events.items())) or "none"
        lines.append(f"tracks: {s.tracks}   distances rejected as outliers: {rejected} of {measured}{share}   events: {events}")
    if s.delivery is not None:
        d = s.delivery
        lines.append(f"events delivered to {s.delivery_target}: {d.delivered} ok, {d.failed} failed, "
                     f"{d.dropped} dropped (queue full), {d.abandoned} not sent at the end")
    if s.flagged:
        why = "; ".join(f"{k} ({v})" for k, v in sorted(s.unreliable.items(), key=lambda kv: -kv[1]))
        lines.append(f"{'MANY ' if s.flagged >= MANY_FLAGGED * s.boxes else ''}distances flagged unreliable: "
                     f"{s.flagged} of {s.boxes} boxes ({100 * s.flagged / s.boxes:.0f} %), shown as estimates, never "
                     f"trusted: {why}")
    if s.served is not None:
        v = s.served
        lines.append(f"browser view {v['url']}: {v['viewers_total']} video viewers in all, {v['encodes']} JPEG encodes "
                     f"for {s.frames} frames, {v['dropped_viewers']} viewers dropped (stalled)")
    if s.objects:
        objs = ", ".join(f"{k} {v}" for k, v in sorted(s.objects.items(), key=lambda kv: -kv[1]))
        lines.append(f"objects in band (boxes over all frames): {objs}")
    else:
        lines.append("objects in band: none")
    for path in s.outputs:
        lines.append(f"wrote {path}")
    return "\n".join(lines)


def main(argv: list[str] | None = None, *, program: bool = False) -> int:
    """The CLI. ``program``: this process is ``python -m stream`` and ends when it returns, so the signal handler
    stays (a signal after the run only is noted) instead of being put back as for a call from Python."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["calibrate"]:  # python -m stream calibrate ...: camera profiles (stream/calibrate/cli.py)
        from .calibrate.cli import main as calibrate_main

        return calibrate_main(argv[1:])
    args = None
    if threading.current_thread() is not threading.main_thread():
        return _main(build_parser().parse_args(argv))
    signals.install()
    try:
        signals.arm()  # a signal noted while this module was imported: exit now
        args = build_parser().parse_args(argv)
        return _main(args)
    except KeyboardInterrupt as exc:  # before the run started
        return _interrupted(exc, args, None)
    finally:
        signals.disarm() if program else signals.restore()


def _interrupted(exc: BaseException | None, args: argparse.Namespace | None, summary) -> int:
    """Ctrl-C / SIGTERM: the summary of what was done (if frames were written), one line on stderr, 130 / 143."""
    signum = signals.received() or getattr(exc, "signum", signal.SIGINT)
    quiet = args is not None and args.quiet
    if summary is not None and summary.frames and not quiet:
        sys.stdout.write(format_summary(summary) + "\n")
    if summary is not None and summary.frames:
        paths = [p for p in (args.output, args.jsonl) if p] if args is not None else []
        out = f"; outputs closed: {' '.join(paths)}" if paths else ""
    else:
        out = "; nothing written" if args is not None and (args.output or args.jsonl) else ""
    word = signals.ended_by(signum)
    when = "" if summary is not None and summary.frames else " before the first frame"
    sys.stderr.write(f"{word}{when}{out}\n")
    return signals.EXIT_CODES.get(signum, 130)


def _main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s: %(message)s")
    for handler in logging.getLogger().handlers:  # credentials never reach a log line (the sources' own and the libraries')
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    progress = None
    try:
        sources = args.source or [None]
        overrides = _overrides(args)
        if len(sources) > 1 or args.output_dir is not None:
            from .cli_multi import check_multi_flags, main_many

            check_multi_flags(args, sources)
            if len(sources) > 1:
                return main_many(args, overrides, format_summary)
        cfg = load_config(args.config, args.set, overrides)
        if args.output_dir is not None:  # one source: its outputs under the folder, named as with several
            from .cli_multi import with_output_dir
            from .multi import source_name

            cfg = with_output_dir(cfg, args.output_dir, source_name(cfg.source.uri))
        if args.serve_token is not None and cfg.serve.listen is None:
            raise ConfigError("--serve-token is for the browser view: give --serve HOST:PORT too")
        if not args.quiet and sys.stderr.isatty():
            from tqdm import tqdm

            progress = tqdm(unit="frame", dynamic_ncols=True, leave=False)
        on_frame = _progress_callback(progress) if progress is not None else None
        inputs = {"the config file": args.config} if args.config else None
        if cfg.serve.listen is not None:
            from .serve import run_served

            summary = run_served(cfg, args.serve_token, on_frame=on_frame, inputs=inputs)
        else:
            from .app import run

            summary = run(cfg, on_frame=on_frame, inputs=inputs)
    except KeyboardInterrupt as exc:
        _close(progress)
        return _interrupted(exc, args, getattr(exc, "summary", None))  # summary: set when frames flowed
    except StreamError as exc:
        _close(progress)
        if signals.received():  # it failed because the signal cut something short
            return _interrupted(exc, args, None)
        sys.stderr.write(f"error: {redact(exc)}\n")
        return exc.exit_code
    except Exception as exc:
        if not signals.received():
            raise
        _close(progress)
        return _interrupted(exc, args, None)  # e.g. an import interrupted inside a C extension
    _close(progress)
    if signals.received():  # while the outputs were being finished: they are whole, the run was still interrupted
        return _interrupted(None, args, summary)
    if not args.quiet:
        sys.stdout.write(format_summary(summary) + "\n")
    return 0


def _overrides(args: argparse.Namespace) -> dict:
    """The dedicated flags as config keys (None: not given)."""
    return {
        "source.uri": args.source[0] if args.source else None,
        "band.closer_than": args.closer_than,
        "band.further_than": args.further_than,
        "pipeline.layout": args.layout,
        "output.mp4": args.output,
        "output.jsonl": args.jsonl,
        "source.max_frames": args.max_frames,
        "output.show": args.show,
        "depth.source": args.depth_model,
        "camera.profile": args.camera,
        "detect.model": args.detector,
        "engine.backend": args.backend,
        "events.on_event": args.on_event,
        "serve.listen": args.serve,
    }


def _progress_callback(progress):
    def on_frame(done: int, total: int | None) -> None:
        if total and progress.total != total:
            progress.total = total
        progress.update(1)

    return on_frame


def _close(progress) -> None:
    if progress is not None:
        progress.close()


if __name__ == "__main__":
    code = main(program=True)
    if signals.received() is not None:
        # Interrupted: leave now, with our exit code. A Ctrl-C that landed while a C extension ran Python code of its
        # own (onnxruntime's module set-up, which pybind11 runs through PyRun_String) is marked "unhandled" by CPython
        # even though it was caught here, and Python would then end the process by SIGINT at exit (-2 instead of 130).
        # Everything is closed and written: only stdio and logging are left to flush.
        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()
        os._exit(code)
    sys.exit(code)
