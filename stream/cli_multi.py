"""The CLI's part for several sources (``--source A --source B --output-dir DIR``): the flags that go with them, each
source's config, the per-source summaries and the exit code. The run itself: :mod:`stream.multi`."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Callable

from depthstream.errors import ConfigError
from depthstream.redact import redact
from depthstream.schema.config import Config, load_config

from . import signals
from .multi import MultiSummary, run_many, source_names


def check_multi_flags(args: argparse.Namespace, sources: list) -> None:
    """Flags that do not go with several sources or with ``--output-dir``: one ConfigError line each."""
    several = len(sources) > 1
    if several and (args.output or args.jsonl):
        flag = "--output" if args.output else "--jsonl"
        raise ConfigError(f"{flag} names one file, for one source; with {len(sources)} --source give --output-dir DIR "
                          f"instead (each source writes DIR/NAME.mp4 and DIR/NAME.jsonl)")
    if args.output_dir is not None and (args.output or args.jsonl):
        raise ConfigError("--output-dir and --output/--jsonl both name outputs: give --output-dir DIR alone (it writes "
                          "DIR/NAME.mp4 and DIR/NAME.jsonl) or --output/--jsonl alone")
    if several and args.serve:
        raise ConfigError(f"--serve shows one source, got {len(sources)} --source: run one process per browser view")
    if several and args.show:
        raise ConfigError(f"--show opens one window for one source, got {len(sources)} --source: give one --source, "
                          f"or watch DIR/NAME.mp4 of --output-dir")
    if args.output_dir is not None and Path(args.output_dir).exists() and not Path(args.output_dir).is_dir():
        raise ConfigError(f"--output-dir {args.output_dir} is a file: give a folder (it is created if missing)")


def with_output_dir(cfg: Config, folder: str, name: str) -> Config:
    """``cfg`` writing ``folder/NAME.mp4`` and ``folder/NAME.jsonl``."""
    base = Path(folder).expanduser()
    return replace(cfg, output=replace(cfg.output, mp4=str(base / f"{name}.mp4"), jsonl=str(base / f"{name}.jsonl")))


def source_configs(args: argparse.Namespace, overrides: dict, sources: list[str]) -> list[tuple[str, Config]]:
    """(name, config) per source: the same config with that source and, under ``--output-dir``, its outputs."""
    configs = []
    for name, uri in zip(source_names(sources), sources):
        cfg = load_config(args.config, args.set, {**overrides, "source.uri": uri})
        if cfg.output.mp4 or cfg.output.jsonl:
            raise ConfigError(f"output.mp4 / output.jsonl in the config name one file, for one source; with "
                              f"{len(sources)} --source give --output-dir DIR instead")
        if cfg.camera.profile is not None:
            raise ConfigError(f"--camera (camera.profile) is one camera's profile and is never applied to another "
                              f"source; with {len(sources)} --source each uses its own (the bundled clip's, by name or "
                              f"sha256) or none: run the profiled camera in a process of its own")
        if cfg.serve.listen is not None or cfg.output.show:
            raise ConfigError("serve.listen and output.show in the config are for one source: set them to null / "
                              "false for several --source")
        configs.append((name, with_output_dir(cfg, args.output_dir, name) if args.output_dir else cfg))
    return configs


def format_many(multi: MultiSummary, format_summary: Callable) -> str:
    """Each source's summary under its name, then the totals."""
    lines = []
    for r in multi.runs:
        lines.append(f"== {r.name}: {r.source} ==")
        if r.summary is not None and (r.summary.frames or not r.failed):
            lines.append(format_summary(r.summary))
        if r.failed:
            lines.append(f"FAILED: {redact(r.error)}")
    stopped = sum(r.interrupted for r in multi.runs)
    ok = len(multi.runs) - len(multi.failed) - stopped
    per = ", ".join(f"{r.name} {r.summary.fps:.1f}" for r in multi.runs if r.summary is not None and r.frames)
    how = f"{ok} ok, {len(multi.failed)} failed" + (f", {stopped} interrupted" if stopped else "")
    lines.append(f"total: {len(multi.runs)} sources ({how}), {multi.frames} frames in "
                 f"{multi.wall_s:.1f} s = {multi.fps:.1f} FPS" + (f"; per source FPS: {per}" if per else ""))
    for name, (calls, runs, largest, batching) in sorted(multi.models.items()):
        how = (f"{runs} model runs, up to {largest} frames in one (batched)" if batching
               else f"{runs} model runs, one frame each (fixed batch of 1: the sources take turns)")
        lines.append(f"shared model {name}: {calls} frames, {how}")
    return "\n".join(lines)


def main_many(args: argparse.Namespace, overrides: dict, format_summary: Callable) -> int:
    """Several sources: run them, print each one's summary and the totals; the exit code of the whole run."""
    configs = source_configs(args, overrides, args.source)
    inputs = {"the config file": args.config} if args.config else None
    multi = run_many(configs, inputs=inputs)
    if not args.quiet:
        sys.stdout.write(format_many(multi, format_summary) + "\n")
    for r in multi.failed:
        sys.stderr.write(f"error: source {r.name} ({r.source}): {redact(r.error)}\n")
    signum = signals.received()
    if signum is not None:
        paths = [p for r in multi.runs if r.summary is not None and r.frames for p in r.summary.outputs]
        word = signals.ended_by(signum)
        sys.stderr.write(f"{word}" + (f"; outputs closed: {' '.join(paths)}" if paths else "; nothing written") + "\n")
        return signals.EXIT_CODES.get(signum, 130)
    return multi.exit_code()
