"""Which camera profile and which depth source a run uses: decided once, before any frame, and said in the
summary and in every JSONL line.

Camera profile (:func:`select_camera`): the one the user gives (``--camera FILE``, config ``camera.profile``),
else the source's own (the bundled clip: ``--source demo``, or the same file by its sha256), else none. A
profile is never applied to another source silently.

Depth source (:func:`select_depth`), config ``depth.source``:

- ``auto`` (default): the profile's ground plane when the profile has a mounting, else the bundled depth
  network (FastDepth-224: metric, indoor; :data:`~depthstream.schema.config.BUNDLED_DEPTH_CARD`);
- ``ground-plane``: the profile's ground plane; a source without such a profile is a ConfigError that says
  what to do;
- ``size-prior``: no map, each box's distance from its class's typical size (:mod:`stream.depth.sizeprior`),
  with the profile's focal length, else an assumed field of view;
- a model card (or an .onnx with its card beside it): that network, with the profile's depth calibration for
  it and its scene when there is a profile, wrapped so that the size priors may rescale it
  (:mod:`stream.depth.scaled`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from depthstream.hashing import sha256_of
from depthstream.schema.camera import CameraProfile, load_profile
from depthstream.schema.config import BUNDLED_DEPTH_CARD, Config
from depthstream.errors import ConfigError
from depthstream.store import DEMO_CLIP, PROJECT_ROOT

from .base import DepthProvider
from .ground import GroundPlaneDepth
from .network import open_depth_model
from .scaled import ScaledNetworkDepth
from .sizeprior import SizePriorDepth

__all__ = ["BUNDLED_PROFILE", "CameraChoice", "DepthChoice", "is_bundled_clip", "select_camera", "select_depth",
           "build_depth"]

BUNDLED_PROFILE = PROJECT_ROOT / "data" / "vtest_pets2009.camera.yaml"
"""The bundled clip's camera (PETS 2009 View_001): used for that clip only."""


@dataclass(frozen=True)
class CameraChoice:
    """The camera profile of a run (None: none) and how it was chosen, in words."""

    profile: CameraProfile | None = None
    path: Path | None = None
    how: str = "none: the source has no camera profile of its own and none was given (--camera)"

    @property
    def name(self) -> str | None:
        return self.profile.name if self.profile is not None else None


@dataclass(frozen=True)
class DepthChoice:
    """The depth source of a run: ``ground-plane`` or a model card's path, and why, in words."""

    source: str
    why: str

    @property
    def is_network(self) -> bool:
        return self.source not in ("ground-plane", "size-prior")


def is_bundled_clip(uri: str) -> bool:
    """``demo``, the bundled clip's file, or a file with the same bytes (same size, same sha256)."""
    if uri == "demo":
        return True
    path = Path(uri)
    try:
        if not path.is_file() or not DEMO_CLIP.is_file():
            return False
        if path.resolve() == DEMO_CLIP.resolve():
            return True
        return path.stat().st_size == DEMO_CLIP.stat().st_size and sha256_of(path) == sha256_of(DEMO_CLIP)
    except OSError:
        return False


def select_camera(cfg: Config, uri: str) -> CameraChoice:
    """The camera profile for source ``uri`` (see the module docstring); ConfigError for a bad profile file."""
    if cfg.camera.profile is not None:
        path = Path(cfg.camera.profile)
        return CameraChoice(load_profile(path), path, f"given: {path}")
    if is_bundled_clip(uri):
        return CameraChoice(load_profile(BUNDLED_PROFILE), BUNDLED_PROFILE,
                            f"the bundled clip's own: {BUNDLED_PROFILE.name}")
    return CameraChoice()


def select_depth(cfg: Config, camera: CameraChoice) -> DepthChoice:
    """The depth source (see the module docstring); ConfigError when ``ground-plane`` has no profile to use."""
    source = cfg.depth.source
    profile = camera.profile
    if source == "ground-plane":
        if profile is None or profile.mounting is None or profile.intrinsics is None:
            what = ("this source has no camera profile" if profile is None else
                    f"camera profile '{profile.name}' has no {'mounting' if profile.mounting is None else 'intrinsics'}")
            raise ConfigError(
                f"depth.source ground-plane needs a camera profile with a mounting (height_m, pitch_deg) and "
                f"intrinsics, and {what}: give --camera FILE (python -m stream calibrate writes one; "
                f"data/vtest_pets2009.camera.yaml shows the format), or use a depth network "
                f"(depth.source auto, or --depth-model CARD); the bundled clip's profile is for the bundled clip only")
        return DepthChoice("ground-plane", f"depth.source ground-plane, camera profile '{profile.name}'")
    if source == "auto":
        if profile is not None and profile.mounting is not None:
            if profile.intrinsics is None:
                raise ConfigError(f"camera profile '{profile.name}' has a mounting but no intrinsics: the ground "
                                  f"plane needs the focal length too; add intrinsics (python -m stream calibrate "
                                  f"chessboard ..., or a field of view from the datasheet with its resolution)")
            return DepthChoice("ground-plane", f"auto: camera profile '{profile.name}' has a mounting")
        why = ("no camera profile" if profile is None else f"camera profile '{profile.name}' has no mounting")
        return DepthChoice(BUNDLED_DEPTH_CARD, f"auto: {why}, so the bundled depth network")
    if source == "size-prior":
        how = (f"camera profile '{profile.name}'s focal length" if profile is not None and profile.intrinsics is not None
               else "an assumed field of view (no camera profile with intrinsics)")
        return DepthChoice("size-prior", f"depth.source size-prior: each box's distance from its class's size and {how}")
    return DepthChoice(source, "depth.source (--depth-model)")


def build_depth(cfg: Config, camera: CameraChoice, threads: int, engine_options=None,
                choice: DepthChoice | None = None) -> DepthProvider:
    """The depth provider of ``choice`` (default: :func:`select_depth`), not yet opened."""
    choice = choice or select_depth(cfg, camera)
    if choice.source == "size-prior":
        return SizePriorDepth(cfg.depth.size_prior, camera.profile)
    if not choice.is_network:
        return GroundPlaneDepth(camera.profile, cfg.depth.ground_max_m)
    # A network whose metres the size priors may rescale (stream.depth.scaled, stream.depth.sizing).
    return ScaledNetworkDepth(open_depth_model(choice.source, threads=max(1, threads), engine_options=engine_options,
                                               camera=camera.profile, autoscaled=cfg.depth.autoscale.mode != "never"))
