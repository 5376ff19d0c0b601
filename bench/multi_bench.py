"""``python -m bench multi``: several sources in one process (:mod:`stream.multi`), total and per-camera FPS for 1, 2,
4 ... sources, per backend (in-process ONNX Runtime, a Triton server), with the shipped detector (a fixed batch of 1:
the cameras take turns) or with its batch axis freed (``--batched``: frames of several cameras in one call).

Each source is a copy of the clip (``--source``, default the bundled one), read to its end or ``--frames``, with no
MP4 or JSONL written (the encoder's cost is another benchmark's). Runs alternate backends and source counts, so a
change in the machine's load spreads over all of them; the load average before and after is in the report.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
from pathlib import Path

from depthstream.schema.config import load_config
from depthstream.store import DEMO_CLIP, resolve_model
from stream.multi import run_many

MULTI_TIMING = {
    "total_fps": "frames of every source / the longest source's pipeline time (from its first frame asked to its end; "
                 "models and sources already open)",
    "per_camera_fps": "each source's frames / its own run's wall time (its summary's FPS)",
    "frames_per_model_run": "detector calls / detector executions: 1 = one frame per call; > 1 = cameras batched",
}


def _clip(source: str) -> Path:
    return DEMO_CLIP if source == "demo" else Path(source)


def bench_multi(counts: list[int], backends: list[str], frames: int, repeat: int, source: str = "demo",
                batched: bool = False, sets: list[str] | tuple[str, ...] = (), work: Path | None = None) -> dict:
    """One row per (backend, sources, repeat): total FPS, each camera's FPS, how the detector was called."""
    own = work is None
    work = Path(tempfile.mkdtemp(prefix="bench-multi-")) if own else work
    try:
        clips = []
        for i in range(max(counts)):
            clip = work / f"cam{i + 1}.mp4"
            shutil.copy(_clip(source), clip)
            clips.append(clip)
        detector = None
        if batched:
            from export.batch_axis import free_batch_axis

            shipped = load_config(None, sets).detect.model
            detector = str(free_batch_axis(resolve_model(shipped), work / f"{Path(shipped).stem}_batched.onnx"))
        rows = []
        for k in range(repeat):
            for backend in backends:
                for n in counts:
                    overrides = {"source.max_frames": frames, "engine.backend": backend, "detect.model": detector}
                    configs = [(f"cam{i + 1}", load_config(None, sets, {**overrides, "source.uri": str(clips[i])}))
                               for i in range(n)]
                    multi = run_many(configs)
                    if multi.failed:
                        raise multi.failed[0].error  # type: ignore[misc]
                    calls, runs, largest, is_batched = multi.models.get(Path(detector or configs[0][1].detect.model).name,
                                                                         (0, 0, 0, False))
                    span = max(r.summary.wall_s for r in multi.runs)  # the longest pipeline: no model loading
                    rows.append({"backend": backend, "sources": n, "repeat": k, "frames": multi.frames,
                                 "wall_s": round(span, 3), "total_fps": round(multi.frames / span, 2),
                                 "per_camera_fps": [round(r.summary.fps, 2) for r in multi.runs],
                                 "detector_calls": calls, "detector_runs": runs, "largest_batch": largest,
                                 "batched": is_batched,
                                 "frames_per_model_run": round(calls / runs, 2) if runs else None})
        return {"settings": {"counts": counts, "backends": backends, "frames": frames, "repeat": repeat,
                             "source": source, "batched": batched, "detector": detector or "config detect.model",
                             "sets": list(sets)},
                "rows": rows}
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)


def multi_markdown(report: dict) -> str:
    """Medians over the repeats: total FPS, per-camera FPS (median over cameras and repeats), frames per model run."""
    rows = report["rows"]
    env = report["env"]
    s = report["settings"]
    lines = [f"# Several sources in one process ({'detector with a free batch axis' if s['batched'] else 'shipped detector, batch 1'})",
             "",
             f"`{report['command']}` -- load average before {env.get('loadavg_before')}, after {env.get('loadavg_after')} "
             f"(CPU figures: ONNX Runtime and the Triton server share this machine's cores with everything else)",
             "",
             "| backend | sources | total FPS (median) | per-camera FPS (median) | frames per detector run | runs |",
             "|---|---|---|---|---|---|"]
    keys = sorted({(r["backend"], r["sources"]) for r in rows}, key=lambda k: (s["backends"].index(k[0]), k[1]))
    for backend, n in keys:
        mine = [r for r in rows if r["backend"] == backend and r["sources"] == n]
        total = statistics.median(r["total_fps"] for r in mine)
        per = statistics.median(f for r in mine for f in r["per_camera_fps"])
        fpr = statistics.median(r["frames_per_model_run"] or 0 for r in mine)
        spread = ", ".join(f"{r['total_fps']:.1f}" for r in mine)
        lines.append(f"| {backend} | {n} | {total:.1f} ({spread}) | {per:.1f} | {fpr:.2f} | {len(mine)} |")
    return "\n".join(lines)
