"""``python -m bench fixed-costs``: the CPU milliseconds each per-frame step costs besides the two models, one
step at a time on one thread, with the product's own code on real frames.

Steps (each over the same ``--frames`` frames of the source, decoded once; ``--rounds`` rounds, the steps
interleaved in every round so that a slow phase of a busy machine falls on all of them alike):

- ``decode``: PyAV decoding the source (its frames again, from the file);
- ``detect_pre``: the detector's letterbox and input blob (:class:`stream.detect.Detector`'s preprocessing);
- ``detect_post``: decoding the detector's raw output and NMS (the output computed once per frame beforehand);
- ``depth_pre`` / ``depth_post``: the depth network's input (colour, resize, layout) and its output back to
  metres on the frame (:class:`stream.depth.OnnxDepth`), the network's output computed once beforehand;
- ``mask``: the band's mask from the depth map; ``serial_mask`` / ``fill``: the serial layout's growth of it and
  the hiding of what lies outside (``mask.fill``, a blur by default);
- ``box_depth``: each box's distance and reliability flags;
- ``overlay``: :meth:`stream.overlay.Overlay.draw` (tint, inset, boxes, HUD, labels);
- ``encode:PRESET``: :class:`stream.sinks.Mp4Sink` writing the annotated frames with libx264 at each preset of
  ``--presets`` (into a temporary file), and the file's size per frame.

CPU time is the process's (``time.process_time``: every thread of the process, so an encoder's or decoder's
own threads count), per frame; the figure is the median over the rounds of each round's mean. The models
themselves are timed by ``python -m bench models``. Two versions of the product compare through this one
command, run alternately.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from depthstream.errors import ConfigError
from depthstream.schema.config import BUNDLED_DEPTH_CARD, load_config
from depthstream.types import Frame, Result
from stream.app import box_stat_for, build_models
from stream.boxdepth import assign_box_depth
from stream.boxtrust import flag_boxes
from stream.depth.cardcheck import output_map
from stream.depth.geometry import map_to_frame
from stream.depth.select import select_camera
from stream.mask import band_mask, fill_outside, serial_mask
from stream.overlay import Overlay
from stream.sinks import Mp4Sink
from stream.sources import open_source

log = logging.getLogger(__name__)

PRESETS = ("ultrafast", "superfast", "veryfast")
FIXED_COSTS_TIMING = {
    "clock": "time.process_time (the process's CPU time, every thread) around each step, one thread calling",
    "figure": "per step: the median over the rounds of the round's mean CPU ms per frame; steps interleaved per round",
    "inputs": "the source's frames decoded once; each model's output computed once per frame before timing",
}


def _frames(uri: str, n: int) -> list[Frame]:
    frames = []
    with open_source(uri) as src:
        while len(frames) < n:
            f = src.read()
            if f is None:
                break
            frames.append(f)
    if not frames:
        raise ConfigError(f"{uri} has no frames to time")
    return frames


def _decode(uri: str, n: int) -> Callable[[], int]:
    def step() -> int:
        with open_source(uri) as src:
            done = 0
            while done < n and src.read() is not None:
                done += 1
        return done

    return step


def bench_fixed_costs(*, source: str, frames: int, rounds: int, presets: Sequence[str], depth_model: str | None,
                      config: str | None, sets: Sequence[str]) -> dict:
    """The ``results`` block of the fixed-costs report (see the module docstring)."""
    if frames < 1 or rounds < 1:
        raise ConfigError(f"--frames and --rounds must be >= 1, got {frames} and {rounds}")
    cfg = load_config(config, list(sets), {"source.uri": source, "depth.source": depth_model or BUNDLED_DEPTH_CARD,
                                           "band.closer_than": 30.0})
    uri = cfg.source.uri
    clip = _frames(uri, frames)
    threads, depth, detector = build_models(cfg, select_camera(cfg, uri))
    stat = box_stat_for(cfg, depth)
    overlay = Overlay(cfg.overlay, detector.class_names)
    with detector, depth:
        raws, maps, outs, dets = [], [], [], []
        for f in clip:
            feeds, geometry = detector.prepare(f.image)
            raws.append((detector.engine.infer(feeds), geometry))
            x, placement = depth.preprocess(f.image)
            outs.append((depth.engine.infer({depth.card.input: x})[depth.card.output], placement))
            d, _ = detector(f.image)
            maps.append(depth(f))
            dets.append(d)

        def detect_post(i: int) -> None:
            detector.boxes(*raws[i], clip[i].image.shape[:2])

        def depth_post(i: int) -> None:
            out, placement = outs[i]
            map_to_frame(depth.to_metres(output_map(np.asarray(out), depth.card)), placement)

        def box(i: int) -> None:
            b = assign_box_depth(dets[i], maps[i], stat, cfg.depth.roi)
            flag_boxes(b, maps[i], domain_note=depth.domain_note, stat=stat, frame_height=clip[i].height)

        results = [Result(frame=f, depth=m, mask=band_mask(m, cfg.band), detections=assign_box_depth(d, m, stat))
                   for f, m, d in zip(clip, maps, dets)]
        drawn = [overlay.draw(r, fps=10.0, band_text=cfg.band.describe()) for r in results]
        masks = [r.mask for r in results]
        grown = [serial_mask(m, cfg, depth) for m in masks]
        steps: dict[str, Callable[[int], None]] = {
            "detect_pre": lambda i: detector.prepare(clip[i].image),
            "detect_post": detect_post,
            "depth_pre": lambda i: depth.preprocess(clip[i].image),
            "depth_post": depth_post,
            "mask": lambda i: band_mask(maps[i], cfg.band),
            "serial_mask": lambda i: serial_mask(masks[i], cfg, depth),
            "fill": lambda i: fill_outside(clip[i].image, grown[i], cfg.mask),
            "box_depth": box,
            "overlay": lambda i: overlay.draw(results[i], fps=10.0, band_text=cfg.band.describe()),
        }
        times: dict[str, list[float]] = {name: [] for name in ["decode", *steps, *(f"encode:{p}" for p in presets)]}
        sizes: dict[str, float] = {}
        decode = _decode(uri, len(clip))
        with tempfile.TemporaryDirectory(prefix="bench-fixed-") as tmp:
            for r in range(rounds):
                log.info("round %d of %d", r + 1, rounds)
                t0 = time.process_time()
                n = decode()
                times["decode"].append((time.process_time() - t0) * 1e3 / n)
                for name, fn in steps.items():
                    t0 = time.process_time()
                    for i in range(len(clip)):
                        fn(i)
                    times[name].append((time.process_time() - t0) * 1e3 / len(clip))
                for p in presets:
                    path = Path(tmp) / f"{p}-{r}.mp4"
                    h, w = drawn[0].shape[:2]
                    t0 = time.process_time()
                    with Mp4Sink(path, fps=10, width=w, height=h, crf=cfg.output.crf, preset=p) as sink:
                        for image in drawn:
                            sink.write(image)
                    times[f"encode:{p}"].append((time.process_time() - t0) * 1e3 / len(drawn))
                    sizes[p] = round(path.stat().st_size / len(drawn) / 1e3, 2)
    rows = {name: {"cpu_ms_per_frame": round(float(np.median(v)), 3), "rounds": [round(x, 3) for x in v]}
            for name, v in times.items()}
    for p in presets:
        rows[f"encode:{p}"]["kb_per_frame"] = sizes[p]
    boxes = sum(len(d) for d in dets)
    settings = {"source": source, "frames": len(clip), "rounds": rounds, "presets": list(presets), "crf": cfg.output.crf,
                "depth_source": cfg.depth.source, "boxes_per_frame": round(boxes / len(clip), 1),
                "frame_size": list(clip[0].image.shape[:2]), "threads": {"detect": threads.detect, "depth": threads.depth}}
    return {"settings": settings, "steps": rows}


def fixed_costs_markdown(report: dict, header: list[str]) -> str:
    s = report["settings"]
    lines = header + [
        f"{s['frames']} frames of `{s['source']}` ({s['frame_size'][1]}x{s['frame_size'][0]}, {s['boxes_per_frame']} "
        f"boxes a frame), {s['rounds']} interleaved rounds; depth `{s['depth_source']}`; one thread calling.",
        "",
        "| step | CPU ms / frame | rounds (ms) |",
        "|---|---:|---|",
    ]
    for name, r in report["steps"].items():
        size = f" ({r['kb_per_frame']:.1f} kB a frame at crf {s['crf']})" if "kb_per_frame" in r else ""
        lines.append(f"| {name}{size} | {r['cpu_ms_per_frame']:.2f} | {', '.join(f'{x:.2f}' for x in r['rounds'])} |")
    lines += ["", "What was measured:", ""] + [f"- {k}: {v}" for k, v in report["timing"].items()] + [""]
    return "\n".join(lines)
