"""``python -m bench serve``: what the browser view costs the pipeline. FPS of a served run (``stream.serve``, the
bundled clip looped through the real models) without viewers and with N MJPEG viewers on 127.0.0.1, in paired runs.

Each run: ``run_served`` on 127.0.0.1 (a free port) over ``warmup + frames`` frames of a :class:`LoopSource`
(throughput: as fast as the pipeline goes, the ``block`` policy; or ``--pace`` FPS like a camera). The viewers are a
separate process (``bench/mjpeg_readers.py``, as browsers would be), connected before the first frame; they read
every part as it comes (``--stalled`` more connect and never read). FPS is counted from the written frames after
the warm-up (``bench.stats.steady_fps``). Runs come in pairs, without and with viewers, the order alternating
from pair to pair, so slow drifts of a shared machine (other processes on the same cores) fall on both sides; the
report gives every run, each pair's ratio and the median ratio, with the machine's load before and after.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import subprocess
import sys
from pathlib import Path

from depthstream.errors import SourceError
from depthstream.schema.config import Config
from stream.serve import run_served

from .pipeline_runs import LoopSource, _Clock
from .stats import steady_fps

READERS = Path(__file__).with_name("mjpeg_readers.py")
SERVE_TIMING = {
    "fps": "written frames per second after the warm-up (the consumer's clock, as bench pipeline)",
    "encodes_per_frame": "JPEG encodes of the view / frames published, over the whole run",
    "viewer_fps": "parts each viewer read per second of the run's measured window, median over the viewers",
}


def one_run(cfg: Config, uri: str, frames: int, warmup: int, viewers: int, stalled: int,
            pace: float | None) -> dict:
    cfg = dataclasses.replace(cfg, serve=dataclasses.replace(cfg.serve, listen="127.0.0.1:0", linger=False),
                              output=dataclasses.replace(cfg.output, mp4=None, jsonl=None, show=False),
                              source=dataclasses.replace(cfg.source, max_frames=0))
    clock = _Clock(warmup, warmup + frames)
    procs: list[subprocess.Popen] = []

    def on_listen(url: str) -> None:
        if viewers or stalled:
            proc = subprocess.Popen([sys.executable, str(READERS), url, str(viewers), str(stalled)],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            procs.append(proc)
            line = proc.stdout.readline()
            if line.strip() != "CONNECTED":
                proc.kill()
                raise SourceError(f"the MJPEG viewers did not connect: {line.strip()} {proc.stderr.read().strip()}")

    summary = run_served(cfg, source=LoopSource(uri, warmup + frames, pace), on_frame=clock.tick,
                         on_listen=on_listen)
    wall, cpu, others = clock.window()
    got = None
    if procs:
        out, err = procs[0].communicate(timeout=60)
        if procs[0].returncode != 0:
            raise SourceError(f"the MJPEG viewers failed: {err.strip()}")
        got = json.loads(out)
    served = summary.served
    result = {
        "viewers": viewers,
        "stalled": stalled,
        "fps": round(steady_fps(clock.stamps, warmup), 2),
        "frames": summary.frames,
        "encodes": served["encodes"],
        "encodes_per_frame": round(served["encodes"] / max(1, summary.frames), 3),
        "dropped_viewers": served["dropped_viewers"],
        "cores_busy": round(cpu / wall, 2),
        "others_busy": None if others is None else round(others / wall, 2),
    }
    if got is not None:
        parts = sorted(r["parts"] for r in got["readers"])
        result["viewer_parts"] = parts
        result["viewer_fps_median"] = round(statistics.median(parts) / (clock.stamps[-1] - clock.stamps[0]), 2) \
            if parts else None
        result["viewer_process_cpu_s"] = got["cpu_s"]
    return result


def bench_serve(cfg: Config, uri: str, frames: int, warmup: int, viewers: int, stalled: int, repeat: int,
                pace: float | None) -> dict:
    pairs = []
    for i in range(repeat):
        order = (0, viewers) if i % 2 == 0 else (viewers, 0)
        runs = {n: one_run(cfg, uri, frames, warmup, n, stalled if n else 0, pace) for n in order}
        pairs.append({"order": list(order), "without": runs[0], "with": runs[viewers],
                      "ratio": round(runs[viewers]["fps"] / runs[0]["fps"], 3)})
    ratios = [p["ratio"] for p in pairs]
    return {"settings": {"source": uri, "frames": frames, "warmup": warmup, "viewers": viewers, "stalled": stalled,
                         "repeat": repeat, "pace_fps": pace, "layout": cfg.pipeline.layout,
                         "band": cfg.band.describe()},
            "pairs": pairs, "median_ratio": round(statistics.median(ratios), 3),
            "fps_without_median": round(statistics.median(p["without"]["fps"] for p in pairs), 2),
            "fps_with_median": round(statistics.median(p["with"]["fps"] for p in pairs), 2)}


def serve_markdown(report: dict) -> str:
    from .report import machine_line

    s = report["settings"]
    lines = [f"# Browser view: FPS without and with {s['viewers']} MJPEG viewers", "",
             f"`{report['command']}`", "", machine_line(report["env"]), "",
             f"{s['frames']} frames after {s['warmup']} of warm-up per run, {s['layout']} layout, {s['band']}, "
             + (f"paced at {s['pace_fps']} FPS" if s["pace_fps"] else "throughput (as fast as the pipeline goes)")
             + (f", plus {s['stalled']} stalled viewers" if s["stalled"] else "") + ".", "",
             "| pair | order | FPS without | FPS with | with / without | encodes per frame (with) | viewer FPS (median) "
             "| others' cores busy |", "|---|---|---|---|---|---|---|---|"]
    for i, p in enumerate(report["pairs"]):
        w, v = p["without"], p["with"]
        others = "/".join("–" if r["others_busy"] is None else f"{r['others_busy']:.2f}" for r in (w, v))
        lines.append(f"| {i + 1} | {'without first' if p['order'][0] == 0 else 'with first'} | {w['fps']:.1f} | "
                     f"{v['fps']:.1f} | {p['ratio']:.3f} | {v['encodes_per_frame']:.3f} | "
                     f"{v.get('viewer_fps_median') or '–'} | {others} |")
    lines += ["", f"Median FPS without: {report['fps_without_median']}, with: {report['fps_with_median']}; "
                  f"median ratio {report['median_ratio']}.", ""]
    return "\n".join(lines)
