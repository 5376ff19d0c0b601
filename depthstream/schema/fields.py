"""Field types the schemas share: strict scalars with their bounds, each carrying the words that say what
is allowed, so an error message and the bound it enforces come from one declaration.

Values are strict: a YAML ``"0.4"`` (a string) is not a number, ``yes`` is not ``true``, ``1`` is not a
boolean and ``.nan`` / ``.inf`` are not numbers. An integer is accepted where a number (float) is asked for.
Lists stay lax (a YAML list becomes a tuple); their items are strict.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field, Strict, ValidationInfo


class Allowed:
    """What a field accepts, in words (``a number in [0, 1]``); the adapter puts it after ``expected``."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Allowed({self.text!r})"


class Guess:
    """Marks an enumeration whose misspelt value gets "did you mean" the closest choice (camera profiles' methods
    and outputs). Not every enumeration has it: values that look alike can mean different things (a detector
    layout ``yolo8`` is not ``yolox``)."""

    def __repr__(self) -> str:
        return "Guess()"


class SetByLoader:
    """Marks a field that the loader fills (e.g. the file a card was read from), not a key of the document."""

    def __repr__(self) -> str:
        return "SetByLoader()"


def _g(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else f"{v:g}"


def _range_text(noun: str, gt, ge, lt, le, integer: bool) -> str:
    lo, lo_open = (gt, True) if gt is not None else (ge, False)
    hi, hi_open = (lt, True) if lt is not None else (le, False)
    if lo is not None and hi is not None:
        if integer and not lo_open and not hi_open:
            return f"{noun} in {lo}..{hi}"
        return f"{noun} in {'(' if lo_open else '['}{_g(lo)}, {_g(hi)}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{noun} {'>' if lo_open else '>='} {_g(lo)}"
    if hi is not None:
        return f"{noun} {'<' if hi_open else '<='} {_g(hi)}"
    return noun


def number(*, gt: float | None = None, ge: float | None = None, lt: float | None = None, le: float | None = None,
           noun: str = "a number", note: str = "", text: str = "") -> Any:
    """A finite float (an integer is accepted) within the given bounds, e.g. ``number(gt=0, le=120,
    noun="seconds")`` -> allowed ``seconds in (0, 120]``; ``text`` says it in other words."""
    text = text or _range_text(noun, gt, ge, lt, le, integer=False) + (f" ({note})" if note else "")
    return Annotated[float, Strict(), Field(allow_inf_nan=False, gt=gt, ge=ge, lt=lt, le=le), Allowed(text)]


def integer(*, ge: int | None = None, le: int | None = None, noun: str = "an integer", note: str = "") -> Any:
    """An int (not a bool, not a float) within the given bounds, e.g. ``integer(ge=1, le=256)`` -> allowed
    ``an integer in 1..256``."""
    text = _range_text(noun, None, ge, None, le, integer=True) + (f" ({note})" if note else "")
    return Annotated[int, Strict(), Field(ge=ge, le=le), Allowed(text)]


def _non_zero(value: float) -> float:
    if value == 0.0:
        raise ValueError("a non-zero number")
    return value


MAX_TEXT = 4096  # characters of any string value (a path, a URL, a name)
MAX_NAME_BYTES = 255  # one name in a path (NAME_MAX of ext4, XFS, btrfs, tmpfs, ...)
MAX_PATH_BYTES = 4096  # a whole path (Linux's PATH_MAX)

Flag = Annotated[bool, Strict(), Allowed("true or false")]
NonZero = Annotated[float, Strict(), Field(allow_inf_nan=False), AfterValidator(_non_zero), Allowed("a non-zero number")]
Text = Annotated[str, Strict(), Field(min_length=1, max_length=MAX_TEXT), Allowed("a non-empty string")]
FiniteNumber = number()


def _short(name: str) -> str:
    return name if len(name) <= 30 else f"{name[:12]}...{name[-12:]}"


def fits_file_system(value: str) -> str:
    """A path the file system can hold: every name at most 255 bytes, the whole at most 4096 (a longer one fails
    deep inside the OS with "File name too long")."""
    for name in value.split("/"):
        size = len(name.encode("utf-8", "surrogateescape"))
        if size > MAX_NAME_BYTES:
            raise ValueError(f"a path whose every name is at most {MAX_NAME_BYTES} bytes ({_short(name)} is {size}); "
                             f"choose a shorter name")
    size = len(value.encode("utf-8", "surrogateescape"))
    if size > MAX_PATH_BYTES:
        raise ValueError(f"a path of at most {MAX_PATH_BYTES} bytes (this one has {size}); choose a shorter path")
    return value


def _resolve_path(value: str, info: ValidationInfo) -> str:
    """A path relative to the folder of the file that holds it (``base_dir`` in the validation context);
    ``~`` is the user's home. Without a context (built in code) the path is kept as given."""
    base = (info.context or {}).get("base_dir")
    if base is None:
        return value
    expanded = Path(value).expanduser()
    return str(expanded if expanded.is_absolute() else (Path(base) / expanded).resolve())


FilePath = Annotated[str, Strict(), Field(min_length=1, max_length=MAX_TEXT), AfterValidator(fits_file_system),
                     AfterValidator(_resolve_path), Allowed("a path (relative to the folder of the file that sets it)")]
OutputPath = Annotated[str, Strict(), Field(min_length=1, max_length=MAX_TEXT), AfterValidator(fits_file_system),
                       Allowed("a file or folder path")]
