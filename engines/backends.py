"""Which backend runs the models: the facts of this machine and the choice for ``auto``
(:func:`engines.factory.create_engine` builds the engine for the choice).

Backends:

- ``ort-cpu``  ONNX Runtime, CPUExecutionProvider (every machine).
- ``ort-cuda`` ONNX Runtime, CUDAExecutionProvider (needs ``onnxruntime-gpu`` >= 1.27: CUDA 13, cuDNN 9).
- ``ort-trt``  ONNX Runtime, TensorrtExecutionProvider with FP16 and its engine cache (needs
  ``onnxruntime-gpu`` and TensorRT 10 libraries, which its provider is built against); CUDA then CPU take the
  nodes TensorRT cannot.
- ``trt``      TensorRT itself (``tensorrt`` + ``pycuda``): an engine built from the ONNX once, cached.
- ``auto``     ``trt`` when TensorRT and pycuda import and a GPU is present, else ``ort-cuda`` when this
  onnxruntime has CUDAExecutionProvider, else ``ort-cpu``.
- ``triton://HOST:PORT``  a Triton Inference Server over gRPC (:mod:`engines.triton`; ``tritonclient``).

An explicit request that this machine cannot honour is an :class:`EngineError` with one line saying
what is missing and how to fix it; it never runs silently on another backend. ``auto`` only picks what
is there, and when a provider still fails to load at session time it falls back with a logged warning.

The decision functions (:func:`choose_backend`) are pure: they take :class:`Facts`, which
:func:`probe` gathers (lazily importing tensorrt / pycuda, asking nvidia-smi) once per process.
"""

from __future__ import annotations

import functools
import importlib
import logging
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from depthstream.errors import EngineError
from depthstream.store import cache_root

from .triton import is_triton, parse_triton_url

log = logging.getLogger(__name__)

BACKENDS = ("auto", "ort-cpu", "ort-cuda", "ort-trt", "trt")

# The execution provider each ONNX Runtime backend asks for first.
ORT_PROVIDER = {
    "ort-cpu": "CPUExecutionProvider",
    "ort-cuda": "CUDAExecutionProvider",
    "ort-trt": "TensorrtExecutionProvider",
}

INSTALL_TRT = "pip install -e '.[gpu]' on a machine with an NVIDIA GPU (on Jetson, TensorRT comes with JetPack)"
ORT_GPU_SWAP = ("pip uninstall -y onnxruntime && pip install 'onnxruntime-gpu[cuda,cudnn]>=1.27,<1.32' (replaces the "
                "CPU wheel; CUDA 13 and cuDNN 9 come with it, NVIDIA driver 580 or newer)")
"""ONNX Runtime's GPU wheel replaces the CPU one (both install the same 'onnxruntime' module: never both)."""


def default_cache_dir() -> Path:
    """The product's cache (``$DEPTHSTREAM_CACHE``, ``$XDG_CACHE_HOME/depthstream`` or ``~/.cache/depthstream``):
    built engines and timing caches go to its ``trt/``, the model store's files to its ``models/``."""
    return cache_root()


def cache_dir_of(cache_dir: str | Path | None) -> Path:
    return Path(cache_dir).expanduser() if cache_dir else default_cache_dir()


@dataclass(frozen=True)
class EngineOptions:
    """How models are run; one value for the whole pipeline (config section ``engine``).

    backend: one of :data:`BACKENDS`. fp16: TensorRT backends (``trt``, ``ort-trt``) build FP16
    engines; ``ort-cpu`` / ``ort-cuda`` run the ONNX as it is. cache_dir: built engines and timing
    caches (None = :func:`default_cache_dir`). fallback: a provider that fails to load at session time
    falls back with a warning instead of an error (what ``auto`` does; explicit requests never do).
    """

    backend: str = "auto"
    fp16: bool = True
    cache_dir: str | None = None
    fallback: bool = False
    pool: Any = field(default=None, compare=False, repr=False)  # an engines.shared.EnginePool: one engine per model for every pipeline

    def __post_init__(self) -> None:
        if is_triton(self.backend):
            parse_triton_url(self.backend)  # a bad URL is one ConfigError line here, before anything loads
        elif self.backend not in BACKENDS:
            raise EngineError(f"unknown backend '{self.backend}': expected one of {', '.join(BACKENDS)} or triton://HOST:PORT")


@dataclass(frozen=True)
class Gpu:
    name: str
    compute_capability: str  # "8.6"
    memory_mib: int | None = None


@dataclass(frozen=True)
class Facts:
    """What this machine offers for inference (see :func:`probe`)."""

    ort_version: str = ""
    ort_providers: tuple[str, ...] = ()
    tensorrt: str | None = None  # TensorRT version, None when it does not import
    tensorrt_note: str = ""  # why not
    pycuda: str | None = None  # pycuda version, None when it does not import
    pycuda_note: str = ""
    gpus: tuple[Gpu, ...] = ()
    gpu_note: str = ""  # how the GPUs were found, or why none

    @property
    def trt_usable(self) -> bool:
        return bool(self.tensorrt and self.pycuda and self.gpus)


@dataclass(frozen=True)
class Choice:
    """The backend that will run, and why (``auto``) or that it was asked for."""

    backend: str
    requested: str
    reason: str = field(default="")

    @property
    def auto(self) -> bool:
        return self.requested == "auto"

    def describe(self) -> str:
        if self.auto:
            return f"auto chose {self.backend} ({self.reason})"
        return f"{self.backend} (asked for)"

    def describe_running(self, running: str) -> str:
        """What runs, after the engine opened: ``running`` differs when ``auto``'s pick fell back."""
        if running != self.backend:
            return f"{running} (auto chose {self.backend}, which did not load: {running} runs instead)"
        return f"{running} (auto: {self.reason})" if self.auto else f"{running} (asked for)"


# -- facts -------------------------------------------------------------------------------------


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _import_version(module: str) -> tuple[str | None, str]:
    """(version, note): the module's version when it imports, else None and why."""
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        if getattr(exc, "name", None) == module.split(".")[0]:
            return None, "not installed"
        return None, f"installed but does not import: {_first_line(exc)}"
    except OSError as exc:  # a wheel whose shared libraries are missing
        return None, f"installed but does not load: {_first_line(exc)}"
    return str(getattr(mod, "__version__", getattr(mod, "VERSION_TEXT", "?"))), ""


def _gpus_from_pycuda() -> tuple[tuple[Gpu, ...], str]:
    import pycuda.driver as cuda

    try:
        cuda.init()
        gpus = []
        for i in range(cuda.Device.count()):
            dev = cuda.Device(i)
            major, minor = dev.compute_capability()
            gpus.append(Gpu(dev.name(), f"{major}.{minor}", dev.total_memory() // (1 << 20)))
    except cuda.Error as exc:
        return (), f"CUDA driver: {_first_line(exc)}"
    return tuple(gpus), "CUDA driver (pycuda)"


def parse_nvidia_smi(text: str) -> tuple[Gpu, ...]:
    """``nvidia-smi --query-gpu=name,compute_cap,memory.total --format=csv,noheader,nounits`` -> GPUs."""
    gpus = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 2 and parts[0]:
            mem = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else None
            gpus.append(Gpu(parts[0], parts[1], mem))
    return tuple(gpus)


def _gpus_from_nvidia_smi() -> tuple[tuple[Gpu, ...], str]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return (), "no nvidia-smi on PATH and no pycuda"
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,compute_cap,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=10, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return (), f"nvidia-smi failed: {_first_line(exc)}"
    if out.returncode != 0:
        said = (out.stderr or out.stdout).strip()
        return (), f"nvidia-smi failed: {said.splitlines()[0] if said else f'exit code {out.returncode}'}"
    gpus = parse_nvidia_smi(out.stdout)
    return gpus, "nvidia-smi" if gpus else "nvidia-smi lists no GPU"


def probe_gpus(use_pycuda: bool) -> tuple[tuple[Gpu, ...], str]:
    if use_pycuda:
        gpus, note = _gpus_from_pycuda()
        if gpus:
            return gpus, note
    return _gpus_from_nvidia_smi()


@functools.lru_cache(maxsize=1)
def probe() -> Facts:
    """This machine's facts, gathered once per process (imports tensorrt / pycuda when present)."""
    import onnxruntime as ort

    trt_version, trt_note = _import_version("tensorrt")
    pycuda_version, pycuda_note = _import_version("pycuda.driver")
    if pycuda_version is not None:
        import pycuda

        pycuda_version = str(getattr(pycuda, "VERSION_TEXT", pycuda_version))
    gpus, gpu_note = probe_gpus(pycuda_version is not None)
    return Facts(
        ort_version=ort.__version__,
        ort_providers=tuple(ort.get_available_providers()),
        tensorrt=trt_version, tensorrt_note=trt_note,
        pycuda=pycuda_version, pycuda_note=pycuda_note,
        gpus=gpus, gpu_note=gpu_note,
    )


# -- decisions (pure) ----------------------------------------------------------------------------


def unavailable_reason(backend: str, facts: Facts) -> str | None:
    """None when ``backend`` can run here, else one line: what is missing, how to fix it."""
    if backend == "ort-cpu":
        return None
    if backend in ("ort-cuda", "ort-trt"):
        provider = ORT_PROVIDER[backend]
        if provider in facts.ort_providers:
            return None
        have = ", ".join(p for p in facts.ort_providers if p != "AzureExecutionProvider") or "no provider"
        fix = (ORT_GPU_SWAP if backend == "ort-cuda" else
               f"{ORT_GPU_SWAP}, then pip install 'tensorrt-cu13-libs>=10.13,<11' (its TensorRT provider is built "
               f"against TensorRT 10)")
        return (f"--backend {backend} asked for {provider} but this onnxruntime {facts.ort_version} has only "
                f"{have}: {fix}, or use --backend ort-cpu")
    if backend == "trt":
        if facts.tensorrt is None:
            return (f"--backend trt needs TensorRT, which is {facts.tensorrt_note or 'not installed'} here (Python "
                    f"package 'tensorrt'): {INSTALL_TRT}, or use --backend ort-cpu")
        if facts.pycuda is None:
            return (f"--backend trt needs pycuda for its CUDA buffers and stream, which is {facts.pycuda_note or 'not installed'}: "
                    f"{INSTALL_TRT}, or use --backend ort-cpu")
        if not facts.gpus:
            return (f"--backend trt found TensorRT {facts.tensorrt} but no NVIDIA GPU ({facts.gpu_note or 'none found'}): "
                    f"check the driver with nvidia-smi, or use --backend ort-cpu")
        return None
    raise EngineError(f"unknown backend '{backend}': expected one of {', '.join(BACKENDS)}")


def choose_backend(requested: str, facts: Facts) -> Choice:
    """The backend for ``requested`` on a machine with ``facts``.

    Explicit and unavailable -> EngineError (one line). ``auto`` -> trt, else ort-cuda, else ort-cpu,
    with the reason in words.
    """
    if is_triton(requested):
        return Choice(requested, requested)
    if requested not in BACKENDS:
        raise EngineError(f"unknown backend '{requested}': expected one of {', '.join(BACKENDS)} or triton://HOST:PORT")
    if requested != "auto":
        why = unavailable_reason(requested, facts)
        if why is not None:
            raise EngineError(why)
        return Choice(requested, requested)
    if facts.trt_usable:
        gpu = facts.gpus[0]
        return Choice("trt", "auto", f"TensorRT {facts.tensorrt} and a GPU: {gpu.name}")
    if facts.tensorrt is None:
        no_trt = "no TensorRT"
    elif facts.pycuda is None:
        no_trt = f"TensorRT {facts.tensorrt} but no pycuda"
    else:
        no_trt = f"TensorRT {facts.tensorrt} but no GPU"
    if "CUDAExecutionProvider" in facts.ort_providers:
        return Choice("ort-cuda", "auto", f"{no_trt}; onnxruntime {facts.ort_version} has CUDAExecutionProvider")
    return Choice("ort-cpu", "auto", f"{no_trt}; onnxruntime {facts.ort_version} has no CUDAExecutionProvider")


def resolve_backend(requested: str, facts: Facts | None = None) -> Choice:
    """:func:`choose_backend` on this machine's facts (probed once)."""
    return choose_backend(requested, facts if facts is not None else probe())


def resolve_options(options: EngineOptions, facts: Facts | None = None) -> tuple[EngineOptions, Choice]:
    """Options with a concrete backend (``auto`` resolved; it may then fall back with a warning)."""
    choice = resolve_backend(options.backend, facts)
    fallback = options.fallback or choice.auto
    return EngineOptions(choice.backend, options.fp16, options.cache_dir, fallback, options.pool), choice
