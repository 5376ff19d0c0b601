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
- ``scene`` (optional): ``indoor`` | ``outdoor`` | ``driving``, what the camera films; a depth network whose
  card's ``domain`` does not cover it has every distance flagged unreliable (an indoor network on a street).
- ``depth_calibrations``: per depth model (its card's ``name``), how its output becomes metres on this camera:
  ``metres = scale * y + shift`` for ``output: metric`` or ``relative-depth``, ``1 / metres = scale * y + shift``
  for ``relative-inverse`` (the same meaning as a model card's ``calibration``), with the kind of fit, the
  number of samples, the residual and the range of distances the samples covered.

Every part carries a ``source``: how it was obtained (``chessboard``, ``datasheet``, ``known-distance``,
``rgbd``, ``published``, ``assumed``, ``manual``) and a free-text ``detail``.

The schema is validated like every other document (:mod:`depthstream.schema.adapter`): every problem is one
:class:`~depthstream.errors.ConfigError` line naming the file, the key, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, Strict, model_validator
from pydantic.dataclasses import dataclass

from depthstream.errors import ConfigError

from .adapter import read_yaml_mapping, validate
from .camera_yaml import profile_to_yaml
from .fields import Allowed, FiniteNumber, Guess, NonZero, Text, number

__all__ = [
    "SCENES", "SOURCE_METHODS", "Source", "Intrinsics", "Mounting", "DepthCalibration", "CameraProfile", "PixelIntrinsics",
    "load_profile", "save_profile", "ASPECT_TOLERANCE_PX",
]

SCENES = ("indoor", "outdoor", "driving")
SOURCE_METHODS = ("chessboard", "datasheet", "known-distance", "rgbd", "published", "assumed", "manual")
DISTORTION_LENGTHS = (4, 5, 8, 12, 14)
# A frame matches the profile's aspect ratio when its width is within this many pixels of
# height * (profile width / profile height): resizers round to whole pixels (1920x1080 -> 854x480).
ASPECT_TOLERANCE_PX = 1.0

SCHEMA = ConfigDict(extra="forbid", defer_build=True)  # built when the first profile is read or made

PositivePixels = Annotated[int, Strict(), Field(gt=0), Allowed("a positive integer of pixels")]
Focal = number(gt=0, noun="pixels")
Fov = number(gt=0, lt=180, noun="degrees")
Angle = number(gt=-90, lt=90, noun="degrees")
Metres = number(gt=0, noun="metres")
Residual = number(ge=0)
DISTORTION_FORMS = (f"{', '.join(map(str, DISTORTION_LENGTHS[:-1]))} or {DISTORTION_LENGTHS[-1]} coefficients in "
                    f"OpenCV's order [k1, k2, p1, p2, k3, ...]")


def _distortion_length(value: tuple[float, ...]) -> tuple[float, ...]:
    if len(value) not in DISTORTION_LENGTHS:
        raise ValueError(DISTORTION_FORMS)
    return value


@dataclass(frozen=True, config=SCHEMA, kw_only=True)
class Source:
    """How one part of a profile was obtained."""

    method: Annotated[Literal[SOURCE_METHODS], Guess()]  # type: ignore[valid-type]
    detail: Annotated[str, Strict()] = ""


@dataclass(frozen=True, config=SCHEMA, kw_only=True)
class Intrinsics:
    """Pinhole intrinsics at ``width`` x ``height`` (see the module docstring)."""

    width: PositivePixels
    height: PositivePixels
    fx: Focal | None = None
    fy: Focal | None = None
    hfov_deg: Fov | None = None
    vfov_deg: Fov | None = None
    dfov_deg: Fov | None = None
    cx: FiniteNumber | None = None
    cy: FiniteNumber | None = None
    distortion: Annotated[tuple[FiniteNumber, ...], AfterValidator(_distortion_length),
                          Allowed(DISTORTION_FORMS)] | None = None
    source: Source

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


@dataclass(frozen=True, config=SCHEMA, kw_only=True)
class Mounting:
    """Where a fixed camera sits above flat ground."""

    height_m: Metres
    pitch_deg: Angle
    roll_deg: Angle = 0.0
    source: Source


@dataclass(frozen=True, config=SCHEMA, kw_only=True)
class DepthCalibration:
    """How one depth model's output ``y`` becomes metres on this camera (see the module docstring)."""

    model: Text
    output: Annotated[Literal["metric", "relative-depth", "relative-inverse"], Guess()]
    fit: Annotated[Literal["scale", "scale-shift"], Guess()]
    scale: NonZero
    shift: FiniteNumber = 0.0
    samples: Annotated[int, Strict(), Field(gt=0), Allowed("a positive integer")]
    residual_abs_rel: Residual | None = None
    range_m: Annotated[tuple[Metres, Metres], Allowed("[nearest, farthest], metres > 0")]
    source: Source

    @model_validator(mode="after")
    def _consistent(self) -> "DepthCalibration":
        if self.fit == "scale" and self.shift != 0:
            raise ValueError(f"fit 'scale' has no shift, got shift {self.shift:g} (use fit: scale-shift)")
        if self.range_m[0] > self.range_m[1]:
            raise ValueError(f"range_m must be [nearest, farthest] metres, got {list(self.range_m)}")
        return self

    def to_metres(self, y: Any) -> Any:
        """Metres from model output ``y`` (a number or a numpy array); non-positive results are not metres."""
        z = self.scale * y + self.shift
        return 1.0 / z if self.output == "relative-inverse" else z


@dataclasses.dataclass(frozen=True)
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


@dataclass(frozen=True, config=SCHEMA, kw_only=True)
class CameraProfile:
    """One camera: intrinsics, mounting, depth calibrations (see the module docstring)."""

    version: Literal[1] = 1
    name: Text
    description: Annotated[str, Strict()] = ""
    scene: Annotated[Literal[SCENES], Guess()] | None = None  # type: ignore[valid-type]
    intrinsics: Intrinsics | None = None
    mounting: Mounting | None = None
    depth_calibrations: Annotated[tuple[DepthCalibration, ...],
                                  Allowed("a list of depth calibrations (see depth_calibrations in the profile's "
                                          "comments)")] = ()

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
        rest = tuple(c for c in self.depth_calibrations if c.model != calibration.model)
        return dataclasses.replace(self, depth_calibrations=rest + (calibration,))

    def to_yaml(self, header: str = "") -> str:
        """The profile as commented YAML (``header`` lines go first, as comments)."""
        data = dataclasses.asdict(self)
        if data.get("intrinsics"):
            for key in ("fx", "fy", "hfov_deg", "vfov_deg", "dfov_deg"):  # only the form in use is written
                if data["intrinsics"][key] is None:
                    del data["intrinsics"][key]
        return profile_to_yaml(data, header)


# -- files ---------------------------------------------------------------------------------------------


def load_profile(path: str | Path) -> CameraProfile:
    """Read and validate a camera profile; every problem is one ConfigError naming the file and the key."""
    path = Path(path)
    where = f"camera profile {path}"
    data = read_yaml_mapping(path, where, missing=f"{where}: file not found (write one with python -m stream calibrate, "
                                                  f"or see data/vtest_pets2009.camera.yaml for the format)")
    return validate(CameraProfile, data, where=f"{where}: ")


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
