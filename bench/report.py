"""Benchmark reports: one JSON document per benchmark, its Markdown tables and the pipeline plot.

Every report carries ``schema``, ``kind`` (pipeline | models | depth | depth-every | layouts | ...), ``created_utc``, the exact
``command``, the ``env`` block (:mod:`bench.env`) and the benchmark's own blocks. :data:`SCHEMAS` lists
the fields each kind must have; :func:`validate` checks a report against it before it is written, so a
report that misses a field never reaches a reader.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import shlex
from pathlib import Path
from typing import Any, Sequence

from .env import collect, loadavg

log = logging.getLogger(__name__)

SCHEMA = "depthstream-bench/1"
UNTRAINED_NOTE = ("timing does not depend on the weights: the U-Net runs with untrained (randomly initialised) "
                  "weights, which cost exactly what trained ones do")

# -- schema --------------------------------------------------------------------------------------
# A spec is a dict (these keys are required, each checked against its own spec), a one-element list
# (a non-empty list whose items all match the element), {ANY_KEY: spec} (a non-empty object whose
# values all match spec), or None (the key must be present).
ANY_KEY = "*"

STAT = {k: None for k in ("n", "mean", "p50", "p95", "p99", "min", "max")}
CHECK = {"value": None, "target": None, "met": None}
ENV = {
    "cpu": {"model": None, "logical_cores": None, "usable_cores": None, "memory_gib": None},
    "gpu": None, "jetson": None, "os": None, "python": None,
    "onnxruntime": {"version": None, "available_providers": None},
    "tensorrt": None, "pycuda": None, "versions": None,
    "git": {"commit": None, "dirty": None},
    "loadavg_before": None, "loadavg_after": None,
}
_RUN = {"mode": None, "frames": None, "repeats": None, "fps": None, "cpu_cores_busy": None,
        "other_processes_cores_busy": None, "dropped": None, "threads": None, "providers": None,
        "devices": {"decode": None, "depth": None, "detect": None}}
BARE_RUN = {**_RUN, "stages": {"decode": STAT, "depth": STAT, "detect": STAT}}
_PIPE_STAGES = {k: STAT for k in ("decode", "depth", "mask", "preprocess", "detect_infer", "postprocess",
                                  "detect", "box_depth", "overlay")}
THROUGHPUT_RUN = {**_RUN, "layout": None, "policy": None, "stages": _PIPE_STAGES, "frame_age_ms": STAT}
LIVE_RUN = {**_RUN, "layout": None, "policy": None, "pace_fps": None,
            "stages": {**_PIPE_STAGES, "encode": STAT}, "latency_ms": STAT}
WORKLOAD = {
    "name": None,
    "depth": {"source": None, "note": None},
    "pace_fps": None,
    "bare": BARE_RUN,
    "layouts": {ANY_KEY: {"throughput": THROUGHPUT_RUN, "live": LIVE_RUN}},
    "ratios": {"overhead": None},
    "limits": {"cores": None, "bare_cores_busy": None,
               "throughput": {ANY_KEY: {"cores_busy": None, "cpu_ms_per_frame": None, "fps_at_full_cores": None,
                                        "share_of_cores_limit": None, "share_of_free_cores": None}}},
    "targets": {"slower_layout_over_bare": CHECK, "share_of_cores_limit": {ANY_KEY: CHECK},
                "age_p99_over_service": {ANY_KEY: {**CHECK, "age_p99_ms": None, "service_ms": None}}},
}
_HEAD = {"schema": None, "kind": None, "created_utc": None, "command": None, "env": ENV, "timing": None}
MODEL_ROW = {"model": None, "backend": None, "precision": None, "status": None}
MODEL_RAN = {**MODEL_ROW, "threads": None, "providers": None, "input_shapes": None, "iterations": None,
             "latency_ms": STAT, "throughput_fps": None, "cpu_cores_busy": None, "other_processes_cores_busy": None}
DEPTH_METRICS = {k: None for k in ("abs_rel", "sq_rel", "rmse_m", "rmse_log", "log10", "delta_1", "delta_2", "delta_3",
                                   "seed_equal_share")}
OVERLAY_SHARE = {k: None for k in ("frames", "boxes", "hidden", "hidden_share", "mean_painted_share")}
SERVE_RUN = {k: None for k in ("viewers", "stalled", "fps", "frames", "encodes", "encodes_per_frame", "dropped_viewers",
                               "cores_busy", "others_busy")}
SCHEMAS = {
    "pipeline": {**_HEAD, "settings": None, "workloads": [WORKLOAD]},
    "models": {**_HEAD, "settings": None, "rows": [MODEL_ROW]},
    "depth": {**_HEAD, "settings": None, "model": None, "alignment": None, "pairs": None,
              "metrics": DEPTH_METRICS, "per_image": [None]},
    "size-prior": {**_HEAD, "settings": None, "agreement": {"profile": [None], "assumed": [None]},
                   "agreement_points": [None], "autoscale": [None], "scale_curves": None, "crosscheck": [None]},
    "overlay": {**_HEAD, "settings": None, "all": OVERLAY_SHARE, "busiest": OVERLAY_SHARE, "overlay_ms": None,
                "draw_ms": None,
                "per_frame": [None]},
    "serve": {**_HEAD, "settings": None, "median_ratio": None, "fps_without_median": None, "fps_with_median": None,
              "pairs": [{"order": None, "ratio": None, "without": SERVE_RUN, "with": {**SERVE_RUN, "viewer_parts": None}}]},
    "tracks": {**_HEAD, "runs": [{"jsonl": None, "threshold": None, "tracks": None, "pairs": None, "raw_jumps": None,
                                  "filtered_jumps": None, "raw_share": None, "filtered_share": None,
                                  "per_track": None, "events": None}]},
    "live-age": {**_HEAD, "settings": None, "overall": {"age_p99_ms": None, "service_ms": None, "met": None,
                                                          "p99_slope_ms_per_min": None}, "windows": [None]},
    "fixed-costs": {**_HEAD, "settings": None, "steps": {"decode": None, "overlay": None}},
    "depth-every": {**_HEAD, "settings": None, "rates": {"1": {"fps": None, "fps_gain": None, "distance": None}},
                    "live": None},
    "multi": {**_HEAD, "settings": None, "rows": [{"backend": None, "sources": None, "total_fps": None,
                                                "per_camera_fps": None, "frames_per_model_run": None}]},
    "layouts": {**_HEAD, "settings": None, "runs": [{"source": None, "frames": None, "depth": None, "band": None,
                                                    "mask": None, "classes": None, "totals": None}]},
}


def validate(report: Any, spec: Any = None, where: str = "") -> None:
    """ValueError naming the first missing field (e.g. ``workloads[0].bare.stages.decode.p99``)."""
    if spec is None and not where:
        kind = report.get("kind") if isinstance(report, dict) else None
        if kind not in SCHEMAS:
            raise ValueError(f"report kind must be one of {', '.join(SCHEMAS)}, got {kind!r}")
        spec = SCHEMAS[kind]
        if kind == "models":
            for i, row in enumerate(report.get("rows") or []):
                validate(row, MODEL_RAN if row.get("status") == "ok" else {**MODEL_ROW, "reason": None}, f"rows[{i}]")
    if isinstance(spec, dict):
        if not isinstance(report, dict):
            raise ValueError(f"{where or 'report'}: expected an object, got {type(report).__name__}")
        if ANY_KEY in spec:
            if not report:
                raise ValueError(f"{where}: expected at least one entry")
            items = [(key, spec[ANY_KEY]) for key in report]
        else:
            items = list(spec.items())
        for key, sub in items:
            path = f"{where}.{key}" if where else key
            if key not in report:
                raise ValueError(f"report misses {path}")
            if sub is not None:
                validate(report[key], sub, path)
    elif isinstance(spec, list):
        if not isinstance(report, list) or not report:
            raise ValueError(f"{where}: expected a non-empty list")
        for i, item in enumerate(report):
            if spec[0] is not None:
                validate(item, spec[0], f"{where}[{i}]")


def new_report(kind: str, argv: Sequence[str], results: dict, timing: dict[str, str],
               loadavg_before: list[float] | None) -> dict:
    """The full report: header, environment (``loadavg_before`` read before the runs, the rest now) and
    ``results``."""
    env = collect()
    env["loadavg_before"] = loadavg_before
    env["loadavg_after"] = loadavg()
    return {
        "schema": SCHEMA,
        "kind": kind,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": "python -m bench " + shlex.join(argv),
        "env": env,
        "timing": timing,
        **results,
    }


def write_json(report: dict, path: Path) -> Path:
    validate(report)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    return path


# -- Markdown ------------------------------------------------------------------------------------


def _f(x: Any, digits: int = 1) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _trio(stat: dict | None) -> str:
    if not stat:
        return "—"
    return f"{stat['p50']:.1f} / {stat['p95']:.1f} / {stat['p99']:.1f}"


def machine_line(env: dict) -> str:
    cpu = env["cpu"]
    gpu = ", ".join(f"{g['name']} (driver {g['driver']})" for g in env["gpu"]) if env["gpu"] else "no GPU"
    jetson = f", Jetson {env['jetson']['l4t']} power mode {env['jetson']['power_mode']}" if env.get("jetson") else ""
    vm = " (virtual machine)" if cpu.get("virtual_machine") else ""
    return f"{cpu['model']}, {cpu['usable_cores']}-core CPU{vm}, {gpu}{jetson}"


def _header(report: dict, title: str) -> list[str]:
    env = report["env"]
    git = env["git"]
    commit = (git["commit"] or "unknown")[:10] + (" (with uncommitted changes)" if git.get("dirty") else "")
    return [
        f"# {title}",
        "",
        f"- machine: {machine_line(env)}",
        f"- command: `{report['command']}`",
        f"- commit {commit}; onnxruntime {env['onnxruntime']['version']}; TensorRT {env['tensorrt'] or 'not installed'}; "
        f"Python {env['python']}; {report['created_utc']}",
        f"- load average (1 min) before / after: {_f((env['loadavg_before'] or [None])[0], 2)} / "
        f"{_f((env['loadavg_after'] or [None])[0], 2)} (other processes on the same cores slow every figure)",
        "",
    ]


NOISE_CORES = 0.25  # other processes busier than this during a run: the report says so


def _busy(run: dict) -> str:
    return f"{_f(run['cpu_cores_busy'], 2)} ({_f(run['other_processes_cores_busy'], 2)})"


def _depth_line(w: dict) -> str:
    d = w["depth"]
    if "input_size" in d:
        return f"depth network {Path(d['model']).name} at {d['input_size'][0]}x{d['input_size'][1]}"
    return f"depth: {d['source']}"


def models_markdown(report: dict) -> str:
    lines = _header(report, "Model benchmark (each engine alone, batch 1)")
    lines += [
        "| model | backend | precision | threads | input | p50 / p95 / p99 ms | throughput (FPS) | cores busy (others) | status |",
        "|---|---|---|---:|---|---|---:|---:|---|",
    ]
    not_run: dict[tuple[str, str, str, str], list[str]] = {}
    for r in report["rows"]:
        if r["status"] == "ok":
            shapes = "; ".join("x".join(map(str, s)) for s in r["input_shapes"].values())
            lines.append(f"| {r['model']} | {r['backend']} | {r['precision']} | {r['threads'] or '—'} | {shapes} | "
                         f"{_trio(r['latency_ms'])} | {_f(r['throughput_fps'])} | {_busy(r)} | "
                         f"ok ({', '.join(r['providers'])}) |")
        else:
            not_run.setdefault((r["backend"], r["precision"], r["status"], r["reason"]), []).append(r["model"])
    others = [r["other_processes_cores_busy"] for r in report["rows"] if r.get("other_processes_cores_busy") is not None]
    if others and max(others) > NOISE_CORES:
        lines += ["", f"**Warning: other processes kept up to {max(others):.2f} cores busy while timing**: these "
                      f"figures are slower and noisier than this machine alone gives."]
    if not_run:
        lines += ["", "Not run here:", ""]
        lines += [f"- {backend} {precision} ({', '.join(models)}): {status}, {reason}"
                  for (backend, precision, status, reason), models in not_run.items()]
    lines += ["", "What was timed:", ""] + [f"- {k}: {v}" for k, v in report["timing"].items()] + [""]
    return "\n".join(lines)


def depth_markdown(report: dict) -> str:
    st = report["settings"]
    lines = _header(report, "Depth accuracy benchmark")
    lines += [
        f"Model: {report['model']}; alignment: {report['alignment']}; {report['pairs']} RGB-D pairs "
        f"(`{st['data']}`, depth PNG / {st['depth_scale']} = metres); range {st['min_depth_m']:g}-{st['max_depth_m']:g} m, "
        f"crop {st['crop']}.",
        "",
        "| | AbsRel | SqRel | RMSE (m) | RMSE log | log10 | δ1 | δ2 | δ3 | seed metric | true median (m) | predicted median (m) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def row(name: str, m: dict) -> str:
        medians = (f" {_f(m['gt_median_m'], 3)} | {_f(m['pred_median_m'], 3)} |" if "gt_median_m" in m else " | |")
        return (f"| {name} | {_f(m['abs_rel'], 3)} | {_f(m['sq_rel'], 3)} | {_f(m['rmse_m'], 3)} | {_f(m['rmse_log'], 3)} "
                f"| {_f(m['log10'], 3)} | {_f(m['delta_1'], 3)} | {_f(m['delta_2'], 3)} | {_f(m['delta_3'], 3)} "
                f"| {_f(m['seed_equal_share'], 3)} |" + medians)

    lines.append(row("**mean over images**", report["metrics"]))
    lines += [row(r["name"], r) for r in report["per_image"]]
    lines += ["", "What was measured:", ""] + [f"- {k}: {v}" for k, v in report["timing"].items()] + [""]
    return "\n".join(lines)
