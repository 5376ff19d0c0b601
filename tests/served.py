"""A served run for the browser view's tests: ``stream.serve.run_served`` in a thread, on the bundled clip looped
and paced like a camera (real frames, real models through the model store), on 127.0.0.1 and a free port."""

from __future__ import annotations

import threading
import time

from bench.pipeline_runs import LoopSource
from depthstream.schema.config import load_config
from stream.serve import run_served


class StoppableLoop(LoopSource):
    """The bundled clip looped for up to ``total`` frames at ``fps`` (a live source); ``stop`` ends it."""

    def __init__(self, total: int = 100_000, fps: float = 10.0, uri: str = "demo") -> None:
        super().__init__(uri, total, pace_fps=fps)
        self.stop = threading.Event()

    def read(self):
        if self.stop.is_set():
            return None
        return super().read()


class ServedRun:
    """``with ServedRun(sets=[...]) as run: run.url ...``: the view serves once ``run.url`` is set; leaving the block
    ends the source and joins the run (its error, if any, is raised there)."""

    def __init__(self, sets: list[str] = (), *, token: str | None = None, listen: str = "127.0.0.1:0",
                 source=None, closer_than: float | None = 30.0) -> None:
        overrides = {"serve.listen": listen, "band.closer_than": closer_than}
        self.cfg = load_config(sets=["serve.linger=false", *sets], overrides=overrides)
        self.token = token
        self.source = source or StoppableLoop()
        self.url: str | None = None
        self.summary = None
        self.error: BaseException | None = None
        self._listening = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-served-run")

    def _on_listen(self, url: str) -> None:
        self.url = url.rstrip("/")
        self._listening.set()

    def _run(self) -> None:
        try:
            self.summary = run_served(self.cfg, self.token, source=self.source, on_listen=self._on_listen)
        except BaseException as exc:  # noqa: BLE001 - raised again in the test's thread
            self.error = exc
            self._listening.set()

    def __enter__(self) -> "ServedRun":
        self._thread.start()
        if not self._listening.wait(60):
            raise TimeoutError("the served run did not start listening within 60 s")
        if self.error is not None:
            raise self.error
        return self

    def __exit__(self, *exc) -> None:
        self.source.stop.set()
        self._thread.join(60)
        if self._thread.is_alive():
            raise TimeoutError("the served run did not end within 60 s of its source")
        if self.error is not None and exc[0] is None:
            raise self.error


def wait_for(check, timeout_s: float = 20.0, every_s: float = 0.1, what: str = "the condition"):
    """Poll ``check()`` until it returns something truthy; returns it, or raises TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every_s)
    raise TimeoutError(f"{what} did not happen within {timeout_s:.0f} s")
