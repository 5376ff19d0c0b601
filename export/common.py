"""What every exporter shares: lazy imports with a clear message, ``torch.onnx.export``, the parity check
(ONNX Runtime against torch on random and real inputs) and writing the YAML sidecar / model card.

Nothing here imports torch at module level: ``import export`` works without the ``export`` extra, and a
command that needs a missing package fails with one line that says which package and how to install it.
"""

from __future__ import annotations

import importlib
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np
import yaml

from depthstream.errors import ConfigError, EngineError
from depthstream.hashing import sha256_of  # noqa: F401  (re-exported for the exporters)
from depthstream.store import PROJECT_ROOT, locate

log = logging.getLogger(__name__)

OPSET = 17
"""ONNX opset of our exports: ONNX Runtime >= 1.17 and TensorRT 10 run every operator our models use."""

SAMPLE_PHOTOS = ("coco_val2017_000000000139.jpg", "dog.jpg")
"""Real photos for the parity check when the user names none: the test photos of the model store."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
UNIT_SCALE = 1.0 / 255.0


class ExportError(EngineError):
    """An export could not be done: a missing package, a model that does not load, a failed parity check."""


def require(module: str, pip_name: str, why: str) -> Any:
    """Import ``module`` or raise :class:`ExportError` naming the pip package that provides it.

    ``why`` says what needs it, e.g. "Depth Anything V2 from a Hugging Face folder".
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ExportError(
            f"{why} needs the Python package '{pip_name}' (module {module!r} could not be imported: {exc}); "
            f"install it with: pip install {pip_name}"
        ) from exc


def require_torch(why: str = "exporting a PyTorch model") -> Any:
    return require("torch", "torch", f"{why} (the 'export' extra: pip install -e '.[export]')")



def load_state_dict(path: Path, what: str) -> dict:
    """A checkpoint file -> its state dict (CPU tensors). Accepts a bare state dict or one wrapped under
    ``state_dict`` / ``model`` / ``model_state_dict``; strips DataParallel's ``module.`` prefix."""
    torch = require_torch()
    if not path.is_file():
        raise ConfigError(f"{what}: weights file {path} not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises pickle, zip and runtime errors of many types
        raise ConfigError(f"{what}: {path} is not a PyTorch checkpoint that loads with weights_only=True: "
                          f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj or not all(hasattr(v, "shape") for v in obj.values()):
        raise ConfigError(f"{what}: {path} holds no state dict (a mapping of parameter names to tensors); "
                          f"save one with torch.save(model.state_dict(), path)")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in obj.items()}


def load_into(module: Any, state: dict, path: Path, what: str, hint: str = "") -> None:
    """``module.load_state_dict(state, strict=True)`` with a one-line error listing what does not match."""
    missing, unexpected, wrong = [], [], []
    own = module.state_dict()
    for k, v in own.items():
        if k not in state:
            missing.append(k)
        elif tuple(state[k].shape) != tuple(v.shape):
            wrong.append(f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}")
    unexpected = [k for k in state if k not in own]
    if missing or unexpected or wrong:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape (file vs model)", wrong)):
            if items:
                parts.append(f"{len(items)} {label}: {', '.join(items[:4])}{', ...' if len(items) > 4 else ''}")
        raise ConfigError(f"{what}: {path} does not fit the model definition ({'; '.join(parts)})"
                          + (f"; {hint}" if hint else ""))
    module.load_state_dict(state, strict=True)


def module_from_factory(spec: str, what: str):
    """``pkg.mod:factory`` -> the object ``factory()`` returns."""
    if ":" not in spec:
        raise ConfigError(f"--module must be 'package.module:factory' (a callable returning a torch.nn.Module), "
                          f"got {spec!r}")
    mod_name, attr = spec.split(":", 1)
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as exc:
        raise ConfigError(f"--module {spec}: cannot import {mod_name!r}: {exc}") from exc
    factory = getattr(mod, attr, None)
    if not callable(factory):
        raise ConfigError(f"--module {spec}: {mod_name} has no callable {attr!r}")
    torch = require_torch(what)
    module = factory()
    if not isinstance(module, torch.nn.Module):
        raise ConfigError(f"--module {spec}: {attr}() returned {type(module).__name__}, expected a torch.nn.Module")
    return module


def onnx_export(module: Any, sample: Any, path: Path, input_name: str, output_names: Sequence[str],
                opset: int = OPSET) -> Path:
    """Export an ``nn.Module`` in eval mode with fixed shapes (batch 1) to ``path``.

    Uses the TorchScript-based exporter (``dynamo=False``): it needs no extra package, is what the
    Ultralytics exporter uses, and handles every convolutional and ViT model here. Its deprecation
    warning is silenced for this call only.
    """
    torch = require_torch()
    path.parent.mkdir(parents=True, exist_ok=True)
    module.eval()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        try:
            with torch.no_grad():
                torch.onnx.export(module, (sample,), str(path), input_names=[input_name],
                                  output_names=list(output_names), opset_version=opset, dynamo=False)
        except Exception as exc:  # torch.onnx raises many exception types (tracing, unsupported operators)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ExportError(f"torch.onnx.export of {type(module).__name__} failed: {first}") from exc
    return path


# -- inputs for the parity check -------------------------------------------------------------------


def sample_images(paths: Sequence[Path] | None = None, limit: int = 2) -> list[tuple[str, np.ndarray]]:
    """Real BGR photos for the parity check: the given files, else the model store's test photos (cache or
    mirror; missing there: one error line saying how to fetch them or to pass --images)."""
    chosen = list(paths) if paths else [locate(name) for name in SAMPLE_PHOTOS[:limit]]
    out = []
    for p in chosen:
        image = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if image is None:
            raise ConfigError(f"--images: {p} is not an image OpenCV can read")
        out.append((Path(p).name, image))
    return out


def normalise(image: np.ndarray, size: tuple[int, int], colour: str, scale: float,
              mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """BGR uint8 photo -> (1, 3, h, w) float32, the way ``stream.depth.OnnxDepth`` feeds a depth card."""
    if colour == "rgb":
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    h, w = size
    image = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
    x = (image.astype(np.float32) * np.float32(scale) - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


def random_input(shape: Sequence[int], seed: int = 0) -> np.ndarray:
    """A reproducible float32 input roughly in the range of normalised pixels."""
    return np.random.default_rng(seed).normal(0.0, 1.0, size=tuple(shape)).astype(np.float32)


# -- the parity check --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParityResult:
    """One input: the largest |ONNX Runtime - torch| over the output, and the largest |torch| for scale."""

    label: str
    max_abs_diff: float
    max_abs_ref: float
    compared: int = -1  # values compared after alignment; -1 = the whole output

    def describe(self) -> str:
        if self.compared == 0:
            return f"{self.label}: nothing compared (every top-K row ties at the lowest score: untrained weights?)"
        return f"{self.label}: max abs diff {self.max_abs_diff:.3g} (outputs up to {self.max_abs_ref:.3g})"


def check_parity(module: Any, onnx_path: Path, input_name: str, inputs: Sequence[tuple[str, np.ndarray]],
                 torch_output: Callable[[Any], Any] | None = None, tolerance: float = 1e-3,
                 align: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None,
                 ) -> list[ParityResult]:
    """Run ``module`` (torch) and the exported ONNX (ONNX Runtime, CPU) on each input; compare the first
    output. Raises :class:`ExportError` when a difference exceeds ``tolerance * max(1, max |torch|)``.

    ``torch_output`` picks the tensor to compare from the module's return value (default: the value
    itself, or its first element for a tuple / list). ``align(torch, onnx)`` puts both outputs in a
    comparable form first (e.g. :func:`align_topk_rows` for outputs that are a top-K selection).
    """
    torch = require_torch()
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(onnx_path), sess_options=opts, providers=["CPUExecutionProvider"])
    pick = torch_output or (lambda y: y[0] if isinstance(y, (tuple, list)) else y)
    results = []
    module.eval()
    for label, x in inputs:
        with torch.no_grad():
            ref = pick(module(torch.from_numpy(x))).detach().cpu().numpy().astype(np.float32)
        got = session.run(None, {input_name: x})[0].astype(np.float32)
        compared = -1
        if align is not None and got.shape == ref.shape:
            ref, got = align(ref, got)
            compared = int(ref.size)
        if got.shape != ref.shape:
            raise ExportError(f"{onnx_path.name}: ONNX output shape {got.shape} differs from torch's {ref.shape} "
                              f"on {label}")
        finite = np.isfinite(ref) & np.isfinite(got)
        diff = float(np.abs(got[finite] - ref[finite]).max()) if finite.any() else 0.0
        peak = float(np.abs(ref[finite]).max()) if finite.any() else 0.0
        result = ParityResult(label, diff, peak, compared)
        results.append(result)
        if diff > tolerance * max(1.0, peak):
            raise ExportError(f"{onnx_path.name}: ONNX Runtime disagrees with torch on {label}: max abs diff "
                              f"{diff:.3g} > tolerance {tolerance:g} x max(1, {peak:.3g}); the export is not faithful")
    return results


def align_topk_rows(ref: np.ndarray, got: np.ndarray, score_col: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """[1, K, D] top-K rows (end-to-end detectors): rows whose scores tie may be picked and ordered differently
    by two runtimes, so compare the rows scoring above the lowest score of either output, each torch row
    with its closest ONNX Runtime row."""
    r, g = ref.reshape(-1, ref.shape[-1]), got.reshape(-1, got.shape[-1])
    floor = max(float(r[:, score_col].min()), float(g[:, score_col].min())) + 1e-6
    r, g = r[r[:, score_col] > floor], g[g[:, score_col] > floor]
    if len(r) != len(g):
        raise ExportError(f"the top-K rows differ: torch has {len(r)} rows scoring above {floor:.3g}, ONNX Runtime "
                          f"{len(g)}; the export is not faithful")
    if len(r) == 0:
        return r, g
    closest = np.abs(r[:, None, :] - g[None, :, :]).max(axis=2).argmin(axis=1)
    return r, g[closest]


def parity_note(results: Sequence[ParityResult]) -> str:
    return "parity ONNX Runtime vs torch: " + "; ".join(r.describe() for r in results)


# -- sidecars ------------------------------------------------------------------------------------------


def write_card(path: Path, data: dict, header: Sequence[str]) -> Path:
    """Write a YAML sidecar with ``# header`` lines on top, keys in the given order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = ""
    for key, value in data.items():  # lists of numbers inline, everything else in block style
        if isinstance(value, list) and value and not any(isinstance(v, (str, dict, list)) for v in value):
            body += f"{key}: {yaml.safe_dump(value, default_flow_style=True, width=1 << 16).strip()}\n"
        else:
            body += yaml.safe_dump({key: value}, sort_keys=False, default_flow_style=False, width=1 << 16,
                                   allow_unicode=True)
    path.write_text("".join(f"# {line}\n" for line in header) + body, encoding="utf-8")
    return path


def output_paths(output: str | Path | None, default_stem: str) -> tuple[Path, Path]:
    """``--output`` (an .onnx path; default ``models/<stem>.onnx``) -> (onnx path, sidecar .yaml path)."""
    onnx_path = Path(output) if output else PROJECT_ROOT / "models" / f"{default_stem}.onnx"
    if onnx_path.suffix.lower() != ".onnx":
        raise ConfigError(f"--output must name an .onnx file, got {str(onnx_path)!r}")
    return onnx_path, onnx_path.with_suffix(".yaml")
