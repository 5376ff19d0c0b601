"""Checking an output path before the first frame is written: where it is, that it is no input and no other
output, and what to say when writing it fails."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from depthstream.errors import OutputPathError

SYNC_S = 1.0  # the MP4 and the JSONL are synced to the disk at most this often: a power loss keeps all but ~1 s


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



def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name the same file: through a symbolic or a hard link too, existing or not yet."""
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    try:
        if pa.exists() and pb.exists():
            return os.path.samefile(pa, pb)
    except OSError:
        pass
    return pa.resolve() == pb.resolve()


def refuse_outputs_over_inputs(outputs: dict[str, str], inputs: dict[str, str | Path]) -> None:
    """Refuse (OutputPathError, exit code 2) an output that is an input or another output.

    outputs: flag -> path, e.g. {"--output": "out.mp4", "--jsonl": "out.jsonl"};
    inputs:  what the file is -> path, e.g. {"the source video": "clip.mp4", "the config file": "run.yaml"}.
    A link (symbolic or hard) to an input is the input.
    """
    flags = list(outputs)
    for i, a in enumerate(flags):
        for b in flags[i + 1:]:
            if same_file(outputs[a], outputs[b]):
                raise OutputPathError(f"{a} and {b} are the same file ({outputs[a]}): each would overwrite the other; "
                                      f"give them different paths")
    for flag, out in outputs.items():
        for what, inp in inputs.items():
            if Path(inp).is_file() and same_file(out, inp):
                link = ("" if Path(out).expanduser().absolute() == Path(inp).expanduser().absolute()
                        else f" ({inp}, through a link)")
                raise OutputPathError(f"{flag} {out} is {what}{link}: writing it would destroy it; choose another path")


def refuse_replacing_a_non_jsonl(path: str | Path, flag: str = "--jsonl") -> None:
    """An existing file at the JSONL's path is replaced only if it is a JSONL file (an earlier run's): a model, a
    video, a config or notes given there by mistake are refused (OutputPathError, exit code 2)."""
    p = Path(path).expanduser()
    if not p.is_file() or p.stat().st_size == 0:
        return
    with open(p, "rb") as f:
        head = f.read(4096)
    if b"\0" in head or not head.lstrip().startswith(b"{"):
        raise OutputPathError(f"{flag} {path} exists and is not a JSONL file (its first line is not a JSON object): "
                              f"refusing to replace it; remove it or choose another path")


def disk_hint(exc: BaseException, path: str | Path, *, mid_run: bool = True) -> str:
    """What to add to a failed write's message: how to fix a full disk or quota (empty for other failures);
    ``mid_run``: frames were being written, and what was written before stays."""
    if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
        kept = " (the MP4 and the JSONL keep the frames written before)" if mid_run else ""
        return f"; the disk holding {path} is full: free space there or write the outputs elsewhere{kept}"
    return ""
