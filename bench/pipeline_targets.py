"""What the cores allow, and the pipeline's targets as ratios of figures measured side by side in one run.

Limits (:func:`limits`), from the throughput runs' CPU accounting (:mod:`bench.pipeline_runs`):

- ``cpu_ms_per_frame`` = cores kept busy / FPS: the CPU time one frame costs in that layout (every thread of
  the process: decode, both models' thread pools, the Python stages, the overlay);
- ``fps_at_full_cores`` = cores / CPU seconds per frame: the rate that work allows once every core is busy;
- ``share_of_cores_limit`` = FPS / ``fps_at_full_cores`` (= cores busy / cores): how far the layout is from it;
- ``share_of_free_cores`` = cores busy / (cores - what other processes kept busy meanwhile): the same, counting
  only the cores that were free for it (on a shared machine the first is also held back by others).

Targets (:func:`targets`), each ``{"value", "target", "met"}``:

- ``slower_layout_over_bare``: the slower layout's throughput FPS / the bare decode -> depth -> detect loop's, >= 0.95;
- ``parallel_latency_p50_over_serial``: live end-to-end latency p50, parallel / serial, <= 0.80, *and* the parallel
  layout's throughput FPS at least the serial one's (``fps_ratio`` >= 1.00);
- ``share_of_cores_limit``: per layout, >= 0.90 (within 10 % of the FPS the cores allow);
- ``age_p99_over_service``: per layout, the live runs' frame age (decode -> encoded) p99 / the per-frame service
  time, <= 2.0. The service time is what one frame costs on its way through when it never waits: the sum of the
  p50 stage times on the layout's path (serial: every stage one after the other; parallel: the longer of depth
  and detection, which run at once). A p99 within twice that means frames do not queue behind each other.
"""

from __future__ import annotations

from .stats import ratio

# Targets of the pipeline benchmark (the issue "real time on a small CPU"): name -> (comparison, bound).
TARGETS = {
    "slower_layout_over_bare": (">=", 0.95),
    "parallel_latency_p50_over_serial": ("<=", 0.80),
    "share_of_cores_limit": (">=", 0.90),
    "age_p99_over_service": ("<=", 2.0),
}
FPS_RATIO_FLOOR = 1.0  # the parallel layout's latency target holds only at an FPS no lower than the serial one's


def _round(x: float | None, digits: int = 3) -> float | None:
    return None if x is None else round(x, digits)


def _p50(stages: dict, name: str) -> float:
    return stages[name]["p50"] if name in stages else 0.0


AFTER_JOIN = ("box_depth", "track", "overlay", "encode")


def service_ms(layout: str, stages: dict) -> float:
    """A frame's time through ``layout`` when it never waits: the p50 of every stage on its path (see the module
    docstring)."""
    depth = _p50(stages, "depth") + _p50(stages, "mask")
    detect = _p50(stages, "fill") + _p50(stages, "detect")
    middle = depth + detect if layout == "serial" else max(depth, detect)
    return _p50(stages, "decode") + middle + sum(_p50(stages, s) for s in AFTER_JOIN)


def limits(bare: dict, layouts: dict[str, dict], cores: int) -> dict:
    """What the cores allow, from the measured runs (see the module docstring)."""
    out: dict[str, object] = {"cores": cores, "bare_cores_busy": bare["cpu_cores_busy"], "throughput": {}}
    for name, runs in layouts.items():
        tp = runs["throughput"]
        busy, fps, others = tp["cpu_cores_busy"], tp["fps"], tp.get("other_processes_cores_busy")
        free = cores - others if others is not None else None
        out["throughput"][name] = {
            "cores_busy": busy,
            "cpu_ms_per_frame": _round(1e3 * busy / fps, 2) if fps > 0 else None,
            "fps_at_full_cores": round(fps * cores / busy, 2) if busy > 0 else None,
            "share_of_cores_limit": _round(busy / cores),
            "share_of_free_cores": _round(min(1.0, busy / free)) if free and free > 0 else None,
        }
    serial = layouts.get("serial", {}).get("live")
    if serial is not None:
        st = serial["stages"]
        branch_depth = _p50(st, "depth") + _p50(st, "mask")
        branch_detect = _p50(st, "detect")
        lat = serial["latency_ms"]["p50"]
        ideal = lat - _p50(st, "fill") - branch_depth - branch_detect + max(branch_depth, branch_detect)
        out["parallel_latency_p50_ideal_ms"] = round(ideal, 2)
        out["parallel_over_serial_latency_limit"] = round(ideal / lat, 3) if lat > 0 else None
        parallel = layouts.get("parallel", {}).get("live")
        if parallel is not None and branch_depth >= 1.0:  # a depth that costs something to overlap
            pst = parallel["stages"]
            par_depth = _p50(pst, "depth") + _p50(pst, "mask")
            par_detect = _p50(pst, "detect")
            # Two models side by side on the same cores each run slower than alone (caches, memory
            # bandwidth, the Python threads between them): the serial run's times vs the parallel run's.
            out["side_by_side_slowdown"] = {
                "depth": _round(ratio(par_depth, branch_depth)),
                "detect": _round(ratio(par_detect, branch_detect)),
            }
            explained = lat - _p50(st, "fill") - branch_depth - branch_detect + max(par_depth, par_detect)
            out["parallel_latency_p50_with_slowdown_ms"] = round(explained, 2)
    return out


def _check(name: str, value: float | None, **extra) -> dict:
    op, bound = TARGETS[name]
    met = None if value is None else (value >= bound if op == ">=" else value <= bound)
    return {"value": _round(value), "target": f"{op} {bound:.2f}", "met": met, **extra}


def targets(bare: dict, layouts: dict[str, dict], lim: dict) -> dict:
    """The targets of the module docstring, from this run's figures (a layout not run: left out)."""
    out: dict[str, object] = {}
    fps = {name: runs["throughput"]["fps"] for name, runs in layouts.items()}
    out["slower_layout_over_bare"] = _check("slower_layout_over_bare", ratio(min(fps.values()), bare["fps"]),
                                            slower=min(fps, key=fps.get))
    if "serial" in layouts and "parallel" in layouts:
        fps_ratio = ratio(fps["parallel"], fps["serial"])
        lat = ratio(layouts["parallel"]["live"]["latency_ms"]["p50"], layouts["serial"]["live"]["latency_ms"]["p50"])
        check = _check("parallel_latency_p50_over_serial", lat, fps_ratio=_round(fps_ratio))
        if check["met"] is not None and fps_ratio is not None:
            check["met"] = check["met"] and fps_ratio >= FPS_RATIO_FLOOR
        out["parallel_latency_p50_over_serial"] = check
    out["share_of_cores_limit"] = {name: _check("share_of_cores_limit", v["share_of_cores_limit"])
                                   for name, v in lim["throughput"].items()}
    ages = {}
    for name, runs in layouts.items():
        live = runs["live"]
        service = service_ms(name, live["stages"])
        ages[name] = _check("age_p99_over_service", ratio(live["latency_ms"]["p99"], service),
                            age_p99_ms=live["latency_ms"]["p99"], service_ms=_round(service, 2))
    out["age_p99_over_service"] = ages
    return out
