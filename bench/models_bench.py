"""Model benchmark: each engine alone, batch 1, per backend, precision and CPU thread count.

Times ``Engine.infer`` on one fixed random input (uniform [0, 1) in the model's input dtype; the cost of
these networks does not depend on the values) with ``time.perf_counter``: ``warmup`` untimed calls, then
``iterations`` timed ones back to back. ``infer`` returns host arrays, so a GPU engine has synchronised its
stream before the clock stops. Throughput = iterations / their total wall time (one stream of batch-1
calls, no overlap). A backend this machine cannot run is a row with status ``skipped`` and the reason; a
model that fails to load is ``failed`` with the engine's one-line message; neither stops the others.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from depthstream.errors import ConfigError, EngineError
from depthstream.store import MODELS_DIR, resolve_model

from .env import machine_busy_s, process_cpu_s, usable_cores
from .stats import summarise

log = logging.getLogger(__name__)

BACKENDS = ("ort-cpu", "ort-cuda", "ort-trt", "trt")
CPU_THREADED = ("ort-cpu",)  # backends whose speed depends on the CPU thread count
FP16_BACKENDS = ("ort-trt", "trt")  # backends that build FP16 engines from an FP32 ONNX

MODELS_TIMING = {
    "clock": "time.perf_counter around Engine.infer, one call at a time, batch 1",
    "input": "one fixed random input in the model's dtype and shape (the cost does not depend on the values)",
    "warm-up": "--warmup untimed calls first (session initialisation, TensorRT engine build or load, caches)",
    "throughput": "timed calls / their total wall time (no two calls overlap)",
    "gpu": "Engine.infer returns host arrays: a GPU engine has synchronised its CUDA stream before the clock stops",
    "percentiles": "linear interpolation between ranks (numpy's default)",
    "cores busy": "this process's CPU seconds / wall seconds while timing (ONNX Runtime's threads included); "
                  "others = what other processes took from the same cores meanwhile",
    "fp16": "FP16 is a build option of the TensorRT backends (trt, ort-trt); ort-cpu and ort-cuda run the ONNX as "
            "exported (FP32), so their fp16 rows are skipped",
}


def default_models() -> list[Path]:
    """The shipped detector and the bundled depth network (FastDepth-224, through the model store), plus the
    benchmarks' U-Net when it has been exported (``out/bench``)."""
    from .pipeline_bench import UNET_DIR, UNET_SIZE

    models = [resolve_model(MODELS_DIR / "yolox_nano.onnx"), resolve_model(MODELS_DIR / "fastdepth_224_nyu.onnx")]
    unet = UNET_DIR / f"unet-{UNET_SIZE[0]}x{UNET_SIZE[1]}-random-init.onnx"
    if unet.is_file():
        models.append(unet)
    return models


def _factory():
    """The engines package's factory and availability check, or None where this checkout lacks them."""
    try:
        from engines.backends import EngineOptions, probe, unavailable_reason
        from engines.factory import create_engine
    except ImportError:
        return None
    return EngineOptions, create_engine, probe, unavailable_reason


def skip_reason(backend: str, precision: str, facts=None, check=None) -> str | None:
    """Why ``backend`` at ``precision`` is not benchmarked here (None: it is)."""
    if backend not in BACKENDS:
        raise ConfigError(f"--backend: unknown backend {backend!r}; expected some of {', '.join(BACKENDS)}")
    if precision not in ("fp32", "fp16"):
        raise ConfigError(f"--precision: unknown precision {precision!r}; expected fp32 and/or fp16")
    if precision == "fp16" and backend not in FP16_BACKENDS:
        return f"{backend} runs the ONNX as exported (FP32); FP16 is a TensorRT build option (trt, ort-trt)"
    if check is None:
        return None if backend == "ort-cpu" else "this checkout has no engine factory for it (engines.backends)"
    return check(backend, facts)


def _feeds(engine) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    feeds = {}
    for name, spec in engine.inputs.items():
        if any(d is None for d in spec.shape[1:]):
            raise EngineError(f"{engine.path.name}: input '{name}' has a dynamic size {spec.describe()}; "
                              f"benchmark a model exported at a fixed size")
        shape = tuple(1 if d is None else d for d in spec.shape)
        kind = np.dtype(spec.dtype).kind
        feeds[name] = (rng.random(shape, dtype=np.float32).astype(spec.dtype) if kind == "f" else
                       rng.integers(0, 256, shape).astype(spec.dtype) if spec.dtype == np.uint8 else np.zeros(shape, spec.dtype))
    return feeds


def time_engine(engine, iterations: int, warmup: int) -> dict:
    """Open ``engine``, time ``infer`` and close it: latency statistics and throughput."""
    with engine:
        feeds = _feeds(engine)
        for _ in range(warmup):
            engine.infer(feeds)
        times = []
        own0, machine0 = process_cpu_s(), machine_busy_s()
        start = time.perf_counter()
        for _ in range(iterations):
            t0 = time.perf_counter()
            engine.infer(feeds)
            times.append((time.perf_counter() - t0) * 1e3)
        wall = time.perf_counter() - start
        own, machine = process_cpu_s() - own0, machine_busy_s()
        others = None if machine is None or machine0 is None else max(0.0, machine - machine0 - own) / wall
        from stream.app import engine_providers

        return {
            "providers": engine_providers(engine),
            "input_shapes": {k: list(v.shape) for k, v in feeds.items()},
            "iterations": iterations,
            "latency_ms": summarise(times).as_dict(),
            "throughput_fps": round(iterations / wall, 2),
            "cpu_cores_busy": round(own / wall, 2),
            "other_processes_cores_busy": None if others is None else round(others, 2),
        }


def _make_engine(path: Path, backend: str, precision: str, threads: int, factory):
    if factory is None:
        from engines.ort import OrtEngine

        return OrtEngine(path, threads=threads)
    EngineOptions, create_engine, _, _ = factory
    return create_engine(path, EngineOptions(backend=backend, fp16=precision == "fp16"), threads=threads)


def bench_models(*, models: Sequence[Path], backends: Sequence[str], precisions: Sequence[str],
                 threads: Sequence[int] | None, iterations: int, warmup: int) -> dict:
    """One row per model x backend x precision (x thread count for CPU backends)."""
    for m in models:
        if not Path(m).is_file():
            raise ConfigError(f"--model: {m} not found (expected an ONNX file)")
    cores = usable_cores()
    thread_counts = sorted(set(threads)) if threads else sorted({1, cores})
    factory = _factory()
    facts = factory[2]() if factory else None
    check = factory[3] if factory else None
    rows = []
    for model in models:
        for backend in backends:
            for precision in precisions:
                base = {"model": Path(model).name, "path": str(model), "backend": backend, "precision": precision}
                reason = skip_reason(backend, precision, facts, check)
                if reason is not None:
                    rows.append({**base, "status": "skipped", "reason": reason})
                    continue
                for n in (thread_counts if backend in CPU_THREADED else [None]):
                    log.info("%s on %s %s%s", base["model"], backend, precision, f", {n} thread(s)" if n else "")
                    row = {**base, "threads": n}
                    try:
                        engine = _make_engine(Path(model), backend, precision, n or 1, factory)
                        row.update(status="ok", **time_engine(engine, iterations, warmup))
                    except EngineError as exc:
                        row.update(status="failed", reason=str(exc))
                    rows.append(row)
    settings = {"models": [str(m) for m in models], "backends": list(backends), "precisions": list(precisions),
                "threads": thread_counts, "iterations": iterations, "warmup": warmup, "batch": 1,
                "engine_factory": factory is not None}
    return {"settings": settings, "rows": rows}
