"""A Triton model repository for the product's models (``python -m engines triton-repo``).

For each ONNX it writes ``<out>/<name>/config.pbtxt`` and ``<out>/<name>/1/<model file>``, ``<name>`` being
:func:`engines.triton.triton_model_name` (the name :class:`engines.triton.TritonEngine` asks for). Runtimes:

- ``onnxruntime``: Triton's onnxruntime backend runs ``model.onnx`` (``KIND_GPU`` instances by default).
- ``tensorrt``: a TensorRT plan that ``python -m engines build`` already built for this ONNX (found in the
  engine cache by the ONNX's sha256), as ``model.plan``. A plan only runs under the TensorRT version and on the
  GPU model it was built with: build it on the Triton host, with the server's TensorRT.
- ``python``: ``model.onnx`` run by ONNX Runtime on the CPU inside Triton's Python backend
  (``engines/triton_python_model.py``): for servers without the onnxruntime backend, e.g. the one in the
  nvidia-pytriton wheel that the tests run.
- ``auto``: ``tensorrt`` where a plan was built, else ``onnxruntime``.

Batching: Triton's ``max_batch_size`` > 0 and ``dynamic_batching`` require every input and output to have a
batch dimension of free size first. A model exported with a fixed batch of 1 (the shipped YOLOX-Nano and
FastDepth-224) gets ``max_batch_size: 0`` and no dynamic batching (Triton refuses the model otherwise); the
config says so in a comment, and so does :func:`write_repository`'s result. To batch frames of several cameras
in one call, export the model with a dynamic first axis (``torch.onnx.export(..., dynamic_axes={"images": {0:
"batch"}, "output": {0: "batch"}})``, or make dim 0 symbolic in the graph's inputs and outputs when every node
is batch-agnostic); then the config gets ``max_batch_size`` and ``dynamic_batching``.

Every config records the ONNX's sha256 (parameter ``onnx_sha256``) so that a pipeline whose ONNX differs from
the one the server runs fails at open instead of giving other boxes.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from depthstream.errors import ConfigError, EngineError
from depthstream.hashing import sha256_of

from .base import TensorSpec
from .triton import NUMPY_TO_TRITON, SHA_PARAMETER, triton_model_name

log = logging.getLogger(__name__)

RUNTIMES = ("auto", "onnxruntime", "tensorrt", "python")
INSTANCE_KINDS = ("gpu", "cpu")
PYTHON_MODEL = Path(__file__).with_name("triton_python_model.py")


@dataclass(frozen=True)
class RepoOptions:
    """runtime: one of :data:`RUNTIMES`. instance_kind: where onnxruntime / tensorrt instances run (the
    Python runtime always runs on the CPU). instances: model instances (parallel executions) per model.
    max_batch_size / queue_delay_us: dynamic batching, for models with a batch dimension. threads: ONNX
    Runtime threads per instance of the Python runtime. cache_dir: where ``python -m engines build`` put its
    plans. force: replace a model folder that already exists in ``out``."""

    runtime: str = "auto"
    instance_kind: str = "gpu"
    instances: int = 1
    max_batch_size: int = 8
    queue_delay_us: int = 2000
    threads: int = 1
    cache_dir: str | None = None
    force: bool = False

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise ConfigError(f"--runtime {self.runtime!r}: expected one of {', '.join(RUNTIMES)}")
        if self.instance_kind not in INSTANCE_KINDS:
            raise ConfigError(f"--instance-kind {self.instance_kind!r}: expected one of {', '.join(INSTANCE_KINDS)}")
        for name, value, low in (("--instances", self.instances, 1), ("--max-batch-size", self.max_batch_size, 1),
                                 ("--queue-delay-us", self.queue_delay_us, 0), ("--threads", self.threads, 1)):
            if value < low:
                raise ConfigError(f"{name} must be >= {low}, got {value}")


@dataclass(frozen=True)
class RepoModel:
    """What was written for one model."""

    name: str
    onnx: Path
    folder: Path
    runtime: str  # onnxruntime | tensorrt | python
    max_batch_size: int  # 0 = no batch dimension, no dynamic batching
    note: str  # one line for the user: what was chosen and why

    def line(self) -> str:
        return f"{self.name}: {self.folder} ({self.runtime}; {self.note})"


def read_io(onnx: Path) -> tuple[dict[str, TensorSpec], dict[str, TensorSpec]]:
    """The ONNX's inputs and outputs, read with ONNX Runtime on the CPU."""
    from .ort import OrtEngine

    with OrtEngine(onnx) as engine:
        return engine.inputs, engine.outputs


def has_batch_dimension(inputs: dict[str, TensorSpec], outputs: dict[str, TensorSpec]) -> bool:
    """True when every input and output has a first dimension of free size (Triton's batch dimension)."""
    specs = list(inputs.values()) + list(outputs.values())
    return bool(specs) and all(len(s.shape) >= 1 and s.shape[0] is None for s in specs)


def find_plan(onnx: Path, cache_dir: str | None) -> tuple[Path, dict] | None:
    """A TensorRT plan ``python -m engines build`` made from these very ONNX bytes (FP16 first), with its
    sidecar (TensorRT version, GPU), or None."""
    from .build import engine_paths, read_sidecar

    sha = sha256_of(onnx)
    for precision in ("fp16", "fp32"):
        plan, sidecar = engine_paths(cache_dir, onnx, precision)
        record = read_sidecar(sidecar) if sidecar.is_file() else None
        if plan.is_file() and record and record.get("onnx_sha256") == sha:
            return plan, record
    return None


def _dims(shape: Sequence[int | None]) -> str:
    return "[ " + ", ".join("-1" if d is None else str(int(d)) for d in shape) + " ]"


def _tensors(kind: str, specs: dict[str, TensorSpec], batched: bool) -> str:
    rows = []
    for spec in specs.values():
        dtype = NUMPY_TO_TRITON.get(spec.dtype)
        if dtype is None:
            raise EngineError(f"tensor '{spec.name}' has dtype {spec.dtype}, which Triton configs here do not map "
                              f"(expected one of {', '.join(str(d) for d in NUMPY_TO_TRITON)})")
        shape = spec.shape[1:] if batched else spec.shape
        rows.append(f"  {{ name: \"{spec.name}\" data_type: TYPE_{dtype} dims: {_dims(shape)} }}")
    return f"{kind} [\n" + ",\n".join(rows) + "\n]\n"


def config_pbtxt(name: str, runtime: str, inputs: dict[str, TensorSpec], outputs: dict[str, TensorSpec], *,
                 options: RepoOptions, sha256: str, comment: str) -> str:
    """The ``config.pbtxt`` text for one model (protobuf text format, Triton's ModelConfig)."""
    batched = has_batch_dimension(inputs, outputs)
    head = {"onnxruntime": 'backend: "onnxruntime"', "tensorrt": 'platform: "tensorrt_plan"',
            "python": 'backend: "python"'}[runtime]
    kind = "KIND_CPU" if runtime == "python" or options.instance_kind == "cpu" else "KIND_GPU"
    text = "".join(f"# {line}\n" for line in comment.splitlines())
    text += f'name: "{name}"\n{head}\nmax_batch_size: {options.max_batch_size if batched else 0}\n'
    text += _tensors("input", inputs, batched) + _tensors("output", outputs, batched)
    text += f"instance_group [ {{ kind: {kind} count: {options.instances} }} ]\n"
    if batched:
        text += f"dynamic_batching {{ max_queue_delay_microseconds: {options.queue_delay_us} }}\n"
    params = {SHA_PARAMETER: sha256}
    if runtime == "python":
        params["intra_op_threads"] = str(options.threads)
    for key, value in params.items():
        text += f'parameters {{ key: "{key}" value: {{ string_value: "{value}" }} }}\n'
    return text


def _runtime_for(onnx: Path, options: RepoOptions) -> tuple[str, tuple[Path, dict] | None]:
    if options.runtime in ("onnxruntime", "python"):
        return options.runtime, None
    plan = find_plan(onnx, options.cache_dir)
    if plan is not None:
        return "tensorrt", plan
    if options.runtime == "tensorrt":
        raise EngineError(f"--runtime tensorrt: no TensorRT engine was built from {onnx} (sha256 checked) in the "
                          f"engine cache: run python -m engines build {onnx} on the Triton host first, or use "
                          f"--runtime onnxruntime")
    return "onnxruntime", None


def write_model(onnx: Path, out: Path, options: RepoOptions) -> RepoModel:
    """One model's folder in the repository ``out``; refuses to replace an existing one unless ``force``."""
    name = triton_model_name(onnx)
    folder = out / name
    if folder.exists() and not options.force:
        raise ConfigError(f"{folder} already exists: give another --out, remove it, or add --force to replace it")
    inputs, outputs = read_io(onnx)
    runtime, plan = _runtime_for(onnx, options)
    batched = has_batch_dimension(inputs, outputs)
    if batched:
        batching = f"dynamic batching up to {options.max_batch_size}, {options.queue_delay_us} us queue delay"
    else:
        fixed = ", ".join(s.describe() for s in list(inputs.values())[:1])
        batching = (f"no batch dimension ({fixed}): max_batch_size 0, no dynamic batching (Triton refuses "
                    f"them for such a model); export with a dynamic first axis to batch")
    note = batching
    comment = f"Written by python -m engines triton-repo from {onnx.name}: {batching}."
    if plan is not None:
        built = f"TensorRT {plan[1].get('tensorrt', '?')} on {plan[1].get('gpu', '?')} ({plan[1].get('precision', '?')})"
        note = f"plan built with {built}; {batching}"
        comment += f"\nThe plan was built with {built}: it runs only with that TensorRT on that GPU model."
    sha = sha256_of(onnx)
    text = config_pbtxt(name, runtime, inputs, outputs, options=options, sha256=sha, comment=comment)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=out))
    try:
        (staging / "1").mkdir()
        (staging / "config.pbtxt").write_text(text)
        if plan is not None:
            shutil.copyfile(plan[0], staging / "1" / "model.plan")
        else:
            shutil.copyfile(onnx, staging / "1" / "model.onnx")
        if runtime == "python":
            shutil.copyfile(PYTHON_MODEL, staging / "1" / "model.py")
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return RepoModel(name, onnx, folder, runtime, options.max_batch_size if batched else 0, note)


def expand_models(items: Sequence[str | Path]) -> list[Path]:
    """Files and folders -> ONNX files (a folder gives every ``*.onnx`` in it, sorted); one line when none."""
    found: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            onnx = sorted(path.glob("*.onnx"))
            if not onnx:
                raise ConfigError(f"{path} holds no .onnx file: give a folder with models or the .onnx files")
            found.extend(onnx)
        elif path.is_file() and path.suffix.lower() == ".onnx":
            found.append(path)
        elif not path.exists():
            raise ConfigError(f"model not found: {path} (give .onnx files or a folder that holds them)")
        else:
            raise ConfigError(f"{path} is not an .onnx file: give .onnx files or a folder that holds them")
    names: dict[str, Path] = {}
    for path in found:
        other = names.setdefault(triton_model_name(path), path)
        if other != path and other.resolve() != path.resolve():
            raise ConfigError(f"{other} and {path} would both be served as '{triton_model_name(path)}': "
                              f"rename one of them")
    return list(dict.fromkeys(p.resolve() for p in found))


def write_repository(models: Sequence[str | Path], out: str | Path, options: RepoOptions | None = None) -> list[RepoModel]:
    """Write (or, with ``force``, replace) a folder per model in the repository ``out``."""
    options = options or RepoOptions()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file: give a folder for the model repository")
    onnx_files = expand_models(models)
    taken = [out / triton_model_name(p) for p in onnx_files if (out / triton_model_name(p)).exists()]
    if taken and not options.force:  # checked for all before anything is written
        raise ConfigError(f"{', '.join(map(str, taken))} already exist{'s' if len(taken) == 1 else ''}: give another "
                          f"--out, remove {'it' if len(taken) == 1 else 'them'}, or add --force to replace")
    return [write_model(onnx, out, options) for onnx in onnx_files]
