"""The size-prior benchmark's Markdown tables and plot (``python -m bench size-prior``, :mod:`bench.sizeprior_bench`)."""

from __future__ import annotations

import logging
from pathlib import Path

from .report import _header

log = logging.getLogger(__name__)


def _pct(x, signed: bool = False) -> str:
    if x is None:
        return "-"
    return f"{100 * x:+.1f} %" if signed else f"{100 * x:.1f} %"


def _g(x, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}g}"


def _short(scene: str) -> str:
    """``coco_val2017_000000001532.jpg (street...)`` -> ``COCO 1532``; ``bundled clip (...)`` -> ``bundled clip``."""
    name = scene.split(" (")[0]
    if name.startswith("coco_val2017_"):
        return f"COCO {int(name[len('coco_val2017_'):].split('.')[0])}"
    return name


def size_prior_markdown(report: dict) -> str:
    lines = _header(report, "Size priors: agreement, automatic scale, cross-check")
    s = report["settings"]
    lines += ["", f"Bundled clip, first {s['frames']} frames; YOLOX-Nano at conf {s['detect_conf']}; the product's defaults "
              f"(`depth.size_prior`, `depth.autoscale`, `depth.crosscheck` in config.yaml).", "",
              "### 1. Size-prior distance vs the ground plane's (the clip's published calibration)", "",
              "| focal length | class | boxes | n | median abs rel diff | median rel diff (bias) | p90 abs rel diff |",
              "|---|---|---|---:|---:|---:|---:|"]
    for key, label in (("profile", f"camera profile ({s['profile']})"), ("assumed", "assumed hfov (no profile)")):
        for r in report["agreement"][key]:
            lines.append(f"| {label} | {r['class']} | {r['boxes']} | {r['n']} | {_pct(r['median_abs_rel'])} | "
                         f"{_pct(r['median_rel'], True)} | {_pct(r['p90_abs_rel'])} |")
    lines += ["", "### 2. Automatic scale of deliberately rescaled sources", "",
              "Fits are compared by the metres they give at one output value, the median output at the reference "
              "boxes (for a scale-and-shift fit the two parameters trade off; the metres do not).", "",
              "| source | mode | final scale | shift | spread | metres at the median output | target | error | "
              "frames to calibrated | frames to converged (5 %) | persons vs ground plane, before | after |",
              "|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|"]
    for r in report["autoscale"]:
        target = f"{_g(r['target_metres'])} m ({r['against']})" if r["target_metres"] is not None else "-"
        lines.append(f"| {r['source']} | {r['mode']} | {_g(r['scale'], 4)} | {_g(r['shift'], 3)} | {_pct(r['spread'])} | "
                     f"{_g(r['probe_metres'])} m | {target} | {_pct(r['error'], True)} | {r['frames_to_calibrated'] or '-'} | "
                     f"{r['frames_to_converged'] or '-'} | {_pct(r['person_median_abs_rel_before'])} | "
                     f"{_pct(r['person_median_abs_rel_after'])} |")
    lines += ["", "### 3. Cross-check", "", "| scene | source | verdict | ratio source/priors | spread | references | "
              "inverse-depth fit |", "|---|---|---|---:|---:|---:|---|"]
    for r in report["crosscheck"]:
        lines.append(f"| {r['scene']} | {r['source']} | {r['verdict']} | {_g(r['ratio'])} | {_pct(r['spread'])} | "
                     f"{r['references']} | {r.get('inverse_scale_state', '-')} |")
    return "\n".join(lines) + "\n"


def size_prior_plot(report: dict, path: Path) -> Path | None:
    """Three panels: size-prior vs ground-plane distance per box; each fit's scale over the frames (relative to
    its target or its final value); the cross-check's ratios with the tolerance. None without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        log.warning("plot skipped: matplotlib is not installed (pip install -e '.[bench]')")
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b, c) = plt.subplots(1, 3, figsize=(17, 5), gridspec_kw={"width_ratios": [1, 1.1, 1]})
    points = report["agreement_points"]
    for cls, colour in (("person", "tab:blue"), ("car", "tab:red"), ("truck", "tab:orange")):
        for ref, marker in ((True, "o"), (False, "x")):
            xs = [p[3] for p in points if p[0] == cls and p[1] == ref]
            ys = [p[2] for p in points if p[0] == cls and p[1] == ref]
            if xs:
                a.scatter(xs, ys, s=8, c=colour, marker=marker, alpha=0.5,
                          label=f"{cls} ({'reference' if ref else 'other'})")
    top = max([p[3] for p in points] + [p[2] for p in points] + [1.0])
    a.plot([0, top], [0, top], "k--", lw=1)
    a.set(xlabel="ground plane, m", ylabel="size prior, m", title="Size prior vs ground plane (bundled clip)")
    a.legend(fontsize=7)
    for r in report["autoscale"]:
        curve = report["scale_curves"][r["source"]]
        b.plot(range(1, len(curve) + 1), [float("nan") if v is None else v for v in curve],
               label=f"{r['source']} (vs {'final fit' if r['target_metres'] is None else r['against']})")
    b.axhline(1.0, color="k", lw=1)
    b.set(xlabel="frame", ylabel="fitted metres / target metres", title="Automatic scale over the frames",
          ylim=(0.5, 1.5))
    b.legend(fontsize=7)
    rows = [r for r in report["crosscheck"] if r["ratio"] is not None]
    tol = report["settings"]["crosscheck"]["tolerance"]
    ys = range(len(rows))
    c.errorbar([r["ratio"] for r in rows], ys, xerr=[[2 * r["ratio"] * r["spread"] for r in rows]] * 2, fmt="o")
    c.axvspan(1 / (1 + tol), 1 + tol, color="tab:green", alpha=0.15, label="tolerance")
    c.set_yticks(list(ys), [f"{r['source'].split('-')[0]}: {_short(r['scene'])}" for r in rows], fontsize=7)
    c.set_xscale("log")
    c.set(xlabel="source distance / size-prior distance", title="Cross-check (2 sigma bars)")
    c.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
