"""Pipeline benchmark: each layout against a bare model loop, on the same source, models and threads.

What is timed, exactly
----------------------
Workloads, each with the detector (YOLOX-Nano by default): the bundled depth network FastDepth-224 (the depth of
every source without a camera profile: the product's learned workload; ``--depth-model CARD`` for another), then
the ground plane (the cheap one: a cached map per frame size). Per workload (a depth source) three kinds of run, each over
``warmup + frames`` frames of the source, looped when it is shorter (the file is re-opened and decoded
again, so decode stays a real cost); the first ``warmup`` results of every run are left out of every
figure.

- **bare**: one thread, ``decode -> depth -> detect -> nothing else``, with the models, thread counts
  and OpenCV settings that ``stream.app.run`` uses (both build them with ``stream.app.build_models``).
- **throughput** (per layout): ``stream.app.run`` as the CLI runs it, file source as fast as it decodes
  (``block`` policy: every frame processed), overlay drawn, no output written. FPS = results after the
  warm-up / time from the last warm-up result to the last result. *Frame age* here is decode -> result
  drawn and includes the time a frame waits in the bounded queues behind a source faster than the
  pipeline (queue_size frames per queue).
- **live** (per layout): the same source paced like a camera at ``pace`` frames per second (``latest``
  policy: old frames dropped and counted), MP4 written. *End-to-end latency* = decode -> frame handed to
  the MP4's encoder thread (:class:`stream.pipeline.WriterThread`, which encodes it beside the next frames); at a
  pace below capacity it holds no backlog, so it is the latency a camera user sees.

Per-stage milliseconds are the ``timings_ms`` the pipeline records for every frame (``time.perf_counter``
around each stage). ``detect`` is the detector's whole call; ``preprocess`` / ``detect_infer`` /
``postprocess`` are its three parts (letterbox; the engine; decode + NMS); a depth network's own
pre/post-processing is inside ``depth``.

GPU engines: every backend's ``Engine.infer`` returns host numpy arrays, so it has synchronised its CUDA
stream (TensorRT: ``stream.synchronize()`` after the device-to-host copies; ONNX Runtime's ``run``
returns only when its outputs are on the host) before the stage's clock stops: a stage's time includes
its GPU work, never only the launch. Not run on a GPU here.

CPU use: process CPU seconds (/proc/self/stat: every thread, FFmpeg's and ONNX Runtime's included) over
the measured window / its wall time = the cores kept busy on average. ``fps_at_full_cores`` = fps x
cores / cores busy: the rate the same CPU work per frame would give if every core were busy (the limit
the cores allow). The machine's CPU time (/proc/stat) minus ours = what other processes took from the
same cores meanwhile, reported per run so that a disturbed figure is visible as such.

What the cores allow and the targets, as ratios of this run's figures: :mod:`bench.pipeline_targets`.

Repeats (``--repeat``) are interleaved: each round runs the bare loop and every layout once, so slow
phases of a busy machine fall on all of them alike.
"""


from __future__ import annotations

import dataclasses
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from depthstream.errors import ConfigError, StreamError
from depthstream.schema.card import load_card
from depthstream.schema.config import BUNDLED_DEPTH_CARD, Config, load_config
from stream.app import build_models
from stream.depth.select import select_camera
from stream.depth import OnnxDepth
from depthstream.store import PROJECT_ROOT

from .env import usable_cores
from .pipeline_runs import RunResult, check_counts, finalise, run_bare, run_layout
from .pipeline_targets import limits, targets
from .stats import ratio

log = logging.getLogger(__name__)

PIPELINE_TIMING = {
    "clock": "time.perf_counter around each stage, in the thread that runs it; latency and frame age from the "
             "time.monotonic_ns stamp taken right after a frame is decoded",
    "warm-up": "the first --warmup results of every run are left out of every figure",
    "percentiles": "linear interpolation between ranks (numpy's default); repeats: percentiles over the frames "
                   "of every repeat together, FPS the median of the repeats",
    "bare loop": "one thread: decode -> depth -> detect, nothing else; the same models, thread counts and OpenCV "
                 "settings as the pipeline (both built by stream.app.build_models)",
    "throughput runs": "stream.app.run on the file looped, block policy (every frame processed), overlay drawn, "
                       "nothing written; FPS = frames after the warm-up / time from the last warm-up result to the "
                       "last result; frame age = decode -> drawn, including the wait in the bounded queues",
    "live runs": "the same, the source paced like a camera (latest policy: old frames dropped and counted), MP4 "
                 "written; end-to-end latency = decode -> handed to the MP4's encoder thread",
    "stages": "decode is the source's own decode time (a live run's wait for its next tick left out); "
              "preprocess, detect_infer and postprocess are the detector's letterbox, engine call and decode + "
              "NMS (detect is their sum); a depth network's own pre/post-processing is inside depth; fill is the "
              "serial layout's blanking outside the band",
    "gpu": "Engine.infer returns host arrays, so a GPU engine has synchronised its CUDA stream before a stage's "
           "clock stops (TensorRT: stream.synchronize() after the copies back; ONNX Runtime: run() returns "
           "when outputs are on the host); not run on a GPU here",
    "cores busy": "process CPU seconds (every thread, from /proc, read when the last warm-up result and the last "
                  "result are written) / wall seconds between the two; fps_at_full_cores "
                  "= FPS x cores / cores busy, the rate the same CPU work per frame allows",
    "other processes": "other_processes_cores_busy = the machine's CPU seconds (/proc/stat) minus this process's, "
                       "per wall second, in the noisiest repeat: what other work took from the same cores",
    "targets": "ratios of figures of this one run (bench/pipeline_targets.py): slower layout FPS / bare FPS >= 0.95; "
               "parallel / serial live latency p50 <= 0.80 at parallel FPS >= serial FPS; FPS / FPS the cores allow "
               ">= 0.90; live frame age p99 / per-frame service time (the p50 stage times on the layout's path) <= 2",
    "devices": "per stage, the device it ran on and what ran it: the models' providers as ONNX Runtime reports them "
               "after the session was created (or the backend), the rest as this product runs it",
}


@dataclass(frozen=True)
class Workload:
    """A depth source to bench with: ``ground-plane`` or a model card, and what it stands for."""

    name: str
    depth_source: str
    note: str = ""
    untrained: bool = False  # a network with random weights, there for its cost only


GROUND_PLANE = Workload("ground-plane", "ground-plane", "cheap geometric depth: one cached map per frame size")


def network_workload(card: str | Path = BUNDLED_DEPTH_CARD) -> Workload:
    """A depth network given by its model card (default: the bundled FastDepth-224, the depth of every source
    without a camera profile), with the detector: the product's learned workload. ConfigError when the card
    or its model (through the model store) is missing."""
    path = Path(card)
    if not path.is_file():
        raise ConfigError(f"depth model card {card} not found (expected a model card .yaml such as "
                          f"models/fastdepth_224_nyu.yaml)")
    loaded = load_card(path)
    bundled = path.resolve() == Path(BUNDLED_DEPTH_CARD).resolve()
    note = (f"the bundled depth network ({loaded.name}, {loaded.size[0]}x{loaded.size[1]}) with the detector: the "
            f"product's default learned workload" if bundled else f"depth model card {path}")
    return Workload(loaded.name, str(path), note)


# The seed reports' U-Net at an input size whose cost on one CPU thread is close to YOLOX-Nano's (the
# thread plan gives each model one of two cores); measured with ``python -m bench models``.
UNET_SIZE = (48, 64)
UNET_DIR = PROJECT_ROOT / "out" / "bench"


def unet_workload(size: tuple[int, int] = UNET_SIZE) -> Workload:
    """The seed reports' depth U-Net with untrained weights, exported once by the export package
    (``python -m export depth --model unet --random-init``) to ``out/bench/`` and reused."""
    h, w = size
    name = f"unet-{h}x{w}"
    onnx = UNET_DIR / f"{name}-random-init.onnx"
    card = onnx.with_suffix(".yaml")
    if not card.is_file():
        try:
            from export.depth import export_depth
        except ImportError as exc:
            raise ConfigError(f"the U-Net workload needs the export package and torch ({exc}): "
                              f"pip install -e '.[export]', or bench with --depth ground-plane") from exc
        log.info("exporting the untrained U-Net at %dx%d to %s", h, w, onnx)
        export_depth("unet", random_init=True, output=onnx, size=size)
    return Workload(name, str(card), f"the seed reports' depth U-Net, untrained, input {h}x{w}", untrained=True)


def default_workloads(depth_model: str | None = None) -> tuple[list[Workload], list[dict[str, str]]]:
    """The depth network (``depth_model``, default the bundled FastDepth-224) with the detector, then the ground
    plane; (workloads, skipped with the reason). A network whose model cannot be found here is skipped."""
    try:
        return [network_workload(depth_model or BUNDLED_DEPTH_CARD), GROUND_PLANE], []
    except StreamError as exc:
        if depth_model is not None:
            raise
        log.warning("depth network workload skipped: %s", exc)
        return [GROUND_PLANE], [{"workload": Path(BUNDLED_DEPTH_CARD).stem, "reason": str(exc)}]


def workloads_from(sources: Sequence[str]) -> list[Workload]:
    """``--depth`` items -> workloads: ``ground-plane``, ``unet`` (the seed reports' U-Net, untrained,
    exported for the bench) or a depth model card."""
    out = []
    for src in sources:
        if src == "ground-plane":
            out.append(GROUND_PLANE)
        elif src == "unet":
            out.append(unet_workload())
        else:
            path = Path(src)
            if not path.is_file():
                raise ConfigError(f"--depth: {src} is neither ground-plane, unet nor a depth model card that exists")
            out.append(network_workload(path))
    return out


def bench_workload(cfg: Config, workload: Workload, uri: str, layouts: Sequence[str], frames: int, warmup: int,
                   pace: float | None, repeat: int, mp4_dir: Path) -> dict:
    """Bare loop, then throughput and live runs of every layout (interleaved over ``repeat`` rounds)."""
    cfg = dataclasses.replace(cfg, depth=dataclasses.replace(cfg.depth, source=workload.depth_source))
    bare_runs: list[RunResult] = []
    tp_runs: dict[str, list[RunResult]] = {name: [] for name in layouts}
    for _ in range(repeat):
        log.info("[%s] bare loop", workload.name)
        bare_runs.append(run_bare(cfg, uri, frames, warmup))
        for name in layouts:
            log.info("[%s] %s, throughput", workload.name, name)
            tp_runs[name].append(run_layout(cfg, name, uri, frames, warmup))
    bare = finalise(bare_runs)
    throughput = {name: finalise(runs) for name, runs in tp_runs.items()}
    pace_fps = pace if pace else round(0.5 * min(r["fps"] for r in throughput.values()), 1)
    live_runs: dict[str, list[RunResult]] = {name: [] for name in layouts}
    for i in range(repeat):
        for name in layouts:
            log.info("[%s] %s, live at %.1f fps", workload.name, name, pace_fps)
            mp4 = str(mp4_dir / f"{workload.name}-{name}-{i}.mp4")
            live_runs[name].append(run_layout(cfg, name, uri, frames, warmup, pace_fps=pace_fps, mp4=mp4))
    results = {name: {"throughput": throughput[name], "live": finalise(live_runs[name])} for name in layouts}
    ratios: dict[str, object] = {
        "overhead": {name: _round(ratio(results[name]["throughput"]["fps"], bare["fps"])) for name in layouts},
    }
    if "serial" in results and "parallel" in results:
        s, p = results["serial"], results["parallel"]
        ratios["parallel_over_serial"] = {
            "fps": _round(ratio(p["throughput"]["fps"], s["throughput"]["fps"])),
            "latency_p50": _round(ratio(p["live"]["latency_ms"]["p50"], s["live"]["latency_ms"]["p50"])),
            "latency_p95": _round(ratio(p["live"]["latency_ms"]["p95"], s["live"]["latency_ms"]["p95"])),
        }
    lim = limits(bare, results, usable_cores())
    depth_info: dict[str, object] = {"source": workload.depth_source, "note": workload.note}
    _, depth, _ = build_models(cfg, select_camera(cfg, uri))
    depth = getattr(depth, "network", depth)  # a network the size priors may rescale (stream.depth.scaled)
    if isinstance(depth, OnnxDepth):
        depth_info.update(model=str(depth.card.model), input_size=list(depth.card.size), kind=depth.card.kind)
    return {
        "name": workload.name,
        "depth": depth_info,
        "pace_fps": pace_fps,
        "bare": bare,
        "layouts": results,
        "ratios": ratios,
        "limits": lim,
        "targets": targets(bare, results, lim),
    }


def _round(x: float | None, digits: int = 3) -> float | None:
    return None if x is None else round(x, digits)


def bench_pipeline(*, source: str, layouts: Sequence[str], frames: int, warmup: int, workloads: Sequence[Workload],
                   pace: float | None, repeat: int, config: str | None, sets: Sequence[str],
                   closer_than: float | None, skipped: Sequence[dict[str, str]] = ()) -> dict:
    """Every workload's runs; the ``results`` block of the pipeline report."""
    check_counts(frames, warmup)
    if repeat < 1:
        raise ConfigError(f"--repeat must be >= 1, got {repeat}")
    for name in layouts:
        if name not in ("serial", "parallel"):
            raise ConfigError(f"--layouts: unknown layout {name!r}; expected serial and/or parallel")
    cfg = load_config(config, list(sets), {"source.uri": source, "band.closer_than": closer_than})
    out = []
    with tempfile.TemporaryDirectory(prefix="bench-mp4-") as tmp:
        for w in workloads:
            out.append(bench_workload(cfg, w, cfg.source.uri, layouts, frames, warmup, pace, repeat, Path(tmp)))
    settings = {
        "source": source, "layouts": list(layouts), "frames": frames, "warmup": warmup, "repeat": repeat,
        "band": {"closer_than": closer_than}, "queue_size": cfg.pipeline.queue_size,
        "pipeline_threads": cfg.pipeline.threads, "mask_fill": cfg.mask.fill,
        "mp4": {"crf": cfg.output.crf, "preset": cfg.output.preset},
        "sets": list(sets), "config": config, "skipped": list(skipped),
    }
    return {"settings": settings, "workloads": out}
