"""``python -m bench depth-every``: what running the depth network on every Nth frame (``depth.every``) gains in
frames per second and costs in distance, against every frame, on one source.

Runs, with the product's own pipeline (:func:`stream.app.run`) and a depth network (default: the bundled
FastDepth-224, also on a source whose camera profile would give it a ground plane):

- **throughput**, per N of ``--every``: the source looped, every frame processed (``block`` policy), overlay
  drawn, nothing written: FPS and the cores kept busy. The Ns are interleaved, ``--repeat`` rounds; FPS is the
  median over the rounds.
- **distance**, per N: one pass over the source (not looped, no band, so every box is kept), its JSONL read back.
  Depth does not change what the parallel layout detects, so every N has the same boxes on the same frames as
  the every-frame run; per box, the relative difference ``|d_N - d_1| / d_1`` of the raw distance (``depth_m``,
  read off the frame's own map or off the reused older one) and of the distance shown (the track's filtered
  distance, else the raw one: what the overlay prints and the band decides on), over every box and over the
  boxes of frames whose map was reused. d_1 is the every-frame run's, not the truth: this is what reusing a map
  changes, on top of whatever error the network has.
- **live** (``--live-fps``, default 1.5 x the every-frame throughput: a camera faster than the pipeline): the
  source paced at that rate for ``--live-seconds`` (``latest`` policy), ``depth.every`` 1 and ``auto``: frames processed per second, the
  share of the camera's frames dropped, and the depth rates ``auto`` used.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from depthstream.errors import ConfigError
from depthstream.schema.config import BUNDLED_DEPTH_CARD, Config, load_config
from stream.app import run

from .pipeline_runs import RunResult, check_counts, finalise, run_layout
from .stats import summarise

log = logging.getLogger(__name__)

DEPTH_EVERY_TIMING = {
    "throughput": "stream.app.run on the source looped, block policy, overlay drawn, nothing written; FPS = frames "
                  "after the warm-up / their time; the Ns interleaved, FPS the median of the rounds",
    "distance": "one pass over the source, no band, JSONL read back; per box |d_N - d_1| / d_1 against the "
                "every-frame run's same box (same frame, same box), raw (depth_m) and shown (filtered, else raw)",
    "live": "the source paced faster than the pipeline, latest policy: results per second, share of the camera's "
            "frames dropped, the depth rates auto used",
}


def _with_every(cfg: Config, every: int | str) -> Config:
    return dataclasses.replace(cfg, depth=dataclasses.replace(cfg.depth, every=every))


def _boxes(jsonl: Path) -> dict[int, tuple[int, list[dict]]]:
    """frame index -> (the map's age in frames, its boxes) from a run's JSONL."""
    out = {}
    for line in jsonl.read_text().splitlines():
        rec = json.loads(line)
        out[rec["index"]] = (rec["depth"]["age_frames"] or 0, rec["detections"])
    return out


def _shown(box: dict) -> float | None:
    return box["depth_filtered_m"] if box["depth_filtered_m"] is not None else box["depth_m"]


def _errors(pairs: list[tuple[float | None, float | None]]) -> dict | None:
    rel = [abs(a - b) / b for a, b in pairs if a is not None and b is not None and b > 0]
    if not rel:
        return None
    stat = summarise(rel).as_dict(4)
    return {"boxes": stat["n"], "median": stat["p50"], "p90": round(float(np.percentile(rel, 90)), 4),
            "p99": stat["p99"], "mean": stat["mean"]}


def compare(base: dict[int, tuple[int, list[dict]]], other: dict[int, tuple[int, list[dict]]]) -> dict:
    """Relative distance differences of ``other`` against ``base`` (the every-frame run), box by box."""
    raw, shown, raw_reused, shown_reused = [], [], [], []
    mismatched = 0
    for index, (_, boxes) in base.items():
        age, others = other.get(index, (0, []))
        if [b["box"] for b in boxes] != [b["box"] for b in others]:
            mismatched += 1
            continue
        for b, o in zip(boxes, others):
            raw.append((o["depth_m"], b["depth_m"]))
            shown.append((_shown(o), _shown(b)))
            if age > 0:
                raw_reused.append(raw[-1])
                shown_reused.append(shown[-1])
    return {"raw": _errors(raw), "shown": _errors(shown), "raw_reused_maps": _errors(raw_reused),
            "shown_reused_maps": _errors(shown_reused), "frames_with_other_boxes": mismatched}


def _rate_info(run: RunResult) -> dict | None:
    return run.info.get("depth_rate")


def bench_depth_every(*, source: str, every: Sequence[int], depth_model: str | None, frames: int, warmup: int,
                      repeat: int, live_fps: float | None, config: str | None, sets: Sequence[str],
                      live_s: float = 30.0, distance_frames: int = 0) -> dict:
    """The ``results`` block of the depth-every report (see the module docstring)."""
    check_counts(frames, warmup)
    if repeat < 1:
        raise ConfigError(f"--repeat must be >= 1, got {repeat}")
    if not every or 1 not in every:
        raise ConfigError("--every must include 1: every other rate is compared with the network on every frame")
    cfg = load_config(config, list(sets), {"source.uri": source, "depth.source": depth_model or BUNDLED_DEPTH_CARD,
                                           "pipeline.layout": "parallel"})
    ns = sorted(set(every))
    runs: dict[int, list[RunResult]] = {n: [] for n in ns}
    for _ in range(repeat):
        for n in ns:
            log.info("every %d: throughput", n)
            runs[n].append(run_layout(_with_every(cfg, n), "parallel", cfg.source.uri, frames, warmup))
    throughput = {n: finalise(r) for n, r in runs.items()}
    base_fps = throughput[1]["fps"]
    with tempfile.TemporaryDirectory(prefix="bench-every-") as tmp:
        tables = {}
        for n in ns:
            log.info("every %d: distances", n)
            jsonl = Path(tmp) / f"every-{n}.jsonl"
            one = dataclasses.replace(_with_every(cfg, n), output=dataclasses.replace(cfg.output, jsonl=str(jsonl),
                                                                                        mp4=None, show=False),
                                      source=dataclasses.replace(cfg.source, max_frames=distance_frames))
            run(one)
            tables[n] = _boxes(jsonl)
    distance = {n: compare(tables[1], tables[n]) for n in ns if n != 1}
    pace = live_fps or round(1.5 * base_fps, 1)
    live = {}
    live_frames = max(warmup + 2, int(pace * live_s))  # long enough for auto's 2-s windows to settle
    for setting in (1, "auto"):
        log.info("every %s: live at %.1f fps", setting, pace)
        r = run_layout(_with_every(cfg, setting), "parallel", cfg.source.uri, live_frames, warmup, pace_fps=pace)
        produced = live_frames - warmup
        live[str(setting)] = {"fps": round(r.fps, 2), "dropped": r.dropped,
                              "dropped_share": round(r.dropped / produced, 3) if produced else None,
                              "depth_rate": _rate_info(r), "cores_busy": round(r.cores_busy, 2)}
    rows = {str(n): {"fps": throughput[n]["fps"], "fps_repeats": throughput[n].get("fps_repeats"),
                     "fps_gain": round(throughput[n]["fps"] / base_fps, 3) if base_fps else None,
                     "cpu_cores_busy": throughput[n]["cpu_cores_busy"],
                     "other_processes_cores_busy": throughput[n]["other_processes_cores_busy"],
                     "threads": throughput[n]["threads"], "providers": throughput[n]["providers"],
                     "distance": distance.get(n)} for n in ns}
    settings = {"source": source, "depth_source": cfg.depth.source, "every": ns, "frames": frames, "warmup": warmup,
                "repeat": repeat, "live_fps": pace, "live_frames": live_frames, "layout": "parallel",
                "distance_frames": distance_frames,
                "sets": list(sets), "config": config}
    return {"settings": settings, "rates": rows, "live": live}


def depth_every_markdown(report: dict, header: list[str]) -> str:
    s = report["settings"]
    lines = header + [
        f"Depth network `{s['depth_source']}` on `{s['source']}`, parallel layout. Throughput: {s['frames']} frames "
        f"after {s['warmup']} warm-up, {s['repeat']} interleaved round(s). Distance: relative difference from the "
        f"every-frame run's same box, median / p90 / p99 (raw: read off the map; shown: the track's filtered "
        f"distance, what the overlay prints and the band decides on).",
        "",
        "| depth.every | FPS | FPS / every frame | cores busy (others) | raw, every box | raw, boxes on reused maps | "
        "shown, every box | shown, boxes on reused maps |",
        "|---|---:|---:|---:|---|---|---|---|",
    ]

    def err(e: dict | None) -> str:
        return "—" if e is None else f"{100 * e['median']:.1f} / {100 * e['p90']:.1f} / {100 * e['p99']:.1f} %"

    for n, r in report["rates"].items():
        d = r["distance"] or {}
        lines.append(f"| {n} | {r['fps']:.1f} | {r['fps_gain']:.2f} | {r['cpu_cores_busy']:.2f} "
                     f"({r['other_processes_cores_busy'] if r['other_processes_cores_busy'] is not None else '—'}) | "
                     f"{err(d.get('raw'))} | {err(d.get('raw_reused_maps'))} | {err(d.get('shown'))} | "
                     f"{err(d.get('shown_reused_maps'))} |")
    lines += ["", f"Live, the source paced at {s['live_fps']} fps ({s['live_frames']} frames, newest kept):", "",
              "| depth.every | results per second | camera frames dropped | depth rates used (frames at every N) |",
              "|---|---:|---:|---|"]
    for setting, r in report["live"].items():
        rate = r["depth_rate"] or {}
        used = ", ".join(f"{k}: {v}" for k, v in sorted(rate.get("frames_at", {}).items(), key=lambda kv: int(kv[0])))
        lines.append(f"| {setting} | {r['fps']:.1f} | {100 * (r['dropped_share'] or 0):.0f} % | {used or '—'} |")
    lines += ["", "What was measured:", ""] + [f"- {k}: {v}" for k, v in report["timing"].items()] + [""]
    return "\n".join(lines)
