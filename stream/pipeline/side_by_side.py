"""Several runs at once, one thread each (several sources in one process: :mod:`stream.multi`)."""

from __future__ import annotations

import threading
from typing import Callable

from .. import signals


def run_side_by_side(work: list[tuple[str, Callable[[], None]]], poll_s: float = 0.2) -> None:
    """Call every ``(name, fn)`` at once, each in a normal thread named ``name``; return when all have returned.

    The calling (main) thread waits in short joins, so it stays free to take Ctrl-C / SIGTERM, which
    :func:`stream.signals.relay` then passes to every pipeline running in these threads (each stops at a frame
    boundary and its ``fn`` returns). ``fn`` must not raise: each run reports its own end."""
    threads = [threading.Thread(target=fn, name=name) for name, fn in work]
    with signals.relay():
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(poll_s)
