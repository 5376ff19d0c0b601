"""The pipeline benchmark's Markdown report and plot (the JSON and its schema: :mod:`bench.report`)."""

from __future__ import annotations

import logging
from pathlib import Path

from .report import NOISE_CORES, _busy, _depth_line, _f, _header, _trio, machine_line

log = logging.getLogger(__name__)

_TARGET_ROWS = (
    ("slower_layout_over_bare", "slower layout FPS / bare decode -> depth -> detect loop FPS"),
    ("parallel_latency_p50_over_serial", "parallel / serial live latency p50 (at parallel FPS >= serial FPS)"),
    ("share_of_cores_limit", "FPS / FPS the cores allow (cores busy / cores)"),
    ("age_p99_over_service", "live frame age p99 / per-frame service time"),
)


def _met(check: dict) -> str:
    return {True: "met", False: "**not met**", None: "—"}[check["met"]]


def targets_markdown(w: dict) -> list[str]:
    """The workload's targets: one row per target and, where it is per layout, per layout."""
    t = w["targets"]
    lines = [f"Targets, {w['name']} (ratios of figures measured side by side in this run):", "",
             "| target | value | bound | |", "|---|---:|---|---|"]
    for key, words in _TARGET_ROWS:
        if key not in t:
            continue
        entry = t[key]
        rows = [("", entry)] if "value" in entry else [(f", {n}", c) for n, c in entry.items()]
        for suffix, c in rows:
            detail = ""
            if "slower" in c:
                detail = f" (slower: {c['slower']})"
            elif "fps_ratio" in c:
                detail = f" (FPS parallel / serial {_f(c['fps_ratio'], 2)})"
            elif "service_ms" in c:
                detail = f" ({_f(c['age_p99_ms'])} / {_f(c['service_ms'])} ms)"
            lines.append(f"| {words}{suffix} | {_f(c['value'], 2)}{detail} | {c['target']} | {_met(c)} |")
    return lines + [""]


def _devices(w: dict) -> str:
    """``stage: device (what ran it)`` for the stages of the workload's live parallel (else first) run."""
    layouts = w["layouts"]
    run = (layouts.get("parallel") or next(iter(layouts.values())))["live"]
    return "; ".join(f"{stage} {d['device']} ({d['ran_on']})" for stage, d in run["devices"].items()
                     if stage in ("decode", "depth", "detect", "overlay", "encode"))


def pipeline_markdown(report: dict) -> str:
    s = report["settings"]
    lines = _header(report, "Pipeline benchmark")
    lines += [
        f"{s['frames']} measured frames per run after {s['warmup']} warm-up frames, {s['repeat']} repeat(s), interleaved; "
        f"source `{s['source']}` looped; band closer than {s['band']['closer_than']} m. FPS from the throughput runs "
        f"(file as fast as it decodes, every frame processed, nothing written); latency from the live runs "
        f"(source paced like a camera, newest frame kept, MP4 written). Times in ms, p50 / p95 / p99. CPU ms / frame: "
        f"the process's CPU time per frame (every thread); FPS the cores allow: every core busy with that work.",
        "",
        "| workload | run | FPS | FPS / bare | cores busy (others) | CPU ms / frame | FPS the cores allow | e2e latency (live) | frame age (throughput) | dropped (live) |",
        "|---|---|---:|---:|---:|---:|---:|---|---|---:|",
    ]
    for w in report["workloads"]:
        bare = w["bare"]
        bare_ms = 1e3 * bare["cpu_cores_busy"] / bare["fps"] if bare["fps"] else None
        lines.append(f"| {w['name']} | bare loop | {_f(bare['fps'])} | 1.00 | {_busy(bare)} | {_f(bare_ms)} | — | — | — | — |")
        for name, runs in w["layouts"].items():
            tp, live = runs["throughput"], runs["live"]
            lim = w["limits"]["throughput"][name]
            lines.append(
                f"| {w['name']} | {name} | {_f(tp['fps'])} | {_f(w['ratios']['overhead'][name], 2)} | "
                f"{_busy(tp)} | {_f(lim['cpu_ms_per_frame'])} | {_f(lim['fps_at_full_cores'])} | "
                f"{_trio(live['latency_ms'])} | {_trio(tp['frame_age_ms'])} | {live['dropped']} |"
            )
    lines.append("")
    noisiest = max_other_load(report)
    if noisiest is not None and noisiest > NOISE_CORES:
        lines += [f"**Warning: other processes kept up to {noisiest:.2f} cores busy during these runs** (column "
                  f"'others'): they competed for the same cores, so these figures are slower and noisier than this "
                  f"machine alone gives. Re-run on an idle machine to compare.", ""]
    for w in report["workloads"]:
        lines += targets_markdown(w)
        lim = w["limits"]
        lines.append(f"**{w['name']}** ({_depth_line(w)}; live pace {w['pace_fps']} fps):")
        lines.append(f"- ran on: {_devices(w)}")
        for name, runs in w["layouts"].items():
            per = runs["throughput"].get("threads_cpu_ms_per_frame") or {}
            if per:
                lines.append(f"- {name}, CPU ms per frame by thread (throughput): "
                             + ", ".join(f"{k} {_f(v)}" for k, v in per.items()))
        free = ", ".join(f"{k} {_f(v['share_of_free_cores'], 2)}" for k, v in lim["throughput"].items())
        lines.append(f"- cores busy / cores other processes left free: {free}")
        if "parallel_over_serial_latency_limit" in lim:
            lines.append(f"- parallel latency limit: serial p50 minus fill, minus depth + detect, plus the longer of "
                         f"the two = {_f(lim['parallel_latency_p50_ideal_ms'])} ms, a ratio of "
                         f"{_f(lim['parallel_over_serial_latency_limit'], 2)}")
        if "side_by_side_slowdown" in lim:
            slow = lim["side_by_side_slowdown"]
            lines.append(f"- side by side, each model runs slower than alone: depth x{_f(slow['depth'], 2)}, detect "
                         f"x{_f(slow['detect'], 2)}; with that slowdown the parallel p50 would be "
                         f"{_f(lim['parallel_latency_p50_with_slowdown_ms'])} ms")
        lines.append("")
    for w in report["workloads"]:
        names = list(w["layouts"])
        lines += [f"Per-stage ms, {w['name']} (live runs; bare loop for comparison), p50 / p95 / p99:", "",
                  "| stage | " + " | ".join(names) + " | bare loop |",
                  "|---|" + "---|" * (len(names) + 1)]
        stages: list[str] = []
        for name in names:
            stages += [k for k in w["layouts"][name]["live"]["stages"] if k not in stages]
        for stage in stages:
            cells = [_trio(w["layouts"][n]["live"]["stages"].get(stage)) for n in names]
            lines.append(f"| {stage} | " + " | ".join(cells) + f" | {_trio(w['bare']['stages'].get(stage))} |")
        lines.append("| **end to end** | " + " | ".join(_trio(w["layouts"][n]["live"]["latency_ms"]) for n in names)
                     + " | — |")
        lines.append("")
    notes = report["timing"]
    lines += ["What was timed:", ""] + [f"- {k}: {v}" for k, v in notes.items()] + [""]
    return "\n".join(lines)


def max_other_load(report: dict) -> float | None:
    """The most cores other processes kept busy during any run of a pipeline report (None: unknown)."""
    values = []
    for w in report["workloads"]:
        runs = [w["bare"]] + [r for layout in w["layouts"].values() for r in layout.values()]
        values += [r["other_processes_cores_busy"] for r in runs if r.get("other_processes_cores_busy") is not None]
    return max(values) if values else None


PLOT_STAGES = ("decode", "depth", "mask", "fill", "detect", "box_depth", "overlay", "encode")


def pipeline_plot(report: dict, path: Path) -> Path | None:
    """Per-stage p50 bars (p95 whiskers) per layout and the end-to-end latency, one row per workload.
    None when matplotlib is missing (``pip install -e '.[bench]'``)."""
    try:
        import matplotlib
    except ImportError:
        log.warning("plot skipped: matplotlib is not installed (pip install -e '.[bench]')")
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    workloads = report["workloads"]
    fig, axes = plt.subplots(len(workloads), 2, figsize=(12, 3.8 * len(workloads)), squeeze=False,
                             gridspec_kw={"width_ratios": [3, 1.4]})
    colours = {"serial": "#1f77b4", "parallel": "#ff7f0e", "bare loop": "#9a9a9a"}
    for row, w in enumerate(workloads):
        ax, ax2 = axes[row]
        series = {n: w["layouts"][n]["live"]["stages"] for n in w["layouts"]}
        series["bare loop"] = w["bare"]["stages"]
        present = [s for s in PLOT_STAGES if any(s in st for st in series.values())]
        y = np.arange(len(present))
        h = 0.8 / len(series)
        for i, (n, st) in enumerate(series.items()):
            ys = y + (i - (len(series) - 1) / 2) * h
            have = np.array([s in st for s in present])
            p50 = np.array([st[s]["p50"] if s in st else 0.0 for s in present])
            p95 = np.array([st[s]["p95"] if s in st else 0.0 for s in present])
            ax.barh(ys[have], p50[have], h, xerr=[np.zeros(have.sum()), (p95 - p50)[have]], color=colours.get(n),
                    label=n + (" (decode -> depth -> detect only)" if n == "bare loop" else ""),
                    capsize=2, error_kw={"lw": 0.8})
            for yy, v in zip(ys[have], p50[have]):
                ax.text(v, yy, f" {v:.1f}", va="center", fontsize=7)
        ax.set_yticks(y, present)
        ax.invert_yaxis()
        ax.set_xlabel("ms per frame: bar p50, whisker p95")
        ax.set_title(f"{w['name']}: per-stage time ({_depth_line(w)}, live at {w['pace_fps']} fps)", fontsize=10)
        ax.legend(fontsize=8, loc="lower right")
        ax.grid(axis="x", alpha=0.3)
        labels = list(w["layouts"])
        lat = [w["layouts"][n]["live"]["latency_ms"] for n in labels]
        p50s, p95s, p99s = (np.array([x[k] for x in lat]) for k in ("p50", "p95", "p99"))
        x = np.arange(len(labels))
        ax2.bar(x, p50s, 0.6, color=[colours.get(n) for n in labels])
        ax2.errorbar(x, p50s, yerr=[np.zeros(len(x)), p95s - p50s], fmt="none", ecolor="k", capsize=4, lw=0.8)
        ax2.scatter(x, p99s, marker="_", s=300, color="k", label="p99")
        for xx, v in zip(x, p50s):
            ax2.text(xx, v, f"{v:.1f}", ha="center", va="bottom", fontsize=8)
        ax2.set_xticks(x, labels)
        ax2.set_ylabel("ms, decode -> encoded (p50, p95)")
        ax2.legend(fontsize=8, loc="lower right")
        pos = w["ratios"].get("parallel_over_serial")
        extra = f"\nparallel / serial p50 {pos['latency_p50']:.2f}" if pos and pos["latency_p50"] else ""
        ax2.set_title(f"end-to-end latency{extra}", fontsize=10)
        ax2.grid(axis="y", alpha=0.3)
    fig.suptitle(f"Pipeline per-stage latency — {machine_line(report['env'])}", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
