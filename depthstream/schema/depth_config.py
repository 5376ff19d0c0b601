"""The ``camera`` and ``depth`` sections of the configuration (:class:`depthstream.schema.config.Config`): which
camera profile, where metres come from (the ground plane, the bundled network, a card, the size priors), how a box
gets its distance, and the size priors' automatic scale and cross-check."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, Strict
from pydantic.dataclasses import dataclass

from depthstream.store import MODELS_DIR

from .bounds import (
    Aspect, BorderPixels, BoxErrorPixels, BoxFraction, Degrees180, DepthEvery, DepthEveryMax, DepthThreads, FarMetres,
    Fraction01, Frames, References, SCHEMA, Spread, Tolerance,
)
from .fields import MAX_TEXT, Allowed, FilePath, fits_file_system


BOX_STAT_FORMS = "auto | center_mean | median | percentile:P (0 <= P <= 100) | bottom"


def _box_stat(text: str) -> str:
    """``auto``, ``center_mean``, ``median``, ``bottom`` or ``percentile:P`` with 0 <= P <= 100."""
    name, colon, p = text.strip().partition(":")
    if not colon and name in ("auto", "center_mean", "median", "bottom"):
        return text
    if colon and name == "percentile":
        try:
            if 0.0 <= float(p) <= 100.0:
                return text
        except ValueError:
            pass
    raise ValueError(BOX_STAT_FORMS)


BUNDLED_DEPTH_CARD = str(MODELS_DIR / "fastdepth_224_nyu.yaml")
"""The bundled depth network's card (FastDepth-224, NYU Depth v2: metric, indoor), through the model store."""
DEPTH_SOURCE_FORMS = "auto | ground-plane | size-prior | a model card .yaml | an .onnx with a card beside it"


@dataclass(frozen=True, config=SCHEMA)
class CameraConfig:
    """``camera``: the source's camera profile (intrinsics with their resolution, mounting, depth calibrations).

    ``profile`` null: the source's own profile when it has one (the bundled clip, by name or by its sha256),
    else none. A profile belongs to one camera: it is never applied to another source unless given here.
    """

    profile: FilePath | None = None


@dataclass(frozen=True, config=SCHEMA)
class SizePriorConfig:
    """``depth.size_prior``: distances from the typical real size of a class (:mod:`stream.depth.sizeprior`)."""

    assumed_hfov_deg: Degrees180 = 70.0
    assumed_focal_spread: Spread = 0.15
    border_margin_px: BorderPixels = 2.0
    box_error_px: BoxErrorPixels = 2.0
    person_min_aspect: Aspect = 2.0
    max_spread: Spread = 0.25
    reference_max_spread: Spread = 0.12


@dataclass(frozen=True, config=SCHEMA)
class AutoScaleConfig:
    """``depth.autoscale``: a depth network's scale fitted to the size priors' distances (:mod:`stream.depth.autoscale`)."""

    mode: Literal["auto", "always", "never"] = "auto"
    min_references: References = 2.0
    max_spread: Spread = 0.2
    half_life_frames: Frames = 30
    scene_cut: Fraction01 = 0.1


@dataclass(frozen=True, config=SCHEMA)
class CrossCheckConfig:
    """``depth.crosscheck``: whether a depth source's box distances agree with the size priors (:mod:`stream.depth.crosscheck`)."""

    window_frames: Frames = 30
    min_references: References = 1.0
    tolerance: Tolerance = 0.35


@dataclass(frozen=True, config=SCHEMA)
class DepthConfig:
    """``depth``: where metres come from and how a box gets its distance.

    ``source``: ``auto`` = the camera profile's ground plane when the profile has a mounting, else the bundled
    depth network (:data:`BUNDLED_DEPTH_CARD`); ``ground-plane`` = the camera profile's ground plane (an error
    without one); ``size-prior`` = each box's distance from its class's typical size, no map (parallel layout);
    else a depth model card (or an .onnx with its card beside it).
    """

    source: Annotated[str, Strict(), Field(min_length=1, max_length=MAX_TEXT), AfterValidator(fits_file_system),
                      Allowed(DEPTH_SOURCE_FORMS)] = "auto"
    box_stat: Annotated[str, Strict(), Field(max_length=40), AfterValidator(_box_stat), Allowed(BOX_STAT_FORMS)] = "auto"
    roi: BoxFraction = 0.4
    threads: DepthThreads = 0
    ground_max_m: FarMetres = 100.0
    every: DepthEvery | Annotated[Literal["auto"], Allowed("auto")] = 1
    every_max: DepthEveryMax = 4
    size_prior: SizePriorConfig = SizePriorConfig()
    autoscale: AutoScaleConfig = AutoScaleConfig()
    crosscheck: CrossCheckConfig = CrossCheckConfig()

    @property
    def network_card(self) -> str | None:
        """The depth network's card a run may use: the one given, the bundled one for ``auto`` (sources without
        a mounting), None for ``ground-plane`` and ``size-prior``."""
        if self.source in ("ground-plane", "size-prior"):
            return None
        return BUNDLED_DEPTH_CARD if self.source == "auto" else self.source

    @property
    def is_size_prior(self) -> bool:
        """Distances per box from the classes' typical sizes, no depth map."""
        return self.source == "size-prior"
