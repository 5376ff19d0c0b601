"""One engine per model for every pipeline of a process (several cameras in one process: :mod:`stream.multi`).

:class:`EnginePool` hands out one :class:`SharedEngine` per model file and backend, however many pipelines ask for
it, so N cameras load each model once. A shared engine is called from several pipelines' threads:

- a model with a **free batch axis** (every input's and output's first dimension left open, e.g. an ONNX exported
  with ``dynamic_axes={"images": {0: "batch"}}``, or a Triton model with ``max_batch_size`` > 0) gets the frames
  that wait from different cameras **in one call**: the first caller waits at most ``max_wait_s`` for the others
  (every other pipeline that holds the engine open), stacks their feeds on axis 0, runs once and hands each
  caller its own row;
- a model with a **fixed batch** (the shipped YOLOX-Nano ``[1, 3, 416, 416]`` and FastDepth-224
  ``[1, 224, 224, 3]``) is run for one caller at a time, in turn (a lock): the backends' engines serve one thread
  at a time (TensorRT's buffers and stream, the Triton engine's connection).

Either way each caller sees the model as it sees its own engine: inputs and outputs with a batch of 1, checked
with the same messages, and outputs that are its own arrays (copied out of the batch).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from .base import Engine, TensorSpec

log = logging.getLogger(__name__)

DEFAULT_MAX_WAIT_S = 0.005  # how long the first frame waits for other cameras' frames to join its batch


def has_free_batch_axis(inputs: Mapping[str, TensorSpec], outputs: Mapping[str, TensorSpec]) -> bool:
    """Every input and output has a first dimension left open (None): frames can be stacked on it."""
    specs = list(inputs.values()) + list(outputs.values())
    return bool(specs) and all(len(s.shape) >= 1 and s.shape[0] is None for s in specs)


def _one(spec: TensorSpec) -> TensorSpec:
    return replace(spec, shape=(1, *spec.shape[1:]))


@dataclass
class _Request:
    feeds: Mapping[str, np.ndarray]
    result: dict[str, np.ndarray] | None = None
    error: BaseException | None = None
    done: bool = False


@dataclass
class BatchStats:
    """How the shared engine's calls went: ``calls`` (callers' frames), ``runs`` (model executions); with a free
    batch axis ``runs < calls`` when frames of several cameras went through one execution."""

    calls: int = 0
    runs: int = 0
    largest: int = 0


class SharedEngine(Engine):
    """One opened engine used by several pipelines (see the module's text). ``open()`` / ``close()`` count their
    users: the model loads on the first ``open()`` and is freed by the last ``close()``."""

    def __init__(self, inner: Engine, *, max_wait_s: float = DEFAULT_MAX_WAIT_S) -> None:
        super().__init__(inner.path)
        self.inner = inner
        self.max_wait_s = max_wait_s
        self.batching = False
        self.stats = BatchStats()
        self._users = 0
        self._life = threading.Lock()  # open / close
        self._turn = threading.Lock()  # a fixed batch: one caller's run at a time
        self._cond = threading.Condition()
        self._pending: list[_Request] = []
        self._leader = False  # a caller is gathering or running a batch

    def __getattr__(self, name: str):  # what the backend tells about itself: backend, providers, max_batch_size ...
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property
    def backend(self) -> str:  # type: ignore[override]
        return self.inner.backend

    @property
    def users(self) -> int:
        return self._users

    def open(self) -> "SharedEngine":
        with self._life:
            if self._users == 0:
                self.inner.open()
                ins, outs = self.inner.inputs, self.inner.outputs
                self.batching = has_free_batch_axis(ins, outs)
                if self.batching:
                    ins = {k: _one(v) for k, v in ins.items()}
                    outs = {k: _one(v) for k, v in outs.items()}
                self._inputs, self._outputs = ins, outs
                log.info("shared model %s: %s", self.path.name,
                         "frames of several cameras batched into one call (free batch axis)" if self.batching
                         else "fixed batch of 1: the cameras' calls run one at a time")
            self._users += 1
        return self

    def close(self) -> None:
        with self._life:
            if self._users == 0:
                return
            self._users -= 1
            if self._users == 0:
                self.inner.close()
                self._inputs = self._outputs = None
        with self._cond:
            self._cond.notify_all()  # a leader waiting for this user's frame stops waiting

    def _open(self):  # open() above does the work
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    def _infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if not self.batching:
            with self._turn:
                self._count(1)
                return self.inner.infer(feeds)
        return self._batched(_Request(feeds))

    def _count(self, n: int) -> None:
        self.stats.calls += n
        self.stats.runs += 1
        self.stats.largest = max(self.stats.largest, n)

    def _limit(self) -> int:
        largest = int(getattr(self.inner, "max_batch_size", 0) or 0)
        users = max(1, self._users)
        return min(users, largest) if largest > 0 else users

    def _batched(self, req: _Request) -> dict[str, np.ndarray]:
        with self._cond:
            self._pending.append(req)
            self._cond.notify_all()
        while True:
            with self._cond:
                while not req.done and self._leader:
                    self._cond.wait()
                if req.done:
                    return self._answer(req)
                # This caller leads the next batch: wait (bounded) for the frames of the other users.
                self._leader = True
                deadline = time.monotonic() + self.max_wait_s
                while len(self._pending) < self._limit():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                batch, self._pending = self._pending[:self._limit()], self._pending[self._limit():]
            try:
                self._run(batch)
            finally:
                with self._cond:
                    self._leader = False
                    self._cond.notify_all()

    @staticmethod
    def _answer(req: _Request) -> dict[str, np.ndarray]:
        if req.error is not None:
            raise req.error
        return req.result  # type: ignore[return-value]

    def _run(self, batch: list[_Request]) -> None:
        try:
            if len(batch) == 1:
                out = self.inner.infer(batch[0].feeds)
                batch[0].result = {k: np.array(v) for k, v in out.items()}
            else:
                names = batch[0].feeds.keys()
                stacked = {k: np.concatenate([r.feeds[k] for r in batch], axis=0) for k in names}
                out = self.inner.infer(stacked)
                for i, r in enumerate(batch):
                    r.result = {k: np.array(v[i:i + 1]) for k, v in out.items()}  # own arrays: the next run may reuse
            self._count(len(batch))
        except BaseException as exc:  # every caller of the batch gets the model's error (re-raised in its thread)
            for r in batch:
                r.error = exc
        finally:
            for r in batch:
                r.done = True


class EnginePool:
    """One :class:`SharedEngine` per (model file, backend options): what :func:`engines.factory.create_engine`
    returns when the options carry this pool. ``make(path, options, threads, shapes)`` builds the inner engine
    (the factory itself): the first pipeline's thread count and shapes are the ones used."""

    def __init__(self, make: Callable[..., Engine] | None = None, *, max_wait_s: float = DEFAULT_MAX_WAIT_S) -> None:
        self._make = make
        self.max_wait_s = max_wait_s
        self.engines: dict[tuple, SharedEngine] = {}
        self._lock = threading.Lock()

    def engine(self, path: str | Path, options, *, threads: int = 1, shapes=None) -> SharedEngine:
        key = (str(Path(path).resolve()), options.backend, options.fp16, options.cache_dir)
        with self._lock:
            shared = self.engines.get(key)
            if shared is None:
                if self._make is None:
                    from .factory import create_engine

                    self._make = create_engine
                inner = self._make(path, options, threads=threads, shapes=shapes)
                shared = self.engines[key] = SharedEngine(inner, max_wait_s=self.max_wait_s)
            return shared
