"""Soak: many frames from a synthetic live source through the whole product; does memory or frame age creep up?

    python -m bench.soak                                   # 10 000 frames at 100 fps, real detector, MP4 + JSONL
    python -m bench.soak --stage instant-detector --frames 100000 --fps 400 --size 320x240 --json out/soak.json
    python -m bench.soak --frames 2000 --fps 30 --stage pipeline

Not a unit test (it runs for minutes). What runs:

- **source**: a synthetic camera, ``live`` like a real one: the bundled clip's 150 frames (decoded once, 768x576,
  or scaled to ``--size``) handed out in a loop, paced by the clock at ``--fps``, each stamped at hand-out like a
  camera frame at decode. Faster than the pipeline on purpose, so the ``latest`` policy has to drop frames.
- **stage** ``real`` (default): ``stream.app.run`` as ``python -m stream`` runs it: ground-plane depth, the shipped
  YOLOX-Nano detector through ONNX Runtime on the CPU, tracks, the overlay, an H.264 MP4 and a JSONL (``--out``,
  default ``out/soak.*``), the run's summary. ``instant-detector``: the same, with a stand-in detector that returns
  two boxes at once instead of YOLOX (about 15 ms a frame here): everything else is the product's, so 100 000 frames
  take minutes, not hours. ``pipeline``: the pipeline's threads and queues alone, with stages that only sleep
  ``--fake-ms`` milliseconds, no models and no outputs: what the pipeline itself holds.

It reports the resident memory (RSS, from /proc/self/status) before the run, after the first window, at the last
source frame and after the run (models and outputs closed), and per window of ``--window`` *source* frames: frames
processed and dropped, RSS at the window's end, and the frame age (capture -> written) p50 / p95 / p99 of the frames
of that window that were processed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from depthstream.schema.config import load_config
from depthstream.store import DEMO_CLIP
from depthstream.types import Detections
from stream.sources import Source


def rss_mb() -> float:
    """Resident set size of this process in MiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (not Linux?)")


def clip_frames(size: tuple[int, int] | None = None) -> list[np.ndarray]:
    import av
    import cv2

    with av.open(str(DEMO_CLIP)) as c:
        frames = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    return [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames] if size else frames


class SyntheticCamera(Source):
    """``total`` frames at ``fps`` from a list of images; RSS is sampled every ``window`` frames."""

    live = True

    def __init__(self, images: list[np.ndarray], total: int, fps: float, window: int) -> None:
        super().__init__("synthetic-camera")
        self.images, self.total, self.rate, self.window = images, total, fps, window
        self.rss: dict[int, float] = {}
        self._t0 = 0.0

    @property
    def fps(self) -> Fraction:
        return Fraction(self.rate).limit_denominator(1001)

    def open(self) -> "SyntheticCamera":
        self._t0 = time.monotonic()
        return self

    def read(self):
        i = self._index
        if i % self.window == 0 or i == self.total:
            self.rss[i] = rss_mb()
        if i >= self.total:
            return None
        due = self._t0 + i / self.rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        return self._frame(self.images[i % len(self.images)], i / self.rate)


class InstantDetector:
    """Stands in for the detector in ``--stage instant-detector``: two person boxes per frame, moving slowly, at
    once. It is no detector: it only takes the model's time out of a soak of everything around it."""

    class_names = ("person",)

    class engine:  # what the run reports as the backend
        backend = "instant stand-in (bench.soak)"

    def __init__(self) -> None:
        self._n = 0

    def __enter__(self) -> "InstantDetector":
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def __call__(self, image: np.ndarray) -> tuple[Detections, dict[str, float]]:
        h, w = image.shape[:2]
        self._n += 1
        x = (self._n % 50) / 50 * w / 2
        boxes = np.array([[x, h * 0.3, x + w / 8, h * 0.9], [w - x - w / 8, h * 0.4, w - x, h * 0.95]], np.float32)
        return Detections(boxes, [0.9, 0.8], [0, 0]), {}


def run_product(cam: SyntheticCamera, out: Path, instant: bool) -> tuple[list[tuple[int, float]], dict]:
    from stream.app import run

    from stream.depth.select import BUNDLED_PROFILE

    # the synthetic camera hands out the bundled clip's frames: its camera profile is theirs (ground-plane depth)
    cfg = load_config(overrides={"output.mp4": str(out.with_suffix(".mp4")), "output.jsonl": str(out.with_suffix(".jsonl")),
                                 "pipeline.policy": "latest", "camera.profile": str(BUNDLED_PROFILE)})
    summary = run(cfg, source=cam, detector=InstantDetector() if instant else None)
    with open(out.with_suffix(".jsonl"), encoding="utf-8") as lines:  # line by line: the RSS after the run is the run's
        results = [(r["index"], r["age_ms"]) for r in map(json.loads, lines)]
    return results, {"summary_frames": summary.frames, "age_p50_p95_p99_ms": [round(v, 1) for v in summary.age_percentiles()]}


def run_fake(cam: SyntheticCamera, fake_ms: float) -> list[tuple[int, float]]:
    from stream.pipeline import Pipeline, Stages

    def work(res):
        time.sleep(fake_ms / 1000)
        return res

    cam.open()
    pipeline = Pipeline(cam, Stages(depth=work, detect=work, finish=lambda r: r), layout="parallel", policy="latest")
    got = []
    for res in pipeline.results():
        got.append((res.frame.index, (time.monotonic_ns() - res.frame.captured_ns) / 1e6))
    return got


def windows(results: list[tuple[int, float]], total: int, rss: dict[int, float], window: int) -> list[dict]:
    rows = []
    by_window: dict[int, list[float]] = {}
    for i, age in results:
        by_window.setdefault(i // window, []).append(age)
    for start in range(0, total, window):
        ages = by_window.get(start // window, [])
        n = min(window, total - start)
        row = {"frames": f"{start}-{start + n - 1}", "processed": len(ages), "dropped": n - len(ages),
               "rss_mb": round(rss.get(min(start + window, total), rss.get(start, float("nan"))), 1)}
        for q in (50, 95, 99):
            row[f"age_p{q}_ms"] = round(float(np.percentile(ages, q)), 1) if ages else None
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=10_000, help="source frames (default 10000)")
    ap.add_argument("--fps", type=float, default=100.0, help="the synthetic camera's rate (default 100)")
    ap.add_argument("--stage", choices=["real", "instant-detector", "pipeline"], default="real",
                    help="real: the whole product; instant-detector: the whole product with a stand-in detector; "
                         "pipeline: the pipeline's threads only")
    ap.add_argument("--fake-ms", type=float, default=5.0, help="pipeline: the stages sleep this long (default 5 ms)")
    ap.add_argument("--size", help="scale the clip's frames to WxH (e.g. 320x240; default: as they are, 768x576)")
    ap.add_argument("--window", type=int, default=10_000, help="source frames per row of the table (default 10000)")
    ap.add_argument("--out", default="out/soak", help="real: where the MP4 and JSONL go (suffixes added; default out/soak)")
    ap.add_argument("--json", help="also write the report as JSON here")
    args = ap.parse_args(argv)
    if args.frames < 1 or args.fps <= 0 or args.window < 1:
        ap.error("--frames, --fps and --window must be positive")
    size = None
    if args.size:
        try:
            size = tuple(int(v) for v in args.size.lower().split("x"))
        except ValueError:
            size = ()
        if len(size) != 2 or min(size) < 16:
            ap.error(f"--size must be WIDTHxHEIGHT of at least 16x16, e.g. 320x240, got {args.size!r}")

    images = clip_frames(size)
    rss_before = rss_mb()
    cam = SyntheticCamera(images, args.frames, args.fps, args.window)
    t0 = time.monotonic()
    extra: dict = {}
    if args.stage == "pipeline":
        results = run_fake(cam, args.fake_ms)
    else:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        results, extra = run_product(cam, out, instant=args.stage == "instant-detector")
    wall = time.monotonic() - t0
    rss_after = rss_mb()
    end = cam.rss.get(args.frames, rss_after)  # at the last source frame, models still loaded
    rows = windows(results, args.frames, cam.rss, args.window)
    first = cam.rss.get(min(args.window, args.frames), rss_before)
    report = {
        "stage": args.stage, "frames": args.frames, "fps": args.fps, "size": list(images[0].shape[1::-1]),
        "wall_s": round(wall, 1), **extra,
        "processed": len(results), "dropped": args.frames - len(results),
        "rss_mb": {"before": round(rss_before, 1), "after_first_window": round(first, 1), "end": round(end, 1),
                   "after_run": round(rss_after, 1)},
        "windows": rows,
    }
    print(f"soak: {args.frames} frames at {args.fps:g} fps, stage {args.stage}, {wall:.0f} s; "
          f"processed {len(results)}, dropped {args.frames - len(results)} (latest policy)")
    print(f"RSS MiB: before {rss_before:.1f}, after the first {args.window} frames {first:.1f}, at the last frame {end:.1f} "
          f"(growth after warm-up {end - first:+.1f}), after the run {rss_after:.1f}")
    print(f"{'source frames':>14} {'processed':>9} {'dropped':>7} {'age p50':>8} {'p95':>7} {'p99':>7} {'RSS MiB':>8}")
    for r in rows:
        print(f"{r['frames']:>14} {r['processed']:>9} {r['dropped']:>7} {r['age_p50_ms'] or 0:>8.1f} {r['age_p95_ms'] or 0:>7.1f} "
              f"{r['age_p99_ms'] or 0:>7.1f} {r['rss_mb']:>8.1f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
