"""The one inference interface every backend implements.

A small base class does the checks (names, dtypes, shapes) and owns the open/close life cycle; each
backend writes only ``_open``, ``_close`` and ``_infer`` (the pattern of Polygraphy's runners). Nothing
touches a GPU or loads a model until ``open()``.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from depthstream.errors import EngineError


@dataclass(frozen=True)
class TensorSpec:
    """One input or output: ``shape`` holds None for a dynamic dimension."""

    name: str
    dtype: np.dtype
    shape: tuple[int | None, ...]

    def describe(self) -> str:
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name}: {np.dtype(self.dtype).name}[{dims}]"


class Engine(abc.ABC):
    """A loaded model that maps named numpy inputs to named numpy outputs.

    Use as a context manager or call ``open()`` / ``close()``. ``infer`` checks its feeds against
    ``inputs`` and raises ``EngineError`` saying what to fix. **Output arrays may be reused by the next
    call** (a backend may hand out its own buffers): copy what you keep beyond the next ``infer``.
    """

    backend: str = "?"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._inputs: dict[str, TensorSpec] | None = None
        self._outputs: dict[str, TensorSpec] | None = None

    # -- life cycle ---------------------------------------------------------------------------
    def open(self) -> "Engine":
        if self._inputs is None:
            self._inputs, self._outputs = self._open()
        return self

    def close(self) -> None:
        if self._inputs is not None:
            self._close()
            self._inputs = self._outputs = None

    def __enter__(self) -> "Engine":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def is_open(self) -> bool:
        return self._inputs is not None

    @property
    def inputs(self) -> dict[str, TensorSpec]:
        self._require_open()
        return dict(self._inputs)  # type: ignore[arg-type]

    @property
    def outputs(self) -> dict[str, TensorSpec]:
        self._require_open()
        return dict(self._outputs)  # type: ignore[arg-type]

    def _require_open(self) -> None:
        if self._inputs is None:
            raise EngineError(f"engine for {self.path.name} is not open: call open() or use it as a context manager")

    # -- inference ----------------------------------------------------------------------------
    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._require_open()
        self.check_feeds(feeds)
        return self._infer(feeds)

    def check_feeds(self, feeds: Mapping[str, np.ndarray]) -> None:
        specs = self._inputs or {}
        missing = [n for n in specs if n not in feeds]
        extra = [n for n in feeds if n not in specs]
        if missing or extra:
            raise EngineError(
                f"{self.path.name}: feeds {sorted(feeds)} do not match the model's inputs "
                f"{[s.describe() for s in specs.values()]}"
                + (f"; missing {missing}" if missing else "")
                + (f"; unknown {extra}" if extra else "")
            )
        for name, spec in specs.items():
            arr = feeds[name]
            if not isinstance(arr, np.ndarray):
                raise EngineError(f"{self.path.name}: input '{name}' must be a numpy array, got {type(arr).__name__}")
            if arr.dtype != spec.dtype:
                raise EngineError(
                    f"{self.path.name}: input '{name}' has dtype {arr.dtype}, the model expects "
                    f"{np.dtype(spec.dtype).name}: convert with .astype(np.{np.dtype(spec.dtype).name})"
                )
            if len(arr.shape) != len(spec.shape) or any(
                d is not None and d != a for d, a in zip(spec.shape, arr.shape)
            ):
                raise EngineError(
                    f"{self.path.name}: input '{name}' has shape {tuple(arr.shape)}, the model expects "
                    f"{spec.describe()} (? = any size)"
                )

    # -- backend part ---------------------------------------------------------------------------
    @abc.abstractmethod
    def _open(self) -> tuple[dict[str, TensorSpec], dict[str, TensorSpec]]:
        """Load the model; return (inputs, outputs)."""

    @abc.abstractmethod
    def _close(self) -> None:
        """Free what ``_open`` took."""

    @abc.abstractmethod
    def _infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the model on checked feeds."""
