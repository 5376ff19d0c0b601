"""One writer per output: an OS lock (``fcntl.flock``) on a small file beside each output, held for the whole run.

``out.mp4`` is guarded by ``.out.mp4.lock`` in the same folder. The lock is the kernel's: it goes with the process
that held it, however that process ends (a SIGKILL, a power loss), so a lock file left behind by a killed run never
blocks the next one. The file holds the holder's pid and start time, which a refused run names. A run removes its
lock file when it ends normally.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from depthstream.errors import SinkError

from .paths import disk_hint

try:
    import fcntl
except ImportError:  # Windows: no flock; the outputs are not guarded against a second writer there
    fcntl = None


def lock_path(path: str | Path) -> Path:
    p = Path(path).expanduser()
    return p.parent / f".{p.name}.lock"


class OutputLock:
    """An exclusive lock on the output ``path`` (``what``: "MP4", "JSONL", ... for the message).

    ``acquire()`` raises SinkError (exit code 1) naming the other run when one holds it; ``release()`` is idempotent.
    """

    def __init__(self, path: str | Path, what: str) -> None:
        self.path = Path(path).expanduser()
        self.what = what
        self.file = lock_path(self.path)
        self._fd: int | None = None

    def acquire(self) -> "OutputLock":
        if fcntl is None or self._fd is not None:
            return self
        while True:
            try:
                fd = os.open(self.file, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise self._failed(exc) from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 200).decode("utf-8", "replace").split()
                os.close(fd)
                who = (f"pid {holder[0]}, started {holder[1]}" if len(holder) >= 2 else "pid unknown")
                raise SinkError(f"cannot write the {self.what} to {self.path}: another run of python -m stream ({who}) is "
                                f"writing it; wait for it to end or choose another path") from None
            # The run that held it may have removed the file between our open and our lock: lock the file that is
            # there now, not a removed one.
            try:
                same = os.stat(self.file).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self._fd = fd
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()} {time.strftime('%H:%M:%S')}\n".encode())
        except OSError as exc:
            self.release()
            raise self._failed(exc) from exc
        return self

    def _failed(self, exc: OSError) -> SinkError:
        return SinkError(f"cannot write the {self.what} to {self.path}: creating its lock file {self.file.name} failed "
                         f"({exc.strerror or exc}){disk_hint(exc, self.path, mid_run=False)}")

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.file)  # while still locked: a run that opened it meanwhile finds it gone and makes its own
        os.close(fd)

    def __enter__(self) -> "OutputLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
