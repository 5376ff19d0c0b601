"""Bounded queues with named policies (``block``, ``latest``) whose every put/get is timed and checks one
stop event, and the one-frame handoff from the reader thread to the capture thread."""

from __future__ import annotations

import queue
import threading
from typing import Callable

EOS = object()  # end of stream marker, forwarded through every queue
_EMPTY = object()  # nothing there (an empty handoff, no item dropped)


class Stopped(Exception):
    """Raised inside a worker when the stop event is set while it waits on a queue."""



class BoundedQueue:
    """A bounded queue with a named policy and stop-aware, timed put/get."""

    def __init__(self, name: str, maxsize: int, policy: str, stop: threading.Event, timeout_s: float,
                 on_drop: Callable[[object], None] | None = None) -> None:
        if policy not in ("block", "latest"):
            raise ValueError(f"queue policy must be 'block' or 'latest', got {policy!r}")
        self.name = name
        self.policy = policy
        self.dropped = 0
        self._on_drop = on_drop  # latest: called (outside the queue's lock) with each item dropped
        self._q: queue.Queue = queue.Queue(maxsize)
        self._stop = stop
        self._timeout = timeout_s

    def put(self, item) -> None:
        if self.policy == "latest" and item is not EOS:
            # One producer per queue: after dropping the oldest there is room for our put.
            dropped = _EMPTY
            with self._q.mutex:
                if self._q.maxsize and len(self._q.queue) >= self._q.maxsize:
                    dropped = self._q.queue.popleft()
                    self.dropped += 1
                    self._q.not_full.notify()
            if dropped is not _EMPTY and self._on_drop is not None:
                self._on_drop(dropped)
        while True:
            if self._stop.is_set():
                raise Stopped
            try:
                self._q.put(item, timeout=self._timeout)
                return
            except queue.Full:
                continue

    def get(self):
        while True:
            if self._stop.is_set():
                raise Stopped
            try:
                return self._q.get(timeout=self._timeout)
            except queue.Empty:
                continue


class Slots:
    """At most ``n`` frames between the capture thread and the caller (the ``latest`` policy).

    The capture thread takes a slot before it takes a frame; the slot comes back when the caller is done with the
    frame, or when the frame is dropped on the way (a newer frame replaced it in a queue), or when what was taken
    is the end of the stream. ``in_use`` says how many are out.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self._free = threading.Semaphore(n)
        self._lock = threading.Lock()
        self._in_use = 0

    @property
    def in_use(self) -> int:
        return self._in_use

    def acquire(self, timeout_s: float) -> bool:
        if not self._free.acquire(timeout=timeout_s):
            return False
        with self._lock:
            self._in_use += 1
        return True

    def release(self, _item: object = None) -> None:
        with self._lock:
            if self._in_use == 0:
                raise RuntimeError("Slots.release without a slot out: a frame was given back twice")
            self._in_use -= 1
        self._free.release()


class Handoff:
    """One frame at a time from the reader thread to the capture thread.

    ``latest``: a frame the capture thread has not taken yet is replaced by a newer one (counted in
    ``dropped``), so the reader never waits. ``block``: the reader waits until the slot is free. Every
    wait is at most ``timeout_s`` and ends with ``Stopped`` once the stop event is set or the capture
    side has ``close()``d the handoff.
    """

    def __init__(self, policy: str, stop: threading.Event, timeout_s: float) -> None:
        self.policy = policy
        self.dropped = 0
        self._cond = threading.Condition()
        self._item = _EMPTY
        self._stop = stop
        self._closed = False
        self._timeout = timeout_s

    def _check(self) -> None:
        if self._stop.is_set() or self._closed:
            raise Stopped

    def offer(self, item) -> None:
        with self._cond:
            if self._item is not _EMPTY and self.policy == "latest" and item is not EOS:
                self._item = _EMPTY
                self.dropped += 1
            while self._item is not _EMPTY:
                self._check()
                self._cond.wait(self._timeout)
            self._check()
            self._item = item
            self._cond.notify_all()

    def take(self):
        with self._cond:
            while self._item is _EMPTY:
                self._check()
                self._cond.wait(self._timeout)
            item, self._item = self._item, _EMPTY
            self._cond.notify_all()
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


