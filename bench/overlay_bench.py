"""Overlay benchmark: how much of the objects the product found its own drawing hides, and what it costs.

What is measured, exactly
-------------------------
The source (``demo``, a video file, a folder or glob of images) is decoded and each frame written as a
lossless PNG into a temporary folder, scaled to ``--size`` when asked. The product then runs on those
frames as ``python -m stream --source SOURCE --output OUT/ --jsonl OUT.jsonl`` runs (``stream.app.run``;
config, band and ``--set`` overrides as given), a video's frames played back as a video (the overlay
remembers recent frames), a folder of photos as photos, and writes each annotated frame as a PNG of the
same name. The measure reads nothing of the overlay's own state: only the source PNG, the annotated PNG
and the boxes of the JSONL.

- A box **shown as found** is one in the JSONL (with a band, only the boxes inside it: boxes outside
  the band are not reported as found, so they are not counted, and the tint over them is not a loss).
- Its **inner area** is the box shrunk by ``shrink`` (15 %) of its width / height on every side: the part
  that is the object rather than its outline or the label that sits at its edge.
- A pixel is **painted over** when any colour channel of the annotated frame differs from the source
  frame by more than ``pixel_threshold`` levels (24 of 255): a label, the inset, the HUD, a leader line,
  a tint over the box. Smaller changes are not counted (none of the overlay's layers makes one).
- A box is **hidden** when more than ``covered`` (20 %) of its inner area is painted over. The figure is
  the share of shown boxes that are hidden, over all frames and over the busiest frames (the tenth of
  the frames with the most boxes: the crowded scene).

Whatever paints over a shown box counts, the tint included: a box the product reports inside the band
is not to be tinted as outside it.

Cost, two figures:

- ``overlay_ms``: what the product records per frame in the JSONL (``time.perf_counter`` around the
  whole overlay call, inside the running pipeline: the models run on the other threads meanwhile, so it
  is the cost on the hot path as the product runs, with its noise);
- ``draw_ms``: ``stream.overlay.draw`` alone, replayed afterwards on one thread over the same frames with
  the boxes of the JSONL, the depth map and band mask recomputed as the product makes them, and the
  overlay options of the config; each frame drawn ``REPLAY_ROUNDS`` times, its fastest kept (the
  others are what other processes took from the cores). The same call exists in older versions of
  the overlay, so two versions compare through this one command.
"""

from __future__ import annotations

import json
import logging
import math
import re
import tempfile
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from depthstream.errors import ConfigError, StreamError
from depthstream.schema.config import load_config
from depthstream.types import Detections, Frame, Result
from stream.app import run
from stream.depth.select import select_camera
from stream.sources import ImagesSource, Source, open_source

from .stats import summarise

log = logging.getLogger(__name__)

SHRINK = 0.15
PIXEL_THRESHOLD = 24
COVERED = 0.20
BUSIEST_SHARE = 0.10
REPLAY_ROUNDS = 3

OVERLAY_TIMING = {
    "measure": f"share of the boxes shown as found (the JSONL's boxes) whose inner area (box shrunk {SHRINK:.0%} "
               f"per side) has more than {COVERED:.0%} of its pixels changed by more than {PIXEL_THRESHOLD} levels "
               "in any channel, annotated PNG against source PNG",
    "overlay_ms": "the product's own per-frame 'overlay' timing (JSONL timings_ms), inside the running pipeline",
    "draw_ms": f"stream.overlay.draw alone on one thread, replayed over the same frames and boxes, fastest of "
               f"{REPLAY_ROUNDS} per frame",
}


def parse_size(text: str) -> tuple[int, int]:
    """``640x360`` -> (640, 360) (width, height)."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m or int(m.group(1)) < 16 or int(m.group(2)) < 16:
        raise ConfigError(f"--size must be WIDTHxHEIGHT in pixels, each >= 16 (e.g. 640x360), got {text!r}")
    return int(m.group(1)), int(m.group(2))


class PngVideoSource(ImagesSource):
    """The PNG frames of a video, handed out as that video (its frame rate; one scene, so the overlay
    remembers recent frames), written back under their PNG names (lossless)."""

    stills = False

    def __init__(self, folder: Path, fps: Fraction | None) -> None:
        super().__init__(str(folder), sorted(folder.glob("*.png")))
        self._fps = fps

    @property
    def fps(self) -> Fraction | None:
        return self._fps


def extract_frames(source: str, folder: Path, *, size: tuple[int, int] | None, frames: int) -> tuple[int, Source]:
    """Decode ``source`` into ``folder/frame_NNNNNN.png`` (lossless), resized to ``size`` (width, height)
    when given; at most ``frames`` frames (0 = all). Returns how many were written and the source the
    product is to read them from: a video's frames as a video, photos as a folder of photos."""
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    with open_source(source) as src:
        stills, fps = src.stills, src.fps
        while not frames or n < frames:
            frame = src.read()
            if frame is None:
                break
            image = frame.image
            if size is not None and (image.shape[1], image.shape[0]) != size:
                shrink = size[0] * size[1] < image.shape[0] * image.shape[1]
                image = cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
            if not cv2.imwrite(str(folder / f"frame_{n:06d}.png"), image):
                raise StreamError(f"cannot write {folder / f'frame_{n:06d}.png'} (disk full?)")
            n += 1
    if n == 0:
        raise ConfigError(f"--source {source}: no frames to measure")
    return n, (open_source(str(folder)) if stills else PngVideoSource(folder, fps))


def inner_box(box: Sequence[float], width: int, height: int, shrink: float = SHRINK) -> tuple[int, int, int, int] | None:
    """The box (x1, y1, x2, y2 pixels) shrunk by ``shrink`` of its size on every side, clipped to the frame,
    as integer slice bounds (x1, y1, x2, y2 exclusive); None when nothing is left."""
    x1, y1, x2, y2 = (float(v) for v in box)
    dx, dy = (x2 - x1) * shrink, (y2 - y1) * shrink
    ix1, iy1 = max(0, int(np.ceil(x1 + dx))), max(0, int(np.ceil(y1 + dy)))
    ix2, iy2 = min(width, int(np.floor(x2 - dx)) + 1), min(height, int(np.floor(y2 - dy)) + 1)
    if ix2 <= ix1 or iy2 <= iy1:
        return None
    return ix1, iy1, ix2, iy2


def painted_fractions(source: np.ndarray, annotated: np.ndarray, boxes: Sequence[Sequence[float]], *,
                      shrink: float = SHRINK, pixel_threshold: int = PIXEL_THRESHOLD) -> list[float]:
    """Per box, the share of its inner area whose pixels the annotated frame changed by more than
    ``pixel_threshold`` levels in any channel. Both images (H, W, 3) uint8 of one size."""
    if source.shape != annotated.shape:
        raise ValueError(f"annotated frame {annotated.shape} and source frame {source.shape} differ in size")
    changed = cv2.absdiff(source, annotated).max(axis=2) > pixel_threshold
    height, width = changed.shape
    out = []
    for box in boxes:
        inner = inner_box(box, width, height, shrink)
        if inner is None:
            out.append(0.0)
            continue
        x1, y1, x2, y2 = inner
        out.append(float(changed[y1:y2, x1:x2].mean()))
    return out


@dataclass
class FrameMeasure:
    name: str
    size: tuple[int, int]  # width, height
    fractions: list[float]
    overlay_ms: float | None


def measure_run(frames_dir: Path, out_dir: Path, jsonl: Path) -> list[FrameMeasure]:
    """Pair each JSONL record with its source and annotated PNG (the folder source numbers frames in the
    sorted order of their names) and measure every box."""
    names = sorted(p.name for p in frames_dir.glob("*.png"))
    measures = []
    for line in jsonl.read_text().splitlines():
        rec = json.loads(line)
        name = names[rec["index"]]
        src = cv2.imread(str(frames_dir / name), cv2.IMREAD_COLOR)
        ann = cv2.imread(str(out_dir / name), cv2.IMREAD_COLOR)
        if src is None or ann is None:
            raise StreamError(f"frame {name}: the source or the annotated PNG is missing ({frames_dir}, {out_dir})")
        boxes = [d["box"] for d in rec["detections"]]
        measures.append(FrameMeasure(name, (src.shape[1], src.shape[0]), painted_fractions(src, ann, boxes),
                                     rec["timings_ms"].get("overlay")))
    return measures


def replay_draw_ms(cfg, frames_dir: Path, jsonl: Path, rounds: int = REPLAY_ROUNDS) -> list[float]:
    """Milliseconds of ``stream.overlay.draw`` per frame, the fastest of ``rounds`` calls, over the frames
    of a run: its boxes from the JSONL, depth and band mask recomputed as the product makes them."""
    from stream.depth.select import build_depth
    from stream.mask import band_mask
    from stream.overlay import draw

    band = cfg.band
    band_text = band.describe() if band.active else None
    names = sorted(p.name for p in frames_dir.glob("*.png"))
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    seen = {d["class_id"]: d["class"] for rec in records for d in rec["detections"]}
    class_names = [seen.get(i, f"class {i}") for i in range(max(seen, default=-1) + 1)]
    depth = build_depth(cfg, select_camera(cfg, ""), 1)  # the frames' camera is the one the run was given
    depth.open()
    cv2.setNumThreads(1)  # as the product runs it
    out = []
    try:
        for rec in records:
            image = cv2.imread(str(frames_dir / names[rec["index"]]), cv2.IMREAD_COLOR)
            frame = Frame(image, rec["index"], None, 0, "replay")
            dm = depth(frame)
            dets = _detections(rec["detections"])
            timings = {k: v for k, v in rec["timings_ms"].items() if k in ("decode", "depth", "detect", "box_depth")}
            result = Result(frame, dm, band_mask(dm, band) if band.active else None, dets, timings)
            best = math.inf
            for _ in range(rounds):
                t0 = time.perf_counter()
                draw(result, class_names, fps=10.0, band_text=band_text, options=cfg.overlay)
                best = min(best, (time.perf_counter() - t0) * 1e3)
            out.append(best)
    finally:
        depth.close()
    return out


def _num(value) -> float:
    return np.nan if value is None else value


def _detections(ds: list[dict]) -> Detections:
    """A JSONL record's boxes as the overlay drew them: distances, reliability and, when tracked, the track
    columns its labels print."""
    track = {k: [_num(d.get(k)) for d in ds] for k in ("depth_filtered_m", "speed_mps", "speed_std_mps", "ttc_s",
                                                        "ttc_std_s")}
    return Detections(np.array([d["box"] for d in ds], np.float32).reshape(-1, 4), [d["score"] for d in ds],
                      [d["class_id"] for d in ds], [_num(d["depth_m"]) for d in ds],
                      depth_reliable=[d.get("depth_reliable", True) for d in ds],
                      track_id=[-1 if d.get("track_id") is None else d["track_id"] for d in ds], **track)


def summarise_measures(measures: Sequence[FrameMeasure], covered: float = COVERED) -> dict:
    """Boxes, hidden boxes and their share over these frames."""
    fractions = [f for m in measures for f in m.fractions]
    hidden = sum(f > covered for f in fractions)
    return {
        "frames": len(measures),
        "boxes": len(fractions),
        "hidden": int(hidden),
        "hidden_share": round(hidden / len(fractions), 4) if fractions else None,
        "mean_painted_share": round(float(np.mean(fractions)), 4) if fractions else None,
    }


def bench_overlay(*, source: str, size: tuple[int, int] | None, frames: int, closer_than: float | None,
                  further_than: float | None, config: str | None, sets: Sequence[str], keep: Path | None) -> dict:
    """Run the product on ``source`` and measure its annotated frames; the results block of the report."""
    if keep is not None and keep.exists() and any(keep.iterdir()):
        raise ConfigError(f"--keep {keep}: the folder is not empty; give a new or empty folder for the frames")
    with tempfile.TemporaryDirectory(prefix="overlay-bench-") as tmp:
        work = keep if keep is not None else Path(tmp)  # --keep: the frames stay there to look at
        frames_dir, out_dir, jsonl = work / "frames", work / "annotated", work / "annotated.jsonl"
        n, frames_source = extract_frames(source, frames_dir, size=size, frames=frames)
        out_dir.mkdir(parents=True, exist_ok=True)
        overrides = {"output.mp4": str(out_dir), "output.jsonl": str(jsonl),
                     "band.closer_than": closer_than, "band.further_than": further_than}
        cfg = load_config(config, list(sets), overrides)
        if size is None and cfg.camera.profile is None:
            # The frames are the source's own, as the product decoded them: they keep the source's camera profile
            # (the bundled clip's, for the demo). Resized frames are another camera, with no profile.
            own = select_camera(cfg, source).path
            if own is not None:
                cfg = load_config(config, list(sets), {**overrides, "camera.profile": str(own)})
        log.info("overlay bench: %d frames of %s%s through the product", n, source,
                 f" at {size[0]}x{size[1]}" if size else "")
        summary = run(cfg, source=frames_source)
        measures = measure_run(frames_dir, out_dir, jsonl)
        draw_ms = replay_draw_ms(cfg, frames_dir, jsonl)
    busiest_n = max(1, round(len(measures) * BUSIEST_SHARE))
    busiest = sorted(measures, key=lambda m: (-len(m.fractions), m.name))[:busiest_n]
    ms = [m.overlay_ms for m in measures if m.overlay_ms is not None]
    return {
        "settings": {"source": source, "size": list(size) if size else None, "frames": n, "band": summary.band,
                     "shrink": SHRINK, "pixel_threshold": PIXEL_THRESHOLD, "covered": COVERED,
                     "busiest_share": BUSIEST_SHARE, "config": config, "set": list(sets),
                     "frame_sizes": sorted({f"{m.size[0]}x{m.size[1]}" for m in measures})},
        "all": summarise_measures(measures),
        "busiest": {**summarise_measures(busiest), "boxes_per_frame_min": min(len(m.fractions) for m in busiest)},
        "overlay_ms": summarise(ms).as_dict() if ms else None,
        "draw_ms": summarise(draw_ms).as_dict() if draw_ms else None,
        "per_frame": [{"name": m.name, "boxes": len(m.fractions), "hidden": sum(f > COVERED for f in m.fractions),
                       "overlay_ms": m.overlay_ms} for m in measures],
    }


def overlay_markdown(report: dict) -> str:
    s = report["settings"]
    size = f"{s['size'][0]}x{s['size'][1]}" if s["size"] else "as decoded"
    lines = [
        f"# Overlay: boxes hidden by the drawing ({s['source']}, {size}, band: {s['band']})",
        "",
        f"Hidden = more than {s['covered']:.0%} of the box's inner area (shrunk {s['shrink']:.0%} per side) "
        f"changed by more than {s['pixel_threshold']} levels. Command: `{report['command']}`",
        "",
        "| frames | boxes | hidden | hidden share | mean painted share of a box |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, label in (("all", "all"), ("busiest", f"busiest {s['busiest_share']:.0%}")):
        r = report[key]
        share = "—" if r["hidden_share"] is None else f"{100 * r['hidden_share']:.1f} %"
        mean = "—" if r["mean_painted_share"] is None else f"{100 * r['mean_painted_share']:.1f} %"
        lines.append(f"| {label} ({r['frames']}) | {r['boxes']} | {r['hidden']} | {share} | {mean} |")
    ms = report["overlay_ms"]
    if ms:
        lines += ["", f"overlay ms per frame (in the running product): p50 {ms['p50']:.2f}, p95 {ms['p95']:.2f}, "
                      f"mean {ms['mean']:.2f} over {ms['n']} frames"]
    ms = report["draw_ms"]
    if ms:
        lines += [f"draw ms per frame (alone, one thread, fastest of {REPLAY_ROUNDS}): p50 {ms['p50']:.2f}, "
                  f"p95 {ms['p95']:.2f}, mean {ms['mean']:.2f}"]
    return "\n".join(lines)
