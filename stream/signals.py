"""Ctrl-C (SIGINT) and SIGTERM for ``python -m stream``: at any moment, exit 130 / 143 with an MP4 and a JSONL that
hold the same frames.

This module imports nothing but the standard library, so ``python -m stream`` installs its handler before any other
import. What a signal does depends on where the run is:

- **importing** (``stream/__main__.py``'s own imports, before ``main()`` runs): the signal is noted; ``main()`` then
  exits at once (:func:`arm`). Nothing is raised inside an import.
- **starting** (config, source, models; no output file exists yet): the first signal raises ``KeyboardInterrupt``
  (``Terminated`` for SIGTERM) in the main thread, so whatever is loading stops and what was opened is closed.
  Anything that fails after a signal came (an import cut short inside a C extension) fails because of it: the CLI
  reports the signal, not that failure (:func:`received`).
- **running** (a pipeline hands out frames; :func:`stop_on_signal` registered its stop): the signal only asks the
  pipeline to stop at the next frame boundary. No exception is raised in the middle of writing a frame, so the MP4
  and the JSONL always end on the same frame.
- **finishing** (after the pipeline: the outputs are flushed and closed): signals are noted, nothing is raised.

Repeated signals never raise once frames flow: a second Ctrl-C cannot cut the MP4 short while it is being finished.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Callable, Iterator

HANDLED = (signal.SIGINT, signal.SIGTERM)
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


def ended_by(signum: int) -> str:
    """How the CLI says that ``signum`` ended a run: ``terminated (SIGTERM)`` or ``interrupted``."""
    return "terminated (SIGTERM)" if signum == signal.SIGTERM else "interrupted"


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C's KeyboardInterrupt so that the same cleanup runs."""

    signum = signal.SIGTERM


class _State:
    def __init__(self) -> None:
        self.first: int | None = None  # the first signal received (it decides the exit code)
        self.stops: list[Callable[[int], None]] = []  # running pipelines' stop requests, newest last
        self.frames_started = False  # a pipeline ran: from then on a signal never raises
        self.armed = False  # False while the CLI's own imports run: a signal is only noted
        self.previous: dict[int, object] = {}
        self.relay = False  # several pipelines in worker threads (stream.multi): a signal stops every one of them


_state = _State()


def _handler(signum: int, frame) -> None:
    first = _state.first is None
    if first:
        _state.first = signum
    if _state.stops:
        if first:
            for stop in list(_state.stops) if _state.relay else _state.stops[-1:]:
                stop(signum)
        return
    if _state.relay or not _state.armed or _state.frames_started or not first:
        return  # finishing the outputs, or a repeated signal: the first one already does what is needed
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def install(*, armed: bool = True) -> None:
    """Route SIGINT and SIGTERM through this module (main thread only; idempotent; :func:`restore` undoes it).
    ``armed=False``: until :func:`arm`, a signal is only noted."""
    if threading.current_thread() is not threading.main_thread():
        return
    _state.armed = armed or _state.armed
    for sig in HANDLED:
        current = signal.getsignal(sig)
        if current is not _handler:
            _state.previous[sig] = current
            signal.signal(sig, _handler)


def arm() -> None:
    """From now on the first signal raises while the run is starting; one noted before raises at once."""
    _state.armed = True
    if _state.first is not None and not _state.stops and not _state.frames_started:
        raise Terminated() if _state.first == signal.SIGTERM else KeyboardInterrupt()


def disarm() -> None:
    """The run is over and the process exits: from now on SIGINT and SIGTERM are ignored. (Python puts back the
    default action of every signal it handled when it shuts down, so a second Ctrl-C arriving then would kill the
    process by the signal after it had said how it ended; an ignored signal stays ignored.)"""
    if threading.current_thread() is not threading.main_thread():
        return
    _state.armed = False
    for sig in HANDLED:
        signal.signal(sig, signal.SIG_IGN)


def restore() -> None:
    """Put back the handlers :func:`install` replaced and forget the run's signals."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig, handler in _state.previous.items():
        signal.signal(sig, handler)
    _state.previous.clear()
    _state.armed = False
    reset()


def reset() -> None:
    """Forget the signals received and the pipelines seen (a new run in the same process)."""
    _state.first = None
    _state.stops.clear()
    _state.frames_started = False


def received() -> int | None:
    """The first signal received since :func:`install` / :func:`reset` (None: none)."""
    return _state.first


def relaying() -> bool:
    """True inside :func:`relay`: a pipeline in any thread stops on a signal (:func:`stop_on_signal`)."""
    return _state.relay


@contextlib.contextmanager
def relay() -> Iterator[None]:
    """While the block runs (several pipelines, each in a worker thread, the main thread waiting for them), a signal
    raises nothing in the main thread: it stops every pipeline that registered with :func:`stop_on_signal`, from any
    thread, and one that registers later at once (a source still opening when the signal came)."""
    _state.relay = True
    try:
        yield
    finally:
        _state.relay = False


@contextlib.contextmanager
def stop_on_signal(stop: Callable[[int], None]) -> Iterator[None]:
    """While the block runs (a pipeline handing out frames in the main thread, or in any thread inside
    :func:`relay`), a signal calls ``stop(signum)``
    instead of raising; after it, signals are only noted (the outputs are being finished). A signal that came just
    before the block is passed on at once."""
    _state.frames_started = True
    _state.stops.append(stop)
    try:
        if _state.first is not None:
            stop(_state.first)
        yield
    finally:
        _state.stops.remove(stop)
