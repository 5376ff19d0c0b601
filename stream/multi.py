"""Several sources in one process (``python -m stream --source A --source B --output-dir out/``).

Each source runs the whole single-source run (:func:`stream.app.run`) in a thread of its own: its own pipeline,
queue policy, reconnects, drop and outage accounting, outputs (``NAME.mp4`` and ``NAME.jsonl`` under the output
folder, NAME from :func:`source_names`) and summary. The models are shared: one :class:`engines.shared.EnginePool`
gives every pipeline the same engine per model (one detector and one depth network loaded in the process), which
batches frames of several cameras into one call when the model has a free batch axis, else runs the calls in turn.

A source that fails (a dead camera after its reconnects, a file cut short, an output it may not write) ends alone;
the others go on. Ctrl-C / SIGTERM stop every pipeline at a frame boundary (:func:`stream.signals.relay`).
"""

from __future__ import annotations

import functools
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from depthstream.errors import ConfigError, StreamError
from depthstream.redact import redact
from depthstream.schema.config import Config
from engines.shared import DEFAULT_MAX_WAIT_S, EnginePool

from . import signals
from .app import Summary, run
from .pipeline import run_side_by_side

log = logging.getLogger(__name__)

NAME_MAX = 80  # characters of a file name taken from a source
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def source_name(uri: str) -> str:
    """A file name for a source's outputs: ``demo``; a file's or folder's name without its suffix
    (``/data/clip.mp4`` -> ``clip``); a camera ``camera0``; a URL's host and path without credentials or query
    (``rtsp://user:pw@cam/1?token=x`` -> ``cam_1``). Only letters, digits, ``.``, ``_`` and ``-``."""
    text = str(uri).strip()
    if text.isdigit():
        text = f"camera{text}"
    elif "://" in text:
        rest = redact(text).split("://", 1)[1].split("?", 1)[0].split("#", 1)[0]
        text = rest.rsplit("@", 1)[-1]
    elif any(ch.isspace() for ch in text):  # a GStreamer pipeline
        text = "gstreamer"
    else:
        path = Path(text.rstrip("/\\"))
        text = path.stem if path.suffix else path.name
        text = text.replace("*", "").replace("?", "") or path.parent.name
    name = _UNSAFE.sub("_", text).strip("._-")[:NAME_MAX] or "source"
    return name


def source_names(uris: list[str]) -> list[str]:
    """One unique name per source (:func:`source_name`; a repeated name gets ``_2``, ``_3``, ... in order).
    The same source given twice is a ConfigError."""
    seen: set[str] = set()
    for uri in uris:
        if uri in seen:
            raise ConfigError(f"--source {redact(uri)} is given twice: each source is read once; to run the same "
                              f"file twice, give a copy of it")
        seen.add(uri)
    names: list[str] = []
    for uri in uris:
        base = name = source_name(uri)
        k = 1
        while name.lower() in (n.lower() for n in names):
            k += 1
            name = f"{base}_{k}"
        names.append(name)
    return names


@dataclass
class SourceRun:
    """One source of a run with several: its name, what was given (redacted), its config, and how it ended."""

    name: str
    source: str
    cfg: Config
    summary: Summary | None = None
    error: BaseException | None = None  # what ended it early (None: it finished, or was stopped by a signal)
    interrupted: bool = False

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def frames(self) -> int:
        return self.summary.frames if self.summary is not None else 0


@dataclass
class MultiSummary:
    """What a run with several sources did: one :class:`SourceRun` each, the wall time of the whole run, and how
    the shared models were called (model file -> calls, executions, largest batch)."""

    runs: list[SourceRun]
    wall_s: float = 0.0
    models: dict[str, tuple[int, int, int, bool]] = field(default_factory=dict)  # name -> calls, runs, largest, batching

    @property
    def frames(self) -> int:
        return sum(r.frames for r in self.runs)

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def failed(self) -> list[SourceRun]:
        return [r for r in self.runs if r.failed]

    def exit_code(self) -> int:
        """0 every source ended well; else 1 -- or, when no source did anything and every one failed the same way
        (all usage errors, say), that error's code."""
        if not self.failed:
            return 0
        codes = {getattr(r.error, "exit_code", 1) for r in self.failed}
        if len(self.failed) == len(self.runs) and not self.frames and len(codes) == 1:
            return codes.pop()
        return 1


def run_many(configs: list[tuple[str, Config]], *, inputs: dict[str, str] | None = None,
             max_wait_s: float = DEFAULT_MAX_WAIT_S,
             on_end: Callable[[SourceRun], None] | None = None) -> MultiSummary:
    """Run every (name, config) at once, one thread each, with shared models; return when all have ended.

    ``inputs``: files the run reads besides the sources (never an output). ``on_end(source_run)`` is called, in the
    source's thread, when one ends (the CLI says at once that a camera failed). A Ctrl-C / SIGTERM stops every
    pipeline; the sources' runs are then marked ``interrupted`` and ``signals.received()`` tells which signal."""
    pool = EnginePool(max_wait_s=max_wait_s)
    runs = [SourceRun(name, redact(cfg.source.uri), cfg) for name, cfg in configs]
    # Every source file is an input of every run: no source's output may land on another source.
    files = {f"the source of {r.name}": r.cfg.source.uri for r in runs if Path(r.cfg.source.uri).is_file()}

    def work(r: SourceRun) -> None:
        try:
            r.summary = run(r.cfg, inputs={**files, **(inputs or {})}, pool=pool)
        except KeyboardInterrupt as exc:  # a signal stopped this pipeline between two frames
            r.interrupted, r.summary = True, getattr(exc, "summary", None)
        except StreamError as exc:
            r.summary = getattr(exc, "summary", None)
            if signals.received() is not None:
                r.interrupted = True  # it failed because the signal cut it short
            else:
                r.error = exc
                log.warning("source %s (%s) stopped, the other sources go on: %s", r.name, r.source, redact(exc))
        except Exception as exc:  # noqa: BLE001 -- a bug in one camera's run must not take the others down
            r.error = exc
            log.exception("source %s (%s) failed", r.name, r.source)
        if on_end is not None:
            on_end(r)

    start = time.perf_counter()
    run_side_by_side([(f"source {r.name}", functools.partial(work, r)) for r in runs])
    summary = MultiSummary(runs, wall_s=time.perf_counter() - start)
    for engine in pool.engines.values():
        s = engine.stats
        summary.models[engine.path.name] = (s.calls, s.runs, s.largest, engine.batching)
    return summary
