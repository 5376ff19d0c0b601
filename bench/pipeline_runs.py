"""One measured run of the pipeline benchmark: the bare model loop or one layout through ``stream.app.run``,
and the figures of its repeats (see :mod:`bench.pipeline_bench` for what is timed and how)."""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Sequence

import cv2
import numpy as np

from depthstream.errors import ConfigError, SourceError
from depthstream.schema.config import Config
from stream.app import build_models, engine_providers, run
from stream.depth.select import select_camera
from stream.sources import Source, open_source

from .env import machine_busy_s, process_cpu_s, thread_cpu_s
from .stats import steady_fps, summarise

# Report names of the stages, in pipeline order -> the keys the pipeline records in timings_ms.
STAGES = (
    ("decode", "decode"),
    ("depth", "depth"),
    ("mask", "mask"),
    ("fill", "fill"),
    ("preprocess", "detect_pre"),
    ("detect_infer", "detect_infer"),
    ("postprocess", "detect_post"),
    ("detect", "detect"),
    ("box_depth", "box_depth"),
    ("overlay", "overlay"),
    ("encode", "encode"),
)
BARE_STAGES = (("decode", "decode"), ("depth", "depth"), ("detect", "detect"),
               ("preprocess", "detect_pre"), ("detect_infer", "detect_infer"), ("postprocess", "detect_post"))


class LoopSource(Source):
    """``total`` frames of ``uri``, re-opened and decoded again from the start whenever it ends.

    ``pace_fps``: hand out frames no faster than this (a camera's clock; the source is then ``live``).
    Indices run 0..total-1 over the loops; ``captured_ns`` is stamped when each frame is handed out, decoded: a
    camera's frame at its tick. (The file source stamps when the packet arrived, and its H.264 decoder holds a
    frame for a few packets: paced, those packets arrived a few ticks before the frame came out -- on the demo
    2-3 ticks, 200-300 ms at 10 fps -- a decoder delay of the file, not of the pipeline.)
    """

    def __init__(self, uri: str, total: int, pace_fps: float | None = None) -> None:
        super().__init__(uri)
        if total < 1:
            raise ConfigError(f"frames must be >= 1, got {total}")
        if pace_fps is not None and not (math.isfinite(pace_fps) and pace_fps > 0):
            raise ConfigError(f"pace must be a positive number of frames per second, got {pace_fps}")
        self.total = total
        self.pace_fps = pace_fps
        self.live = pace_fps is not None
        self.loops = 0
        self.decode_ms: dict[int, float] = {}  # index -> ms spent decoding it (the pacing wait left out)
        self._inner: Source | None = None
        self._t0: float | None = None

    def open(self) -> "LoopSource":
        self._inner = open_source(self.uri).open()
        self.source_id = self._inner.source_id
        return self

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()
            self._inner = None

    @property
    def fps(self):
        return self._inner.fps if self._inner is not None else None

    @property
    def frame_count(self) -> int:
        return self.total

    def read(self):
        if self._index >= self.total:
            return None
        if self._inner is None:
            raise SourceError(f"source {self.source_id} is not open")
        if self.pace_fps is not None:
            now = time.perf_counter()
            if self._t0 is None:
                self._t0 = now
            due = self._t0 + self._index / self.pace_fps
            if due > now:
                time.sleep(due - now)
        t0 = time.perf_counter()
        frame = self._inner.read()
        if frame is None:
            self._inner.close()
            self._inner = open_source(self.uri).open()
            self.loops += 1
            frame = self._inner.read()
            if frame is None:
                raise SourceError(f"{self.source_id} has no frames to benchmark on")
        frame = dataclasses.replace(frame, index=self._index, captured_ns=time.monotonic_ns())
        self.decode_ms[self._index] = (time.perf_counter() - t0) * 1e3
        self._index += 1
        return frame


GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")


def model_device(providers: Sequence[str]) -> str:
    """Where a model ran, from what really ran it (ONNX Runtime's providers as the session reports them, else
    the backend's name): ``cpu``, ``gpu`` or ``server`` (Triton, on whatever the server has)."""
    first = providers[0] if providers else ""
    if first in GPU_PROVIDERS or first == "trt":
        return "gpu"
    if first.startswith("triton"):
        return "server"
    return "cpu"


def stage_devices(providers: dict[str, list[str]], *, network_depth: bool, mp4: bool, preset: str = "") -> dict:
    """Per stage: on which device it ran and what ran it. Decode, the overlay, the per-box depth and the encoder
    run on the CPU in this product (FFmpeg through PyAV, OpenCV, numpy, libx264); the models where their engine
    says."""
    out = {"decode": {"device": "cpu", "ran_on": "FFmpeg software decoder (PyAV)"}}
    depth = providers.get("depth")
    if network_depth and depth:
        out["depth"] = {"device": model_device(depth), "ran_on": ", ".join(depth)}
    else:
        out["depth"] = {"device": "cpu", "ran_on": "numpy (ground plane: one map per frame size)"}
    detect = providers.get("detect", [])
    out["detect"] = {"device": model_device(detect), "ran_on": ", ".join(detect)}
    for stage in ("mask", "fill", "preprocess", "postprocess", "box_depth", "overlay"):
        out[stage] = {"device": "cpu", "ran_on": "numpy / OpenCV"}
    if mp4:
        out["encode"] = {"device": "cpu", "ran_on": f"libx264 (PyAV){', preset ' + preset if preset else ''}"}
    return out


@dataclass
class _Clock:
    """Result timestamps (every frame: ``perf_counter``, ~50 ns) and CPU times (twice a run: when the last
    warm-up result and the last result are written, or after ``run`` returns when the live policy
    dropped frames and the last result came earlier than ``total``).

    CPU times are read from /proc (file reads release the GIL); ``resource.getrusage`` does not release
    it and, with busy model threads, can take milliseconds, which would stall every Python thread of the
    pipeline being measured. So no CPU clock is read per frame.
    """

    warmup: int
    total: int
    stamps: list[float] = field(default_factory=list)
    cpu_start: tuple[float, float, float | None] | None = None  # (perf_counter, own CPU s, machine CPU s)
    cpu_end: tuple[float, float, float | None] | None = None
    threads_start: dict[str, float] = field(default_factory=dict)  # thread name -> CPU s (bench.env.thread_cpu_s)
    threads_end: dict[str, float] = field(default_factory=dict)
    threads_cpu: tuple[float, float] = (0.0, 0.0)  # this process's CPU s at the two thread samples

    @property
    def threads_at(self) -> int:
        """The result after which threads are sampled the second time: before the last results, whose workers
        may have ended already (they stop once the end of the source has passed them)."""
        return max(max(1, self.warmup) + 1, self.total - min(20, (self.total - self.warmup) // 4))

    def tick(self, done: int, total: int | None = None) -> None:
        self.stamps.append(time.perf_counter())
        if done == max(1, self.warmup):
            self.cpu_start = _cpu_sample()
            self.threads_start, self.threads_cpu = thread_cpu_s(), (self.cpu_start[1], 0.0)
        if done == self.threads_at:
            self.threads_end = thread_cpu_s()
            self.threads_cpu = (self.threads_cpu[0], process_cpu_s())
        if done == self.total:
            self.cpu_end = _cpu_sample()

    def threads_ms_per_frame(self) -> dict[str, float]:
        """CPU ms per frame of each thread between its two samples (:attr:`threads_at`), busiest first; ``ended or
        unnamed``: the process's CPU time no thread alive at the second sample accounts for (threads that ended
        before it)."""
        frames = self.threads_at - max(1, self.warmup)
        if not (self.threads_start and self.threads_end) or frames < 1:
            return {}
        per = {name: 1e3 * (cpu - self.threads_start.get(name, 0.0)) / frames
               for name, cpu in self.threads_end.items()}
        total = 1e3 * (self.threads_cpu[1] - self.threads_cpu[0]) / frames
        rest = total - sum(per.values())
        out = {name: round(ms, 2) for name, ms in sorted(per.items(), key=lambda kv: -kv[1]) if ms >= 0.05}
        if rest >= 0.05:
            out["ended or unnamed"] = round(rest, 2)
        return out

    def window(self) -> tuple[float, float, float | None]:
        """(wall s, this process's CPU s, other processes' CPU s) between the two CPU samples (other
        processes: None where the machine's CPU time cannot be read)."""
        if self.cpu_start is None:
            raise SourceError(f"no result after the {self.warmup} warm-up frames")
        end = self.cpu_end or _cpu_sample()
        wall, own = end[0] - self.cpu_start[0], end[1] - self.cpu_start[1]
        if end[2] is None or self.cpu_start[2] is None:
            return wall, own, None
        return wall, own, max(0.0, end[2] - self.cpu_start[2] - own)


def _cpu_sample() -> tuple[float, float, float | None]:
    return time.perf_counter(), process_cpu_s(), machine_busy_s()


@dataclass
class RunResult:
    """One measured run: its scalar figures and the per-frame samples after the warm-up."""

    info: dict
    fps: float
    cores_busy: float
    others_busy: float | None  # cores other processes kept busy meanwhile (noise)
    stages: dict[str, list[float]]  # report stage name -> ms per measured frame
    series: dict[str, list[float]] = field(default_factory=dict)  # latency_ms / frame_age_ms
    dropped: int = 0


def _per_wall(seconds: float | None, wall: float) -> float | None:
    return None if seconds is None else seconds / wall


def _stage_samples(timings: dict[str, list[float]], warmup: int, names=STAGES) -> dict[str, list[float]]:
    return {report: timings[key][warmup:] for report, key in names if timings.get(key, [])[warmup:]}


def finalise(runs: Sequence[RunResult]) -> dict:
    """Repeats of one run -> its report: FPS and cores busy are the median over the repeats (each
    repeat's FPS kept in ``fps_repeats``); stage, latency and age percentiles are taken over the measured
    frames of every repeat together; drops are summed."""
    if not runs:
        raise ValueError("no runs to report")
    out = dict(runs[-1].info)
    out["repeats"] = len(runs)
    out["frames"] = sum(len(next(iter(r.stages.values()), [])) for r in runs)
    out["fps"] = round(float(np.median([r.fps for r in runs])), 2)
    if len(runs) > 1:
        out["fps_repeats"] = [round(r.fps, 2) for r in runs]
    out["cpu_cores_busy"] = round(float(np.median([r.cores_busy for r in runs])), 2)
    others = [r.others_busy for r in runs if r.others_busy is not None]
    out["other_processes_cores_busy"] = round(max(others), 2) if others else None
    out["dropped"] = sum(r.dropped for r in runs)
    out["stages"] = {name: summarise([x for r in runs for x in r.stages.get(name, [])]).as_dict()
                     for name in runs[-1].stages}
    for key in runs[-1].series:
        out[key] = summarise([x for r in runs for x in r.series.get(key, [])]).as_dict()
    return out


def _dropped_after_warmup(indices: Sequence[int], warmup: int) -> int:
    """Frames the source produced after the warm-up results that never came out (index gaps)."""
    kept = indices[max(1, warmup) - 1:]
    if len(kept) < 2:
        return 0
    return (kept[-1] - kept[0]) - (len(kept) - 1)


def check_counts(frames: int, warmup: int) -> None:
    if frames < 2:
        raise ConfigError(f"--frames must be >= 2 (frames measured after the warm-up), got {frames}")
    if warmup < 0:
        raise ConfigError(f"--warmup must be >= 0 frames, got {warmup}")


def run_bare(cfg: Config, uri: str, frames: int, warmup: int) -> RunResult:
    """decode -> depth -> detect in one thread, nothing else (the baseline of the overhead ratio)."""
    check_counts(frames, warmup)
    cv2.setNumThreads(1)  # as stream.app.run does
    threads, depth, detector = build_models(cfg, select_camera(cfg, uri))
    clock = _Clock(warmup, warmup + frames)
    timings: dict[str, list[float]] = {k: [] for _, k in BARE_STAGES}
    with LoopSource(uri, warmup + frames) as src, detector:
        depth.open()
        try:
            done = 0
            while True:
                t0 = time.perf_counter()
                frame = src.read()
                if frame is None:
                    break
                t1 = time.perf_counter()
                depth(frame)
                t2 = time.perf_counter()
                _, sub = detector(frame.image)
                t3 = time.perf_counter()
                for key, ms in (("decode", t1 - t0), ("depth", t2 - t1), ("detect", t3 - t2)):
                    timings[key].append(ms * 1e3)
                for key, ms in sub.items():
                    timings[key].append(ms)
                done += 1
                clock.tick(done)
            providers = {"detect": engine_providers(detector.engine)}
            if getattr(depth, "engine", None) is not None:
                providers["depth"] = engine_providers(depth.engine)
        finally:
            depth.close()
    wall, cpu, others = clock.window()
    info = {"mode": "bare", "threads": dataclasses.asdict(threads), "providers": providers,
            "devices": stage_devices(providers, network_depth="depth" in providers, mp4=False)}
    return RunResult(info, steady_fps(clock.stamps, warmup), cpu / wall, _per_wall(others, wall),
                     _stage_samples(timings, warmup, BARE_STAGES))


def run_layout(cfg: Config, layout: str, uri: str, frames: int, warmup: int, *,
               pace_fps: float | None = None, mp4: str | None = None) -> RunResult:
    """One run of ``stream.app.run`` in ``layout``: throughput (``pace_fps`` None) or live (paced)."""
    check_counts(frames, warmup)
    cfg = dataclasses.replace(
        cfg,
        pipeline=dataclasses.replace(cfg.pipeline, layout=layout, policy="auto"),
        source=dataclasses.replace(cfg.source, max_frames=0),
        output=dataclasses.replace(cfg.output, mp4=mp4, jsonl=None, show=False),
    )
    clock = _Clock(warmup, warmup + frames)
    src = LoopSource(uri, warmup + frames, pace_fps)
    frames_seen = _PerFrame()
    summary = run(cfg, source=src, on_frame=clock.tick, on_result=frames_seen)
    if summary.frames <= warmup + 1:
        raise SourceError(f"{layout}: only {summary.frames} results for a warm-up of {warmup} frames")
    wall, cpu, others = clock.window()
    info = {
        "mode": "live" if pace_fps else "throughput",
        "threads_cpu_ms_per_frame": clock.threads_ms_per_frame(),
        "layout": layout,
        "policy": summary.policy,
        "source_loops": src.loops,
        "threads": dataclasses.asdict(summary.threads) if summary.threads else None,
        "providers": summary.providers,
        "devices": stage_devices(summary.providers, network_depth="depth" in summary.providers, mp4=mp4 is not None,
                                 preset=cfg.output.preset),
    }
    rate = summary.depth_rate
    if rate is not None:
        info["depth_rate"] = {"setting": rate.describe(), "runs": rate.runs, "reused": rate.reused,
                              "frames_at": {str(n): k for n, k in sorted(rate.frames_at.items())}}
    if pace_fps:
        info["pace_fps"] = round(pace_fps, 2)
    series = {"latency_ms" if pace_fps else "frame_age_ms": frames_seen.ages_ms[warmup:]}
    stages = _stage_samples(frames_seen.timings, warmup)
    # The pipeline's decode clock runs around source.read(), which for a paced source also waits for the
    # next tick: report the source's own decode time instead.
    stages["decode"] = [src.decode_ms[i] for i in frames_seen.indices[warmup:]]
    return RunResult(info, steady_fps(clock.stamps, warmup), cpu / wall, _per_wall(others, wall), stages, series,
                     _dropped_after_warmup(frames_seen.indices, warmup))


class _PerFrame:
    """``run(on_result=...)``: every frame's numbers, which the run's summary keeps only as quantile sketches."""

    def __init__(self) -> None:
        self.ages_ms: list[float] = []
        self.indices: list[int] = []  # frame index of each result (gaps = dropped frames)
        self.timings: dict[str, list[float]] = {}

    def __call__(self, res, age_ms: float) -> None:
        self.ages_ms.append(age_ms)
        self.indices.append(res.frame.index)
        for stage, ms in res.timings_ms.items():
            self.timings.setdefault(stage, []).append(ms)
