"""Soak: 10 000 frames from a synthetic live source through the whole product; does memory or frame age
creep up over time?

    python -m bench.soak                       # 10 000 frames at 100 fps, real detector, MP4 + JSONL
    python -m bench.soak --frames 2000 --fps 30 --stage fake --json out/soak.json

Not a unit test (it runs for minutes). What runs:

- **source**: a synthetic camera, ``live`` like a real one: the bundled clip's 150 frames (decoded once,
  768x576) handed out in a loop, paced by the clock at ``--fps``, each stamped at hand-out like a camera
  frame at decode. Faster than the pipeline on purpose, so the ``latest`` policy has to drop frames.
- **stage** ``real`` (default): ``stream.app.run`` as ``python -m stream`` runs it: ground-plane depth,
  the shipped YOLOX-Nano detector through ONNX Runtime on the CPU, the overlay, an H.264 MP4 and a JSONL
  (``--out``, default ``out/soak.*``). ``fake``: the same pipeline threads and queues with stages that
  only sleep ``--fake-ms`` milliseconds, no models and no outputs: what the pipeline itself holds.

It reports the resident memory (RSS, from /proc/self/status) before the run, after the first window,
at the last source frame and after the run (models and outputs closed), and per window of 1000 *source* frames: frames processed and dropped and the frame age
(capture -> written) p50 / p95 / p99 of the frames of that window that were processed.
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
from stream.sources import Source

WINDOW = 1000


def rss_mb() -> float:
    """Resident set size of this process in MiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (not Linux?)")


def clip_frames() -> list[np.ndarray]:
    import av

    with av.open(str(DEMO_CLIP)) as c:
        return [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]


class SyntheticCamera(Source):
    """``total`` frames at ``fps`` from a list of images; RSS is sampled every WINDOW frames."""

    live = True

    def __init__(self, images: list[np.ndarray], total: int, fps: float) -> None:
        super().__init__("synthetic-camera")
        self.images, self.total, self.rate = images, total, fps
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
        if i % WINDOW == 0 or i == self.total:
            self.rss[i] = rss_mb()
        if i >= self.total:
            return None
        due = self._t0 + i / self.rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        return self._frame(self.images[i % len(self.images)], i / self.rate)


def run_real(cam: SyntheticCamera, out: Path) -> list[tuple[int, float]]:
    from stream.app import run

    from stream.depth.select import BUNDLED_PROFILE

    # the synthetic camera hands out the bundled clip's frames: its camera profile is theirs (ground-plane depth)
    cfg = load_config(overrides={"output.mp4": str(out.with_suffix(".mp4")), "output.jsonl": str(out.with_suffix(".jsonl")),
                                 "pipeline.policy": "latest", "camera.profile": str(BUNDLED_PROFILE)})
    run(cfg, source=cam)
    return [(r["index"], r["age_ms"]) for r in map(json.loads, out.with_suffix(".jsonl").read_text().splitlines())]


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


def windows(results: list[tuple[int, float]], total: int, rss: dict[int, float]) -> list[dict]:
    rows = []
    for start in range(0, total, WINDOW):
        ages = [a for i, a in results if start <= i < start + WINDOW]
        n = min(WINDOW, total - start)
        row = {"frames": f"{start}-{start + n - 1}", "processed": len(ages), "dropped": n - len(ages),
               "rss_mb": round(rss.get(start + WINDOW, rss.get(start, float("nan"))), 1)}
        for q in (50, 95, 99):
            row[f"age_p{q}_ms"] = round(float(np.percentile(ages, q)), 1) if ages else None
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=10_000, help="source frames (default 10000)")
    ap.add_argument("--fps", type=float, default=100.0, help="the synthetic camera's rate (default 100)")
    ap.add_argument("--stage", choices=["real", "fake"], default="real", help="real: the whole product; fake: pipeline only")
    ap.add_argument("--fake-ms", type=float, default=5.0, help="fake stages sleep this long (default 5 ms)")
    ap.add_argument("--out", default="out/soak", help="real: where the MP4 and JSONL go (suffixes added; default out/soak)")
    ap.add_argument("--json", help="also write the report as JSON here")
    args = ap.parse_args(argv)
    if args.frames < 1 or args.fps <= 0:
        ap.error("--frames and --fps must be positive")

    images = clip_frames()
    rss_before = rss_mb()
    cam = SyntheticCamera(images, args.frames, args.fps)
    t0 = time.monotonic()
    if args.stage == "real":
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        results = run_real(cam, out)
    else:
        results = run_fake(cam, args.fake_ms)
    wall = time.monotonic() - t0
    rss_after = rss_mb()
    end = cam.rss.get(args.frames, rss_after)  # at the last source frame, models still loaded
    rows = windows(results, args.frames, cam.rss)
    first = cam.rss.get(min(WINDOW, args.frames), rss_before)
    report = {
        "stage": args.stage, "frames": args.frames, "fps": args.fps, "wall_s": round(wall, 1),
        "processed": len(results), "dropped": args.frames - len(results),
        "rss_mb": {"before": round(rss_before, 1), "after_first_window": round(first, 1), "end": round(end, 1),
                   "after_run": round(rss_after, 1)},
        "windows": rows,
    }
    print(f"soak: {args.frames} frames at {args.fps:g} fps, stage {args.stage}, {wall:.0f} s; "
          f"processed {len(results)}, dropped {args.frames - len(results)} (latest policy)")
    print(f"RSS MiB: before {rss_before:.1f}, after the first {WINDOW} frames {first:.1f}, at the last frame {end:.1f} "
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
