"""``python -m bench live-age``: a paced live run of the whole product for minutes; does the frame age stay within
twice the per-frame service time, and does it stay flat?

The source is the bundled clip (or ``--source``) looped and paced like a camera at ``--fps`` (``latest`` policy:
frames the pipeline cannot take are dropped and counted), through :func:`stream.app.run` with the product's
default workload on a source without a camera profile (FastDepth-224 and YOLOX-Nano; ``--depth-model`` for
another network), the overlay and an H.264 MP4 (written to a temporary folder). Per window of ``--window``
seconds of the camera's clock:

- frames processed and dropped;
- frame age (decode -> the frame handed to the MP4's encoder thread) p50 / p95 / p99;
- the per-frame service time: per frame, the sum of its stage times on the layout's path (serial: every stage
  one after the other; parallel: the longer of depth and detection, which run at once), its p50 over the window;
- the process's resident memory at the window's end.

The target: the age's p99 within 2 x the service time, over the whole run and in every window; flat: the
slope of the windows' p99 (least squares, ms per minute) and the last window's p99 / the first's.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from depthstream.errors import ConfigError
from depthstream.schema.config import BUNDLED_DEPTH_CARD, load_config
from stream.app import run

from .pipeline_runs import LoopSource, stage_devices
from .pipeline_targets import AFTER_JOIN
from .soak import rss_mb

log = logging.getLogger(__name__)

LIVE_AGE_TIMING = {
    "age": "time.monotonic_ns at decode -> the frame handed to the MP4's encoder thread (the JSONL's age_ms)",
    "service time": "per frame: the sum of its stage times (time.perf_counter around each stage) on the layout's "
                    "path, the longer of depth and detection in the parallel layout; p50 per window",
    "windows": "by the camera's clock: frame index / fps",
    "flatness": "least-squares slope of the windows' age p99 (ms per minute); last window's p99 / first's",
}
SERVICE_FACTOR = 2.0


def _service(layout: str, timings: dict[str, float]) -> float:
    depth = timings.get("depth", 0.0) + timings.get("mask", 0.0)
    detect = timings.get("fill", 0.0) + timings.get("detect", 0.0)
    middle = depth + detect if layout == "serial" else max(depth, detect)
    return timings.get("decode", 0.0) + middle + sum(timings.get(s, 0.0) for s in AFTER_JOIN)


class _Recorder:
    """Per result: its frame index, age and service time, and the process's memory once a window. The
    decode time is the source's own (the pipeline's clock around ``read()`` also holds the wait for the
    camera's next frame)."""

    def __init__(self, layout: str, fps: float, window_s: float, source: LoopSource) -> None:
        self.layout, self.fps, self.window_s, self.source = layout, fps, window_s, source
        self.rows: list[tuple[int, float, float]] = []
        self.rss: dict[int, float] = {}

    def take(self, res, age_ms: float) -> None:
        timings = {**res.timings_ms, "decode": self.source.decode_ms.get(res.frame.index, 0.0)}
        self.rows.append((res.frame.index, age_ms, _service(self.layout, timings)))
        w = int(res.frame.index / self.fps // self.window_s)
        self.rss[w] = rss_mb()


def _windows(rec: _Recorder, total: int) -> list[dict]:
    per = max(1, round(rec.fps * rec.window_s))
    out = []
    for w, start in enumerate(range(0, total, per)):
        rows = [r for r in rec.rows if start <= r[0] < start + per]
        n = min(per, total - start)
        row = {"window": w, "start_s": round(start / rec.fps, 1), "frames": n, "processed": len(rows),
               "dropped": n - len(rows), "rss_mb": round(rec.rss.get(w, float("nan")), 1)}
        if rows:
            ages = np.array([r[1] for r in rows])
            service = float(np.percentile([r[2] for r in rows], 50))
            row.update({f"age_p{q}_ms": round(float(np.percentile(ages, q)), 1) for q in (50, 95, 99)})
            row["service_ms"] = round(service, 1)
            row["age_p99_over_service"] = round(float(np.percentile(ages, 99)) / service, 2) if service > 0 else None
        out.append(row)
    return out


def bench_live_age(*, source: str, fps: float, minutes: float, window_s: float, layout: str,
                   depth_model: str | None, config: str | None, sets: Sequence[str], warmup: int = 30) -> dict:
    """The ``results`` block of the live-age report (see the module docstring)."""
    if fps <= 0 or minutes <= 0 or window_s <= 0:
        raise ConfigError(f"--fps, --minutes and --window must be positive, got {fps}, {minutes}, {window_s}")
    total = int(round(minutes * 60 * fps))
    if total <= warmup + 1:
        raise ConfigError(f"{minutes} minutes at {fps} fps is {total} frames: fewer than the {warmup} warm-up frames")
    cfg = load_config(config, list(sets), {"source.uri": source, "depth.source": depth_model or BUNDLED_DEPTH_CARD,
                                           "pipeline.layout": layout, "pipeline.policy": "latest"})
    with tempfile.TemporaryDirectory(prefix="bench-live-age-") as tmp:
        cfg = dataclasses.replace(cfg, output=dataclasses.replace(cfg.output, mp4=str(Path(tmp) / "live.mp4"),
                                                                  jsonl=None, show=False))
        src = LoopSource(cfg.source.uri, total, pace_fps=fps)
        rec = _Recorder(layout, fps, window_s, src)
        summary = run(cfg, source=src, on_result=rec.take)
    kept = [r for r in rec.rows if r[0] >= warmup]
    ages = np.array([r[1] for r in kept])
    service = float(np.percentile([r[2] for r in kept], 50))
    windows = _windows(rec, total)
    p99s = [(w["start_s"] / 60, w["age_p99_ms"]) for w in windows if "age_p99_ms" in w]
    slope = float(np.polyfit(*zip(*p99s), 1)[0]) if len(p99s) >= 2 else None
    overall = {
        "processed": len(rec.rows), "dropped": total - len(rec.rows),
        **{f"age_p{q}_ms": round(float(np.percentile(ages, q)), 1) for q in (50, 95, 99)},
        "service_ms": round(service, 1),
        "age_p99_over_service": round(float(np.percentile(ages, 99)) / service, 2),
        "met": bool(np.percentile(ages, 99) <= SERVICE_FACTOR * service),
        "windows_met": sum(1 for w in windows if (w.get("age_p99_over_service") or 99) <= SERVICE_FACTOR),
        "p99_slope_ms_per_min": round(slope, 2) if slope is not None else None,
        "last_over_first_p99": round(p99s[-1][1] / p99s[0][1], 2) if len(p99s) >= 2 and p99s[0][1] else None,
    }
    settings = {"source": source, "fps": fps, "minutes": minutes, "frames": total, "window_s": window_s,
                "layout": layout, "warmup": warmup, "depth_source": cfg.depth.source, "sets": list(sets),
                "threads": dataclasses.asdict(summary.threads) if summary.threads else None,
                "devices": stage_devices(summary.providers, network_depth="depth" in summary.providers, mp4=True,
                                         preset=cfg.output.preset)}
    return {"settings": settings, "overall": overall, "windows": windows}


def live_age_markdown(report: dict, header: list[str]) -> str:
    s, o = report["settings"], report["overall"]
    lines = header + [
        f"`{s['source']}` paced at {s['fps']:g} fps for {s['minutes']:g} min ({s['frames']} frames), {s['layout']} "
        f"layout, depth `{s['depth_source']}`, MP4 written; windows of {s['window_s']:g} s.",
        "",
        f"- whole run (after {s['warmup']} warm-up frames): processed {o['processed']}, dropped {o['dropped']}; "
        f"age p50 / p95 / p99 {o['age_p50_ms']} / {o['age_p95_ms']} / {o['age_p99_ms']} ms; service time "
        f"{o['service_ms']} ms; p99 / service {o['age_p99_over_service']} (target <= {SERVICE_FACTOR:g}: "
        f"{'met' if o['met'] else '**not met**'}); windows within it: {o['windows_met']} of {len(report['windows'])}",
        f"- flat: p99 slope {o['p99_slope_ms_per_min']} ms per minute; last window's p99 / first's "
        f"{o['last_over_first_p99']}",
        "",
        "| from s | processed | dropped | age p50 | p95 | p99 | service | p99 / service | RSS MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for w in report["windows"]:
        lines.append(f"| {w['start_s']:g} | {w['processed']} | {w['dropped']} | {w.get('age_p50_ms', '—')} | "
                     f"{w.get('age_p95_ms', '—')} | {w.get('age_p99_ms', '—')} | {w.get('service_ms', '—')} | "
                     f"{w.get('age_p99_over_service', '—')} | {w['rss_mb']} |")
    lines += ["", "What was measured:", ""] + [f"- {k}: {v}" for k, v in report["timing"].items()] + [""]
    return "\n".join(lines)
