"""ONNX -> TensorRT engine, cached, with a persistent timing cache.

Where things go (``cache_dir`` = config ``engine.cache_dir``, default ``~/.cache/depthstream``)::

    <cache_dir>/trt/<stem>-<path hash>.<fp16|fp32>.engine   the serialised engine
    <cache_dir>/trt/<stem>-<path hash>.<fp16|fp32>.json     its sidecar: what it was built from
    <cache_dir>/trt/timing-<TensorRT version>-<GPU>.cache   TensorRT's timing cache (faster rebuilds)

The sidecar records the cache key's parts: the ONNX's sha256, the TensorRT version, the GPU's name
and compute capability, the precision and every input's (min, opt, max) shape. :func:`rebuild_reason`
compares it with what is wanted now; any difference rebuilds, and the reason is logged
(``rebuilding yolox_nano.fp16.engine: TensorRT 10.0.1 -> 10.3.0``). A build logs its progress
(TensorRT's ``IProgressMonitor``) because it can take minutes.

FP16 on TensorRT 10 and 11, chosen by what the installed module offers (:func:`typing_of`), never by its version
string nor by a crash:

- TensorRT 10 (``BuilderFlag.FP16`` exists): the network is weakly typed and the FP16 builder flag lets TensorRT
  pick FP16 kernels layer by layer.
- TensorRT 11 (no ``BuilderFlag.FP16``: the 10.x -> 11.x migration guide removes every precision flag; every
  network is strongly typed, its precision is the ONNX's own): the ONNX is first converted to an FP16 copy
  (:func:`convert_fp16`, inputs and outputs kept float32) and that copy is built. NVIDIA's guide converts with
  ModelOpt AutoCast; ONNX Runtime's float16 converter (already installed with onnxruntime, needs ``onnx``) does
  the same job for the product's models without another package.

Any failure inside TensorRT becomes one :class:`EngineError` line naming the TensorRT version and the model.

The pure parts (:func:`cache_key`, :func:`rebuild_reason`, :func:`resolve_profile`,
:func:`parse_shapes`, :func:`engine_paths`) run without TensorRT; :func:`ensure_engine` takes the build
function as an argument so its decisions are tested on a CPU machine.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from depthstream.errors import ConfigError, EngineError
from depthstream.hashing import sha256_of

from .backends import INSTALL_TRT, Facts, Gpu, cache_dir_of

log = logging.getLogger(__name__)

Shape = tuple[int, ...]
Profile = dict[str, tuple[Shape, Shape, Shape]]  # input name -> (min, opt, max)

WORKSPACE_BYTES = 2 << 30  # builder scratch memory limit (2 GiB)


# -- pure parts ----------------------------------------------------------------------------------



def _shape_text(shape: Sequence[int]) -> str:
    return "x".join(str(int(d)) for d in shape)


def parse_shape(text: str) -> Shape:
    """``1x3x416x416`` -> (1, 3, 416, 416)."""
    try:
        dims = tuple(int(d) for d in text.strip().lower().split("x"))
    except ValueError:
        raise ConfigError(f"shape {text!r} is not a shape: expected dimensions joined by x, e.g. 1x3x416x416") from None
    if not dims or any(d < 1 for d in dims):
        raise ConfigError(f"shape {text!r} has a dimension < 1: expected positive sizes, e.g. 1x3x416x416")
    return dims


def parse_shapes(items: Sequence[str]) -> Profile:
    """``name:OPT`` or ``name:MIN,OPT,MAX`` (each ``1x3x416x416``) -> {name: (min, opt, max)}."""
    out: Profile = {}
    for item in items:
        name, sep, rest = item.partition(":")
        if not sep or not name or not rest:
            raise ConfigError(f"--shape expects NAME:SHAPE or NAME:MIN,OPT,MAX (e.g. images:1x3x416x416), got {item!r}")
        parts = [parse_shape(p) for p in rest.split(",")]
        if len(parts) == 1:
            parts = parts * 3
        if len(parts) != 3:
            raise ConfigError(f"--shape {item!r}: expected one shape or three (min,opt,max), got {len(parts)}")
        lo, opt, hi = parts
        if not (len(lo) == len(opt) == len(hi)) or any(not (a <= b <= c) for a, b, c in zip(lo, opt, hi)):
            raise ConfigError(f"--shape {item!r}: min <= opt <= max must hold in every dimension, with equal ranks")
        out[name] = (lo, opt, hi)
    return out


def resolve_profile(inputs: Mapping[str, Sequence[int | None]], requested: Mapping[str, Sequence] | None = None) -> Profile:
    """Every input's (min, opt, max) shape for the optimization profile.

    inputs: the ONNX's input shapes (None = dynamic). requested: name -> one shape or (min, opt, max).
    A fixed input gets its own shape; a dynamic one needs a requested shape that fits its fixed dims.
    """
    requested = dict(requested or {})
    unknown = sorted(set(requested) - set(inputs))
    if unknown:
        raise ConfigError(f"shapes given for {unknown}, which are not inputs of the model; its inputs are {sorted(inputs)}")
    out: Profile = {}
    for name, dims in inputs.items():
        dims = tuple(dims)
        if name in requested:
            req = requested[name]
            if req and isinstance(req[0], int):
                req = (tuple(req),) * 3
            lo, opt, hi = (tuple(int(d) for d in s) for s in req)
            for s in (lo, opt, hi):
                if len(s) != len(dims) or any(d is not None and d != v for d, v in zip(dims, s)):
                    shown = "x".join("?" if d is None else str(d) for d in dims)
                    raise ConfigError(f"input '{name}' has shape {shown}; the shape {_shape_text(s)} given for it does not fit")
            out[name] = (lo, opt, hi)
        elif any(d is None for d in dims):
            shown = "x".join("?" if d is None else str(d) for d in dims)
            raise ConfigError(f"input '{name}' has dynamic shape {shown}: give its shape, e.g. "
                              f"--shape {name}:{'x'.join('1' if d is None else str(d) for d in dims)} "
                              f"(or MIN,OPT,MAX for a range)")
        else:
            s = tuple(int(d) for d in dims)
            out[name] = (s, s, s)
    return out


def key_parts(onnx_sha256: str, tensorrt: str, gpu: Gpu, precision: str, profile: Profile) -> dict:
    """What an engine depends on; stored in its sidecar and hashed into :func:`cache_key`."""
    return {
        "onnx_sha256": onnx_sha256,
        "tensorrt": tensorrt,
        "gpu": gpu.name,
        "compute_capability": gpu.compute_capability,
        "precision": precision,
        "shapes": {name: [_shape_text(s) for s in prof] for name, prof in sorted(profile.items())},
    }


def cache_key(parts: Mapping) -> str:
    """A stable hex digest of :func:`key_parts` (order-independent)."""
    blob = json.dumps({k: parts[k] for k in sorted(parts) if k != "key"}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


_LABELS = {
    "onnx_sha256": "ONNX changed",
    "tensorrt": "TensorRT version",
    "gpu": "GPU",
    "compute_capability": "compute capability",
    "precision": "precision",
    "shapes": "input shapes",
}


def rebuild_reason(sidecar: Mapping | None, wanted: Mapping, engine_exists: bool = True) -> str | None:
    """None when the cached engine matches ``wanted`` (:func:`key_parts`), else why it must be rebuilt."""
    if sidecar is None and not engine_exists:
        return "no cached engine"
    if not engine_exists:
        return "the engine file is missing (only its sidecar is there)"
    if sidecar is None:
        return "the engine has no sidecar JSON (unknown origin)"
    if sidecar.get("key") != cache_key(wanted) or any(sidecar.get(k) != v for k, v in wanted.items()):
        changes = []
        for k, v in wanted.items():
            old = sidecar.get(k)
            if old == v:
                continue
            if k == "onnx_sha256":
                changes.append(f"ONNX changed (sha256 {str(old)[:12]}... -> {str(v)[:12]}...)")
            else:
                changes.append(f"{_LABELS.get(k, k)} {old} -> {v}")
        return "; ".join(changes) or "cache key differs"
    return None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-").lower() or "x"


def engine_paths(cache_dir: str | Path | None, onnx_path: str | Path, precision: str) -> tuple[Path, Path]:
    """(engine, sidecar) for a model: one slot per ONNX location and precision."""
    onnx_path = Path(onnx_path).resolve()
    where = hashlib.sha1(str(onnx_path).encode()).hexdigest()[:8]
    folder, name = cache_dir_of(cache_dir) / "trt", f"{onnx_path.stem}-{where}.{precision}"
    return folder / f"{name}.engine", folder / f"{name}.json"


def timing_cache_path(cache_dir: str | Path | None, tensorrt: str, gpu: Gpu) -> Path:
    return cache_dir_of(cache_dir) / "trt" / f"timing-{_slug(tensorrt)}-{_slug(gpu.name)}-sm{_slug(gpu.compute_capability)}.cache"


def read_sidecar(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def onnx_input_shapes(onnx_path: str | Path) -> dict[str, tuple[int | None, ...]]:
    """The ONNX's inputs and their shapes (None = dynamic), read with ONNX Runtime on the CPU."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    try:
        sess = ort.InferenceSession(str(onnx_path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own exception types
        raise EngineError(f"{onnx_path} is not an ONNX model that can be read: {str(exc).strip().splitlines()[0]}") from exc
    return {a.name: tuple(d if isinstance(d, int) and d > 0 else None for d in a.shape) for a in sess.get_inputs()}


# -- the cache flow --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildRequest:
    onnx: Path
    engine: Path
    sidecar: Path
    timing_cache: Path
    precision: str
    profile: Profile
    parts: dict


BuildFn = Callable[[BuildRequest], None]


def ensure_engine(
    onnx_path: str | Path,
    *,
    fp16: bool = True,
    cache_dir: str | Path | None = None,
    shapes: Mapping[str, Sequence] | None = None,
    facts: Facts | None = None,
    build: BuildFn | None = None,
    force: bool = False,
) -> tuple[Path, str | None]:
    """The cached engine for ``onnx_path``, built first when missing or out of date.

    Returns (engine path, the reason it was (re)built or None when the cache was used).
    facts: this machine's (TensorRT version, GPU); build: the function that builds (TensorRT's by
    default). Both are parameters so the decisions are tested without TensorRT.
    """
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise EngineError(f"model file not found: {onnx_path} (expected an .onnx file)")
    if facts is None:
        from .backends import probe

        facts = probe()
    require_tensorrt(facts)
    precision = "fp16" if fp16 else "fp32"
    profile = resolve_profile(onnx_input_shapes(onnx_path), shapes)
    gpu = facts.gpus[0]
    parts = key_parts(sha256_of(onnx_path), str(facts.tensorrt), gpu, precision, profile)
    engine, sidecar = engine_paths(cache_dir, onnx_path, precision)
    reason = "--force" if force else rebuild_reason(read_sidecar(sidecar) if sidecar.exists() else None, parts, engine.exists())
    if reason is None:
        log.debug("using cached engine %s", engine)
        return engine, None
    log.info("building %s engine for %s (%s); this can take minutes", precision.upper(), onnx_path.name, reason)
    engine.parent.mkdir(parents=True, exist_ok=True)
    request = BuildRequest(onnx_path, engine, sidecar, timing_cache_path(cache_dir, str(facts.tensorrt), gpu),
                           precision, profile, parts)
    t0 = time.perf_counter()
    (build or build_with_tensorrt)(request)
    record = {**parts, "key": cache_key(parts), "onnx": str(onnx_path.resolve()), "built_s": round(time.perf_counter() - t0, 1),
              "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    tmp = sidecar.parent / (sidecar.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(sidecar)
    log.info("built %s in %.1f s", engine, record["built_s"])
    return engine, reason


def require_tensorrt(facts: Facts) -> None:
    """EngineError (one line) unless TensorRT, pycuda and a GPU are all here."""
    if facts.tensorrt is None:
        raise EngineError(f"building a TensorRT engine needs TensorRT, which is {facts.tensorrt_note or 'not installed'} here "
                          f"(Python package 'tensorrt'): {INSTALL_TRT}; the ONNX Runtime backends (ort-cpu, ort-cuda) need no build")
    if facts.pycuda is None:
        raise EngineError(f"building a TensorRT engine needs pycuda, which is {facts.pycuda_note or 'not installed'}: {INSTALL_TRT}")
    if not facts.gpus:
        raise EngineError(f"TensorRT {facts.tensorrt} is installed but no NVIDIA GPU was found ({facts.gpu_note}): "
                          f"engines are built on the GPU that runs them; check the driver with nvidia-smi")


# -- TensorRT (needs tensorrt; not run on the CPU-only machine) --------------------------------------

TENSORRT_ERRORS = (RuntimeError, TypeError, ValueError, AttributeError)
"""What TensorRT's Python bindings raise (pybind11 maps its C++ exceptions to these)."""


def typing_of(trt) -> str:
    """``weak`` when this TensorRT still has the FP16 builder flag (TensorRT 10), else ``strong`` (TensorRT 11:
    every network is strongly typed). Reads the enum's member table, so probing touches no missing name."""
    return "weak" if "FP16" in trt.BuilderFlag.__members__ else "strong"


def convert_fp16(onnx_path: Path, out_dir: Path) -> Path:
    """A float16 copy of the model, inputs and outputs kept float32 (``<out_dir>/<stem>.fp16.onnx``): what a
    strongly typed TensorRT builds an FP16 engine from, and what ONNX Runtime CPU/CUDA run as FP16."""
    try:
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16
    except ImportError as exc:
        raise EngineError(f"FP16 from {onnx_path.name} needs an FP16 copy of the ONNX, made with the onnx package, which "
                          f"does not import ({exc}): pip install onnx (in the 'gpu' and 'test' extras)") from exc
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{onnx_path.stem}.fp16.onnx"
    model = convert_float_to_float16(onnx.load(str(onnx_path)), keep_io_types=True)
    onnx.save(model, str(out))
    return out


def _progress_monitor(trt, report: Callable[[str], None]):
    """An ``IProgressMonitor`` that reports phase starts/ends and, at most once a second, step counts."""

    class Progress(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self._lock = threading.Lock()  # TensorRT may call from several threads
            self._steps: dict[str, int] = {}
            self._last = 0.0

        def phase_start(self, phase_name, parent_phase, num_steps):
            with self._lock:
                self._steps[phase_name] = num_steps
                if parent_phase is None:
                    report(f"{phase_name} ({num_steps} steps)")

        def step_complete(self, phase_name, step):
            with self._lock:
                now = time.monotonic()
                if now - self._last >= 1.0:
                    self._last = now
                    report(f"  {phase_name}: {step + 1}/{self._steps.get(phase_name, '?')}")
            return True  # False would cancel the build

        def phase_finish(self, phase_name):
            with self._lock:
                self._steps.pop(phase_name, None)

    return Progress()


def build_with_tensorrt(req: BuildRequest, report: Callable[[str], None] | None = None) -> None:
    """Parse the ONNX, build a serialised engine (FP16 when asked, the way this TensorRT does it) and write it and
    the timing cache. Every TensorRT failure is one EngineError line."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise EngineError(f"building a TensorRT engine needs TensorRT, which does not import ({exc}): {INSTALL_TRT}") from exc

    report = report or (lambda text: log.info("build: %s", text))
    version = getattr(trt, "__version__", "?")
    onnx_path = req.onnx
    try:
        typing = typing_of(trt)
        if req.precision == "fp16" and typing == "strong":
            onnx_path = convert_fp16(req.onnx, req.engine.parent)
            report(f"TensorRT {version} builds strongly typed networks: FP16 from {onnx_path.name}")
        _build(trt, req, onnx_path, fp16_flag=req.precision == "fp16" and typing == "weak", report=report)
    except EngineError:  # already one line (and also a RuntimeError)
        raise
    except TENSORRT_ERRORS as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise EngineError(f"TensorRT {version} failed to build an engine from {req.onnx.name}: {reason}") from exc


def _build(trt, req: BuildRequest, onnx_path: Path, *, fp16_flag: bool, report: Callable[[str], None]) -> None:
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch (TensorRT 10); strongly typed on TensorRT 11 by itself
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineError(f"TensorRT cannot parse {onnx_path.name}: {errors or 'unknown error'}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    if fp16_flag:
        config.set_flag(trt.BuilderFlag.FP16)  # weakly typed (TensorRT 10): TensorRT may pick FP16 kernels per layer
    timing = config.create_timing_cache(req.timing_cache.read_bytes() if req.timing_cache.is_file() else b"")
    config.set_timing_cache(timing, ignore_mismatch=False)
    monitor = _progress_monitor(trt, report)
    config.progress_monitor = monitor
    dynamic = [network.get_input(i) for i in range(network.num_inputs) if any(d < 0 for d in network.get_input(i).shape)]
    if dynamic:
        profile = builder.create_optimization_profile()
        for tensor in dynamic:
            lo, opt, hi = req.profile[tensor.name]
            profile.set_shape(tensor.name, lo, opt, hi)
        config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineError(f"TensorRT could not build an engine for {req.onnx.name} (see the TensorRT messages above)")
    tmp = req.engine.parent / (req.engine.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(serialized)
    tmp.replace(req.engine)
    req.timing_cache.write_bytes(bytes(memoryview(config.get_timing_cache().serialize())))
