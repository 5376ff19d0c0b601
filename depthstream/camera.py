"""Camera profiles: one camera's intrinsics (with the resolution they refer to), mounting and depth calibrations.

A profile is a small YAML file that belongs to one camera (the bundled clip has its own:
``data/vtest_pets2009.camera.yaml``). It is never applied to another source silently. Parts:

- ``intrinsics`` (optional): ``width`` x ``height``, the resolution the numbers refer to, and either a focal
  length in pixels (``fx`` / ``fy``; one alone means square pixels) or exactly one field of view
  (``hfov_deg`` | ``vfov_deg`` | ``dfov_deg``, square pixels); ``cx`` / ``cy`` (default: the image centre);
  optional ``distortion`` in OpenCV's order ``[k1, k2, p1, p2, k3, ...]`` (4, 5, 8, 12 or 14 values).
  Pixel coordinates follow OpenCV: the centre of the top-left pixel is (0, 0), so the image centre is
  ((width - 1) / 2, (height - 1) / 2). :meth:`CameraProfile.intrinsics_for` scales them to a frame's real size;
  a frame of another aspect ratio is an error (a crop or another sensor mode is not a scale).
- ``mounting`` (optional): ``height_m`` above flat ground, ``pitch_deg`` (positive = looking down),
  ``roll_deg`` (default 0), for ground-plane depth.
- ``depth_calibrations``: per depth model (its card's ``name``), how its output becomes metres on this camera:
  ``metres = scale * y + shift`` for ``output: metric`` or ``relative-depth``, ``1 / metres = scale * y + shift``
  for ``relative-inverse`` (the same meaning as a model card's ``calibration``), with the kind of fit, the
  number of samples, the residual and the range of distances the samples covered.

Every part carries a ``source``: how it was obtained (``chessboard``, ``datasheet``, ``known-distance``,
``rgbd``, ``published``, ``assumed``, ``manual``) and a free-text ``detail``.

Validation is pydantic v2; its errors become one-line :class:`~depthstream.errors.ConfigError` messages in
:func:`config_error_from_validation` (the one place to swap for a shared adapter).
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .camera_yaml import profile_to_yaml
from .errors import ConfigError

__all__ = [
    "SOURCE_METHODS", "Source", "Intrinsics", "Mounting", "DepthCalibration", "CameraProfile", "PixelIntrinsics",
    "load_profile", "save_profile", "config_error_from_validation", "ASPECT_TOLERANCE_PX",
]

SOURCE_METHODS = ("chessboard", "datasheet", "known-distance", "rgbd", "published", "assumed", "manual")
DISTORTION_LENGTHS = (4, 5, 8, 12, 14)
# A frame matches the profile's aspect ratio when its width is within this many pixels of
# height * (profile width / profile height): resizers round to whole pixels (1920x1080 -> 854x480).
ASPECT_TOLERANCE_PX = 1.0

Finite = Annotated[float, Field(allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Fov = Annotated[float, Field(gt=0, lt=180, allow_inf_nan=False)]
Angle = Annotated[float, Field(gt=-90, lt=90, allow_inf_nan=False)]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Part):
    """How one part of a profile was obtained."""

    method: Literal[SOURCE_METHODS]  # type: ignore[valid-type]
    detail: str = ""


class Intrinsics(_Part):
    """Pinhole intrinsics at ``width`` x ``height`` (see the module docstring)."""

    width: Annotated[int, Field(gt=0)]
    height: Annotated[int, Field(gt=0)]
    fx: Positive | None = None
    fy: Positive | None = None
    hfov_deg: Fov | None = None
    vfov_deg: Fov | None = None
    dfov_deg: Fov | None = None
    cx: Finite | None = None
    cy: Finite | None = None
    distortion: list[Finite] | None = None
    source: Source

    @field_validator("distortion")
    @classmethod
    def _distortion_length(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and len(value) not in DISTORTION_LENGTHS:
            raise ValueError(f"must have {', '.join(map(str, DISTORTION_LENGTHS))} coefficients in OpenCV's order "
                             f"[k1, k2, p1, p2, k3, ...], got {len(value)}")
        return value

    @model_validator(mode="after")
    def _one_focal(self) -> "Intrinsics":
        fovs = [k for k in ("hfov_deg", "vfov_deg", "dfov_deg") if getattr(self, k) is not None]
        focal = [k for k in ("fx", "fy") if getattr(self, k) is not None]
        if len(fovs) > 1 or (fovs and focal) or not (fovs or focal):
            got = ", ".join(fovs + focal) or "none"
            raise ValueError(f"give a focal length in pixels (fx and/or fy) or exactly one field of view "
                             f"(hfov_deg | vfov_deg | dfov_deg), got {got}")
        return self

    def focal_px(self) -> tuple[float, float]:
        """(fx, fy) in pixels at ``width`` x ``height``; a field of view or a lone fx / fy means square pixels."""
        if self.fx is not None or self.fy is not None:
            fx = self.fx if self.fx is not None else self.fy
            fy = self.fy if self.fy is not None else self.fx
            return float(fx), float(fy)
        if self.hfov_deg is not None:
            half, angle = self.width / 2.0, self.hfov_deg
        elif self.vfov_deg is not None:
            half, angle = self.height / 2.0, self.vfov_deg
        else:
            half, angle = math.hypot(self.width, self.height) / 2.0, self.dfov_deg
        f = half / math.tan(math.radians(angle) / 2.0)
        return f, f


class Mounting(_Part):
    """Where a fixed camera sits above flat ground."""

    height_m: Positive
    pitch_deg: Angle
    roll_deg: Angle = 0.0
    source: Source


class DepthCalibration(_Part):
    """How one depth model's output ``y`` becomes metres on this camera (see the module docstring)."""

    model: Annotated[str, Field(min_length=1)]
    output: Literal["metric", "relative-depth", "relative-inverse"]
    fit: Literal["scale", "scale-shift"]
    scale: Finite
    shift: Finite = 0.0
    samples: Annotated[int, Field(gt=0)]
    residual_abs_rel: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    range_m: tuple[Positive, Positive]
    source: Source

    @model_validator(mode="after")
    def _consistent(self) -> "DepthCalibration":
        if self.scale == 0:
            raise ValueError("scale must be non-zero, got 0")
        if self.fit == "scale" and self.shift != 0:
            raise ValueError(f"fit 'scale' has no shift, got shift {self.shift:g} (use fit: scale-shift)")
        if self.range_m[0] > self.range_m[1]:
            raise ValueError(f"range_m must be [nearest, farthest] metres, got {list(self.range_m)}")
        return self

    def to_metres(self, y: Any) -> Any:
        """Metres from model output ``y`` (a number or a numpy array); non-positive results are not metres."""
        z = self.scale * y + self.shift
        return 1.0 / z if self.output == "relative-inverse" else z


@dataclass(frozen=True)
class PixelIntrinsics:
    """Intrinsics at one frame size, in pixels (OpenCV convention), ready to use."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    distortion: tuple[float, ...] | None
    scale: float  # frame width / the profile's width

    @property
    def matrix(self) -> list[list[float]]:
        """The 3x3 camera matrix K as nested lists (``np.asarray(intr.matrix)`` for OpenCV)."""
        return [[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]]

    @property
    def hfov_deg(self) -> float:
        return math.degrees(2 * math.atan(self.width / (2 * self.fx)))

    @property
    def vfov_deg(self) -> float:
        return math.degrees(2 * math.atan(self.height / (2 * self.fy)))


class CameraProfile(_Part):
    """One camera: intrinsics, mounting, depth calibrations (see the module docstring)."""

    version: Literal[1] = 1
    name: Annotated[str, Field(min_length=1)]
    description: str = ""
    intrinsics: Intrinsics | None = None
    mounting: Mounting | None = None
    depth_calibrations: list[DepthCalibration] = []

    @model_validator(mode="after")
    def _unique_models(self) -> "CameraProfile":
        names = [c.model for c in self.depth_calibrations]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"depth_calibrations has more than one entry for model {', '.join(dup)}; keep one")
        return self

    def intrinsics_for(self, width: int, height: int) -> PixelIntrinsics:
        """The intrinsics scaled to a ``width`` x ``height`` frame.

        ConfigError when the profile has no intrinsics, or when the frame's aspect ratio differs from the
        resolution the intrinsics refer to (a crop or another sensor mode changes the focal length and the
        principal point in ways no scale recovers).
        """
        intr = self.intrinsics
        if intr is None:
            raise ConfigError(f"camera profile '{self.name}' has no intrinsics: add them (python -m stream calibrate "
                              f"chessboard PHOTOS... --profile FILE, or fx/fy or a field of view from the datasheet "
                              f"with the resolution it refers to)")
        if width <= 0 or height <= 0:
            raise ConfigError(f"frame size must be positive, got {width}x{height}")
        expected_w = height * intr.width / intr.height
        if abs(width - expected_w) > ASPECT_TOLERANCE_PX:
            raise ConfigError(
                f"camera profile '{self.name}': frame {width}x{height} has another aspect ratio than the "
                f"{intr.width}x{intr.height} its intrinsics refer to; a crop or another sensor mode is not a scale: "
                f"calibrate the camera at {width}x{height} (python -m stream calibrate chessboard ...) or write a "
                f"profile for that mode")
        s = width / intr.width
        sy = height / intr.height
        fx, fy = intr.focal_px()
        cx = intr.cx if intr.cx is not None else (intr.width - 1) / 2.0
        cy = intr.cy if intr.cy is not None else (intr.height - 1) / 2.0
        # Pixel centres sit at integer coordinates: a point at x maps to (x + 0.5) * s - 0.5.
        return PixelIntrinsics(width, height, fx * s, fy * sy, (cx + 0.5) * s - 0.5, (cy + 0.5) * sy - 0.5,
                               None if intr.distortion is None else tuple(intr.distortion), s)

    def depth_calibration_for(self, model: str) -> DepthCalibration | None:
        """The calibration of depth model ``model`` (its card's name), or None."""
        return next((c for c in self.depth_calibrations if c.model == model), None)

    def with_depth_calibration(self, calibration: DepthCalibration) -> "CameraProfile":
        """A copy whose calibration for ``calibration.model`` is ``calibration`` (replacing an older one)."""
        rest = [c for c in self.depth_calibrations if c.model != calibration.model]
        return self.model_copy(update={"depth_calibrations": rest + [calibration]})

    def to_yaml(self, header: str = "") -> str:
        """The profile as commented YAML (``header`` lines go first, as comments)."""
        data = self.model_dump(mode="python")
        if data.get("intrinsics"):
            for key in ("fx", "fy", "hfov_deg", "vfov_deg", "dfov_deg"):  # only the form in use is written
                if data["intrinsics"][key] is None:
                    del data["intrinsics"][key]
        return profile_to_yaml(data, header)


# -- errors --------------------------------------------------------------------------------------------


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names valid at ``loc``'s parent, for 'did you mean'."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or not (isinstance(current, type) and issubclass(current, BaseModel)):
            continue
        field = current.model_fields.get(part)
        if field is None:
            return []
        ann = field.annotation
        candidates = [a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not candidates:
            inner = [a for arg in getattr(ann, "__args__", ()) for a in getattr(arg, "__args__", (arg,))]
            candidates = [a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)]
        current = candidates[0] if candidates else None
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def config_error_from_validation(exc: ValidationError, where: str, model: type[BaseModel] = CameraProfile) -> ConfigError:
    """One line for the first error pydantic found: ``WHERE: KEY must ..., got VALUE`` (an unknown key first,
    with the closest valid one).

    The only place where pydantic's errors become ours (to be replaced by the shared schema adapter).
    """
    errors = exc.errors(include_url=False)
    err = next((e for e in errors if e.get("type") == "extra_forbidden"), errors[0])
    loc = tuple(err.get("loc", ()))
    key = "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(loc))
    value = err.get("input")
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        valid = _fields_at(model, loc)
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.5)
        hint = f"did you mean '{close[0]}'?" if close else f"valid keys here: {', '.join(valid)}"
        return ConfigError(f"{where}: unknown key '{key}' ({hint})")
    if kind == "missing":
        return ConfigError(f"{where}: missing required key '{key}'")
    msg = err.get("msg", "is not valid").removeprefix("Value error, ")
    shown = repr(value) if isinstance(value, str) else _short(value)
    if kind == "literal_error":
        expected = str((err.get("ctx") or {}).get("expected", ""))
        allowed = re.findall(r"'([^']*)'", expected) or [expected]
        close = difflib.get_close_matches(str(value), allowed, n=1, cutoff=0.5)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return ConfigError(f"{where}: {key} must be one of {', '.join(allowed)}, got {shown}{hint}")
    if kind == "value_error":
        return ConfigError(f"{where}: {key + ': ' if key else ''}{msg}")
    for prefix in ("Input should be ", "String should ", "List should ", "Tuple should "):
        if msg.startswith(prefix):
            msg = ("must be " if prefix == "Input should be " else "must ") + msg[len(prefix):]
            break
    else:
        msg = f"is not valid ({msg})"
    return ConfigError(f"{where}: {key or 'the document'} {msg}, got {shown}")


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, dict) else "a mapping"
    return text if len(text) <= 60 else text[:57] + "..."


# -- files ---------------------------------------------------------------------------------------------


def load_profile(path: str | Path) -> CameraProfile:
    """Read and validate a camera profile; every problem is one ConfigError naming the file and the key."""
    path = Path(path)
    where = f"camera profile {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{where}: file not found (write one with python -m stream calibrate, or see "
                          f"data/vtest_pets2009.camera.yaml for the format)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: cannot be read: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML: {' '.join(str(exc).split())}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: must be a mapping with at least 'name', got {type(data).__name__}")
    try:
        return CameraProfile.model_validate(data)
    except ValidationError as exc:
        raise config_error_from_validation(exc, where) from None


def save_profile(profile: CameraProfile, path: str | Path, *, force: bool = False, header: str = "") -> Path:
    """Write ``profile`` as commented YAML; an existing file is replaced only with ``force`` (atomically:
    a failed write leaves the old file as it was)."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"camera profile {path} is a folder; give a file name such as {path / 'camera.yaml'}")
    if path.exists() and not force:
        raise ConfigError(f"camera profile {path} already exists; choose another file or pass --force to replace it")
    if not path.parent.is_dir():
        raise ConfigError(f"camera profile {path}: folder {path.parent} does not exist")
    text = profile.to_yaml(header)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
