"""``python -m bench``: pipeline, model and depth-accuracy benchmarks -> JSON, Markdown and a plot.

Exit codes: 0 ok, 1 runtime error, 2 usage or config error, 130 interrupted.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from depthstream.errors import ConfigError, guarded_main

from .cli import build_parser


def _write(report: dict, out: Path, stem: str, markdown: str) -> list[Path]:
    from .report import write_json

    paths = [write_json(report, out / f"{stem}.json")]
    md = out / f"{stem}.md"
    md.write_text(markdown)
    paths.append(md)
    return paths


def _report(stem: str, title: str, results: dict, timing: dict, markdown, args, argv: list[str]) -> list[Path]:
    """The JSON and Markdown of a benchmark whose Markdown takes the report and its header; the Markdown printed."""
    from .report import _header, new_report

    report = new_report(stem, argv, results, dict(timing), args.loadavg_before)
    md = markdown(report, _header(report, title))
    paths = _write(report, Path(args.out), stem, md)
    sys.stdout.write(md + "\n")
    return paths


def cmd_pipeline(args, argv: list[str]) -> list[Path]:
    from .pipeline_bench import PIPELINE_TIMING, bench_pipeline, default_workloads, workloads_from
    from .pipeline_report import pipeline_markdown, pipeline_plot
    from .report import UNTRAINED_NOTE, new_report

    if args.depth and args.depth_model:
        raise ConfigError("give --depth (the workloads) or --depth-model (the network of the default workloads), "
                          "not both")
    workloads, skipped = (workloads_from(args.depth), []) if args.depth else default_workloads(args.depth_model)
    results = bench_pipeline(source=args.source, layouts=args.layouts, frames=args.frames, warmup=args.warmup,
                             workloads=workloads, pace=args.pace, repeat=args.repeat, config=args.config,
                             sets=args.set, closer_than=args.closer_than, skipped=skipped)
    timing = dict(PIPELINE_TIMING)
    if any(w.untrained for w in workloads):
        timing["weights"] = UNTRAINED_NOTE
    report = new_report("pipeline", argv, results, timing, args.loadavg_before)
    out = Path(args.out)
    md = pipeline_markdown(report)
    paths = _write(report, out, "pipeline", md)
    if not args.no_plot:
        png = pipeline_plot(report, out / "pipeline.png")
        if png is not None:
            paths.append(png)
    sys.stdout.write(md + "\n")
    return paths


def cmd_models(args, argv: list[str]) -> list[Path]:
    from .models_bench import MODELS_TIMING, bench_models, default_models
    from .report import new_report, models_markdown

    models = [Path(m) for m in args.model] if args.model else default_models()
    results = bench_models(models=models, backends=args.backend, precisions=args.precision,
                           threads=args.threads, iterations=args.iterations, warmup=args.warmup)
    report = new_report("models", argv, results, dict(MODELS_TIMING), args.loadavg_before)
    md = models_markdown(report)
    paths = _write(report, Path(args.out), "models", md)
    sys.stdout.write(md + "\n")
    return paths


def cmd_depth(args, argv: list[str]) -> list[Path]:
    from .depth_bench import bench_depth
    from .report import depth_markdown, new_report

    results, timing = bench_depth(data=Path(args.data), depth_model=args.depth_model, depth_scale=args.depth_scale,
                                  align=args.align, preset=args.preset, min_depth=args.min_depth,
                                  max_depth=args.max_depth, crop=args.crop, seed_decimals=args.seed_decimals,
                                  config=args.config, sets=args.set)
    report = new_report("depth", argv, results, timing, args.loadavg_before)
    md = depth_markdown(report)
    paths = _write(report, Path(args.out), "depth", md)
    sys.stdout.write(md + "\n")
    return paths


def cmd_depth_every(args, argv: list[str]) -> list[Path]:
    from .depth_every import DEPTH_EVERY_TIMING, bench_depth_every, depth_every_markdown

    results = bench_depth_every(source=args.source, every=args.every, depth_model=args.depth_model, frames=args.frames,
                                warmup=args.warmup, repeat=args.repeat, live_fps=args.live_fps, config=args.config,
                                sets=args.set, live_s=args.live_seconds)
    return _report("depth-every", "Depth at its own rate (depth.every)", results, DEPTH_EVERY_TIMING,
                   depth_every_markdown, args, argv)


def cmd_fixed_costs(args, argv: list[str]) -> list[Path]:
    from .fixed_costs import FIXED_COSTS_TIMING, bench_fixed_costs, fixed_costs_markdown

    results = bench_fixed_costs(source=args.source, frames=args.frames, rounds=args.rounds, presets=args.presets,
                                depth_model=args.depth_model, config=args.config, sets=args.set)
    return _report("fixed-costs", "Fixed costs per frame (besides the models)", results, FIXED_COSTS_TIMING,
                   fixed_costs_markdown, args, argv)


def cmd_live_age(args, argv: list[str]) -> list[Path]:
    from .live_age import LIVE_AGE_TIMING, bench_live_age, live_age_markdown

    results = bench_live_age(source=args.source, fps=args.fps, minutes=args.minutes, window_s=args.window,
                             layout=args.layout, depth_model=args.depth_model, config=args.config, sets=args.set)
    return _report("live-age", "Live frame age over a paced run", results, LIVE_AGE_TIMING, live_age_markdown,
                   args, argv)


def cmd_layouts(args, argv: list[str]) -> list[Path]:
    from .layouts_agree import LAYOUTS_TIMING, bench_layouts, layouts_markdown
    from .report import new_report

    results = bench_layouts(args.source, config=args.config, sets=args.set, closer_than=args.closer_than,
                            further_than=args.further_than, depth_model=args.depth_model, camera=args.camera,
                            max_frames=args.max_frames)
    report = new_report("layouts", argv, results, dict(LAYOUTS_TIMING), args.loadavg_before)
    md = layouts_markdown(report)
    paths = _write(report, Path(args.out), "layouts", md)
    sys.stdout.write(md + "\n")
    return paths


def cmd_board_rgbd(args, argv: list[str]) -> list[Path]:
    from stream.calibrate.chessboard import Board

    from .board_rgbd import board_markdown, write_board_pairs

    out = Path(args.out)
    report = write_board_pairs(args.photos, Board.parse(args.board, args.square_mm), out, args.camera, args.force)
    sys.stdout.write(board_markdown(report, out) + "\n")
    return [out / "boards.json"]


def cmd_size_prior(args, argv: list[str]) -> list[Path]:
    from depthstream.schema.config import load_config

    from .report import new_report
    from .sizeprior_bench import bench_size_prior
    from .sizeprior_report import size_prior_markdown, size_prior_plot

    results = bench_size_prior(load_config(args.config, args.set), frames=args.frames, photos=not args.no_photos)
    timing = {"note": "accuracy only; nothing here is timed"}
    report = new_report("size-prior", argv, results, timing, args.loadavg_before)
    out = Path(args.out)
    md = size_prior_markdown(report)
    paths = _write(report, out, "size-prior", md)
    if not args.no_plot:
        png = size_prior_plot(report, out / "size-prior.png")
        if png is not None:
            paths.append(png)
    sys.stdout.write(md + "\n")
    return paths


def cmd_overlay(args, argv: list[str]) -> list[Path]:
    from .overlay_bench import OVERLAY_TIMING, bench_overlay, overlay_markdown
    from .report import new_report

    results = bench_overlay(source=args.source, size=args.size, frames=args.frames, closer_than=args.closer_than,
                            further_than=args.further_than, config=args.config, sets=args.set,
                            keep=Path(args.keep) if args.keep else None)
    report = new_report("overlay", argv, results, dict(OVERLAY_TIMING), args.loadavg_before)
    md = overlay_markdown(report)
    paths = _write(report, Path(args.out), args.stem, md)
    sys.stdout.write(md + "\n")
    return paths


def cmd_tracks(args, argv: list[str]) -> list[Path]:
    from .report import new_report
    from .tracks import jumps, read_jsonl, series_by_track, tracks_markdown

    results, parts = [], []
    for name in args.jsonl:
        frames, events = read_jsonl(Path(name))
        stats = jumps(series_by_track(frames), args.threshold)
        results.append({"jsonl": name, **stats, "events": events})
        parts.append(tracks_markdown(Path(name), stats, events))
    report = new_report("tracks", argv, {"runs": results}, {}, args.loadavg_before)
    md = "\n\n".join(parts)
    paths = _write(report, Path(args.out), "tracks", md)
    sys.stdout.write(md + "\n")
    return paths


def cmd_serve(args, argv: list[str]) -> list[Path]:
    from depthstream.schema.config import load_config

    from .report import new_report
    from .serve_bench import SERVE_TIMING, bench_serve, serve_markdown

    cfg = load_config(args.config, args.set, {"band.closer_than": args.closer_than})
    results = bench_serve(cfg, args.source, args.frames, args.warmup, args.viewers, args.stalled, args.repeat,
                          args.pace)
    report = new_report("serve", argv, results, dict(SERVE_TIMING), args.loadavg_before)
    md = serve_markdown(report)
    paths = _write(report, Path(args.out), "serve", md)
    sys.stdout.write(md + "\n")
    return paths


def cmd_multi(args, argv: list[str]) -> list[Path]:
    from .multi_bench import MULTI_TIMING, bench_multi, multi_markdown
    from .report import new_report

    results = bench_multi(args.sources, args.backend, args.frames, args.repeat, args.source, args.batched, args.set)
    report = new_report("multi", argv, results, dict(MULTI_TIMING), args.loadavg_before)
    md = multi_markdown(report)
    paths = _write(report, Path(args.out), args.stem, md)
    sys.stdout.write(md + "\n")
    return paths


def cmd_contact_sheet(args, argv: list[str]) -> list[Path]:
    from .tracks import contact_sheets

    crop = None
    if args.crop:
        try:
            crop = tuple(int(v) for v in args.crop.split(","))
        except ValueError:
            crop = ()
        if len(crop) != 4 or not (0 <= crop[0] < crop[2] and 0 <= crop[1] < crop[3]):
            raise ConfigError(f"--crop {args.crop!r}: expected X1,Y1,X2,Y2 in frame pixels with X1 < X2 and Y1 < Y2, e.g. 200,100,500,350")
    return contact_sheets(args.source, Path(args.jsonl), Path(args.out), args.start, args.frames, args.cols, args.rows,
                          args.scale, crop)


COMMANDS = {"pipeline": cmd_pipeline, "models": cmd_models, "depth": cmd_depth, "depth-every": cmd_depth_every,
            "fixed-costs": cmd_fixed_costs, "live-age": cmd_live_age,
            "layouts-agree": cmd_layouts,
            "board-rgbd": cmd_board_rgbd, "overlay": cmd_overlay, "tracks": cmd_tracks, "contact-sheet": cmd_contact_sheet,
            "size-prior": cmd_size_prior, "serve": cmd_serve, "multi": cmd_multi}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from .env import loadavg

    args.loadavg_before = loadavg()
    logging.getLogger("stream").setLevel(logging.WARNING)

    def body() -> int:
        for path in COMMANDS[args.command](args, argv):
            sys.stdout.write(f"wrote {path}\n")
        return 0

    return guarded_main(body)


if __name__ == "__main__":
    sys.exit(main())
