"""Checking an output path before the first frame is written."""

from __future__ import annotations

import os
from pathlib import Path

from depthstream.errors import OutputPathError


def prepare_output_path(path: str | Path, what: str) -> Path:
    """Check that ``path`` can be created as a file and create its missing parent folders.

    Raises OutputPathError (a SinkError with exit code 2) saying what to fix when the path is a folder,
    a parent is a file, or the folder (or an existing file at the path) is not writable.
    """
    out = Path(path).expanduser()
    if out.is_dir():
        raise OutputPathError(f"cannot write the {what} to {out}: it is an existing folder; give a file path such as {out / ('out' + out.suffix if out.suffix else 'out')}")
    parent = out.parent
    ancestor = parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if ancestor.exists() and not ancestor.is_dir():
        raise OutputPathError(f"cannot write the {what} to {out}: {ancestor} is a file, not a folder; choose another output path or move that file")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputPathError(f"cannot write the {what} to {out}: folder {ancestor} is not writable (permission denied); choose a folder you can write to")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(f"cannot write the {what} to {out}: creating folder {parent} failed ({exc.strerror or exc}); choose another output path") from exc
    if out.exists() and not os.access(out, os.W_OK):
        raise OutputPathError(f"cannot write the {what} to {out}: the existing file is not writable (permission denied); remove it or choose another path")
    return out

