"""``python -m bench layouts-agree``: do the serial and the parallel layout find the same objects?

Per frame of each source, the product's own stages (:func:`stream.app.make_stages`, built from the same config,
once with ``pipeline.layout: serial`` and once with ``parallel``) run on the same depth map: parallel detects on
the whole frame, serial on the frame blanked outside the (grown) band mask; both then give each box its distance
and keep the boxes inside the band. The boxes of the two layouts are matched one to one (same class, IoU >= 0.5,
highest IoU first: :func:`engines.check.match_boxes`). Per class: boxes found by parallel, by serial, by both,
by serial only (invented by the blanking, or found only there) and by parallel only (lost by the blanking).

No threads and no timing: this measures what the layouts find, not how fast (``python -m bench pipeline``).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from depthstream.errors import ConfigError
from depthstream.schema.config import load_config
from depthstream.types import Result
from engines.check import match_boxes
from stream.app import box_stat_for, build_models, make_stages
from stream.depth.select import select_camera, select_depth
from stream.sources import open_source

LAYOUTS_TIMING = {"what": "counts of boxes, not time: the two layouts' stages run one after the other on each frame"}


def _add(table: dict, name: str, key: str, n: int = 1) -> None:
    row = table.setdefault(name, {"parallel": 0, "serial": 0, "both": 0, "serial_only": 0, "parallel_only": 0})
    row[key] += n


def agree_on(uri: str, *, config: str | None = None, sets: Sequence[str] = (), closer_than: float | None = None,
             further_than: float | None = None, depth_model: str | None = None, camera: str | None = None,
             max_frames: int = 0) -> dict:
    """Counts per class for one source (see the module docstring)."""
    cfg = load_config(config, list(sets), {"band.closer_than": closer_than, "band.further_than": further_than,
                                           "depth.source": depth_model, "camera.profile": camera})
    if not cfg.band.active:
        raise ConfigError("give a band (--closer-than and/or --further-than): without one the serial layout blanks "
                          "nothing and both layouts see the same frame")
    chosen = select_camera(cfg, uri)
    choice = select_depth(cfg, chosen)
    _, depth, detector = build_models(cfg, chosen, choice)
    stat = box_stat_for(cfg, depth)
    serial = make_stages(dataclasses.replace(cfg, pipeline=dataclasses.replace(cfg.pipeline, layout="serial")),
                         depth, detector, stat)
    parallel = make_stages(dataclasses.replace(cfg, pipeline=dataclasses.replace(cfg.pipeline, layout="parallel")),
                           depth, detector, stat)
    table: dict[str, dict[str, int]] = {}
    frames = 0
    with open_source(uri, cfg.source) as src, detector:
        depth.open()
        try:
            names = detector.class_names
            while not max_frames or frames < max_frames:
                frame = src.read()
                if frame is None:
                    break
                res = parallel.depth(Result(frame))
                p = parallel.finish(parallel.detect(res)).detections
                s = serial.finish(serial.detect(res)).detections
                pairs = match_boxes(s.xyxy, s.class_id, p.xyxy, p.class_id)
                matched_s, matched_p = {i for i, _, _ in pairs}, {j for _, j, _ in pairs}
                for j, c in enumerate(p.class_id):
                    _add(table, names[c], "parallel")
                    _add(table, names[c], "both" if j in matched_p else "parallel_only")
                for i, c in enumerate(s.class_id):
                    _add(table, names[c], "serial")
                    if i not in matched_s:
                        _add(table, names[c], "serial_only")
                frames += 1
        finally:
            depth.close()
    totals = {k: sum(row[k] for row in table.values()) for k in ("parallel", "serial", "both", "serial_only",
                                                                   "parallel_only")}
    return {"source": uri, "frames": frames, "depth": {"source": depth.source, "state": depth.state,
                                                         "selected": choice.why, "camera": chosen.name},
            "band": cfg.band.describe(), "mask": dataclasses.asdict(cfg.mask), "box_stat": stat,
            "classes": dict(sorted(table.items(), key=lambda kv: -kv[1]["parallel"] - kv[1]["serial"])),
            "totals": totals}


def bench_layouts(sources: Sequence[str], **kwargs) -> dict:
    """:func:`agree_on` for each source; ``kwargs`` as it takes them."""
    if not sources:
        raise ConfigError("give at least one --source")
    runs = [agree_on(uri, **kwargs) for uri in sources]
    return {"settings": {k: v for k, v in kwargs.items()}, "runs": runs}


def layouts_markdown(report: dict) -> str:
    lines = ["# Serial vs parallel: the objects each layout finds", "", f"`{report['command']}`", ""]
    for run in report["runs"]:
        d = run["depth"]
        t = run["totals"]
        lines += [f"## {run['source']} ({run['frames']} frames), {run['band']}",
                  "", f"depth: {d['source']} ({d['state']}; {d['selected']}), box distance = {run['box_stat']}; "
                      f"mask: {', '.join(f'{k} {v}' for k, v in run['mask'].items())}", "",
                  "| class | parallel | serial | both | serial only (invented) | parallel only (lost) |",
                  "|---|---:|---:|---:|---:|---:|"]
        for name, row in run["classes"].items():
            lines.append(f"| {name} | {row['parallel']} | {row['serial']} | {row['both']} | {row['serial_only']} | "
                         f"{row['parallel_only']} |")
        lines.append(f"| **all** | {t['parallel']} | {t['serial']} | {t['both']} | {t['serial_only']} | "
                     f"{t['parallel_only']} |")
        lines.append("")
    return "\n".join(lines)
