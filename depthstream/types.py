"""The data that flows through the pipeline.

Every type is a frozen dataclass; a stage returns a new value (``dataclasses.replace``) instead of
mutating the one it got, so a frame can be handed between threads without locks.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

DepthKind = Literal["metric", "relative+calibrated", "relative+autoscaled", "geometric", "size-prior"]


@dataclass(frozen=True, eq=False)
class Frame:
    """One decoded picture.

    image:       (H, W, 3) uint8, **BGR** colour order (OpenCV's), C-contiguous.
    index:       monotonic per source, starting at 0; a gap means frames were dropped before processing.
    pts_s:       media time in seconds from the container (None for cameras / images without one).
    captured_ns: ``time.monotonic_ns()`` when the frame was decoded; every latency and frame age is
                 measured from it.
    source_id:   the source as the user gave it, credentials redacted.
    """

    image: np.ndarray
    index: int
    pts_s: float | None
    captured_ns: int
    source_id: str

    def __post_init__(self) -> None:
        img = self.image
        if not (isinstance(img, np.ndarray) and img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3):
            got = f"{type(img).__name__} {getattr(img, 'dtype', '')} {getattr(img, 'shape', '')}"
            raise TypeError(f"Frame.image must be a (H, W, 3) uint8 BGR array, got {got}")

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


def _col(values, dtype, n: int, name: str, fill: float | None = None) -> np.ndarray:
    if values is None:
        return np.full((n,), np.nan if fill is None else fill, dtype=dtype)
    arr = np.asarray(values, dtype=dtype)
    if arr.shape != (n,):
        raise ValueError(f"Detections.{name} must have shape ({n},) to match xyxy, got {arr.shape}")
    return arr


# The per-track float32 columns of Detections (see its docstring), NaN until a tracker fills them.
_TRACK_COLUMNS = ("depth_filtered_m", "depth_filtered_std_m", "speed_mps", "speed_std_mps", "ttc_s", "ttc_std_s")


@dataclass(frozen=True, eq=False)
class Detections:
    """Boxes of one frame, as a struct of arrays (all of length N).

    xyxy:             (N, 4) float32, frame pixels, x1 < x2, y1 < y2.
    confidence:       (N,) float32 in [0, 1] (objectness x class score for YOLOX).
    class_id:         (N,) int32, index into the detector's class names.
    depth_m:          (N,) float32 metres along the optical axis; NaN until depth is assigned or when no
                      valid depth pixel fell in the box.
    depth_valid_frac: (N,) float32, share of the sampled pixels that had valid depth (NaN until assigned).
    depth_spread_m:   (N,) float32, interquartile range of the sampled depths in metres (NaN until assigned).
    depth_reliable:   (N,) bool, False where the distance is shown only as an estimate we cannot stand behind
                      (outside the depth source's valid range or domain, uncalibrated, too few valid pixels);
                      True by default. The JSONL and the overlay flag such boxes.
    depth_note:       (N,) object array of str, why a distance is not reliable, in words for the JSONL and the
                      summary (e.g. ``beyond fastdepth-224-nyu's range 0.5-10 m``); "" when nothing is to be said.
    track_id:         (N,) int64, the box's track across frames; -1 = not tracked.

    Per track (``stream.track``), NaN for an untracked box or before the filter has enough of its track:
    depth_filtered_m:     (N,) float32 metres, the track's distance after outlier rejection and smoothing
                          (``depth_m`` stays the raw per-frame value).
    depth_filtered_std_m: (N,) float32 metres, one standard deviation of ``depth_filtered_m``.
    speed_mps:            (N,) float32 metres per second, rate of change of the distance: negative = approaching.
    speed_std_mps:        (N,) float32 metres per second, one standard deviation of ``speed_mps``.
    ttc_s:                (N,) float32 seconds, time to contact at the current speed (distance / approach speed)
                          while the distance falls; NaN when it does not.
    ttc_std_s:            (N,) float32 seconds, one standard deviation of ``ttc_s`` (first-order propagation).

    Filter like numpy: ``dets[dets.depth_m < 2]``.
    """

    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray
    depth_m: np.ndarray = field(default=None)  # type: ignore[assignment]
    depth_valid_frac: np.ndarray = field(default=None)  # type: ignore[assignment]
    depth_spread_m: np.ndarray = field(default=None)  # type: ignore[assignment]
    depth_reliable: np.ndarray = field(default=None)  # type: ignore[assignment]
    track_id: np.ndarray = field(default=None)  # type: ignore[assignment]
    depth_filtered_m: np.ndarray = field(default=None)  # type: ignore[assignment]
    depth_filtered_std_m: np.ndarray = field(default=None)  # type: ignore[assignment]
    speed_mps: np.ndarray = field(default=None)  # type: ignore[assignment]
    speed_std_mps: np.ndarray = field(default=None)  # type: ignore[assignment]
    ttc_s: np.ndarray = field(default=None)  # type: ignore[assignment]
    ttc_std_s: np.ndarray = field(default=None)  # type: ignore[assignment]
    depth_note: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy, dtype=np.float32)
        if xyxy.size == 0:
            xyxy = np.zeros((0, 4), np.float32)
        elif xyxy.ndim != 2 or xyxy.shape[1] != 4:
            raise ValueError(f"Detections.xyxy must be an (N, 4) array of boxes (x1, y1, x2, y2), got shape {xyxy.shape}")
        n = xyxy.shape[0]
        set_ = object.__setattr__
        set_(self, "xyxy", xyxy)
        set_(self, "confidence", _col(self.confidence, np.float32, n, "confidence"))
        set_(self, "class_id", _col(self.class_id, np.int32, n, "class_id"))
        set_(self, "depth_m", _col(self.depth_m, np.float32, n, "depth_m"))
        set_(self, "depth_valid_frac", _col(self.depth_valid_frac, np.float32, n, "depth_valid_frac"))
        set_(self, "depth_spread_m", _col(self.depth_spread_m, np.float32, n, "depth_spread_m"))
        set_(self, "depth_reliable", _col(self.depth_reliable, bool, n, "depth_reliable", fill=True))
        set_(self, "track_id", _col(self.track_id, np.int64, n, "track_id", fill=-1))
        for name in _TRACK_COLUMNS:
            set_(self, name, _col(getattr(self, name), np.float32, n, name))
        set_(self, "depth_note", _col(self.depth_note, object, n, "depth_note", fill=""))

    @classmethod
    def empty(cls) -> "Detections":
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0,), np.int32))

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def __getitem__(self, index) -> "Detections":
        """Select boxes with a boolean mask, an index array or a slice; always returns Detections."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return Detections(
            self.xyxy[index],
            self.confidence[index],
            self.class_id[index],
            self.depth_m[index],
            self.depth_valid_frac[index],
            self.depth_spread_m[index],
            self.depth_reliable[index],
            self.track_id[index],
            **{name: getattr(self, name)[index] for name in _TRACK_COLUMNS},
            depth_note=self.depth_note[index],
        )

    def with_depth(self, depth_m, valid_frac, spread_m) -> "Detections":
        return dataclasses.replace(self, depth_m=depth_m, depth_valid_frac=valid_frac, depth_spread_m=spread_m)

    def with_trust(self, reliable, notes) -> "Detections":
        """A copy with ``depth_reliable`` and ``depth_note`` replaced (both (N,))."""
        return dataclasses.replace(self, depth_reliable=reliable, depth_note=notes)


@dataclass(frozen=True, eq=False)
class DepthMap:
    """Depth of every pixel of a frame, in **metres along the optical axis** (z-depth).

    metres: (H, W) float32 at the frame's resolution; NaN where depth is invalid (sky above a ground
            plane, a model's invalid output, beyond the source's range).
    source: what produced it, e.g. ``ground-plane`` or the model card's name.
    kind:   ``metric`` (a network trained in metres), ``relative+calibrated`` (a relative network with a
            scale/shift calibration), ``relative+autoscaled`` (a relative network scaled by references of known
            size, see stream/depth/autoscale.py), ``geometric`` (computed from the camera's pose, e.g. ground
            plane), ``size-prior`` (no map: NaN everywhere, each box's distance comes from its class's size).
    valid_range_m: (near, far) metres the source can measure (a model card's valid range, a ground plane's
            max depth); None = not stated. Distances outside it are flagged, and the overlay's colour scale uses it.
    state:  how far the source can be trusted right now, in words for the HUD and the JSONL, e.g.
            ``indoor, metric`` or ``uncalibrated``; empty = nothing to add.
    frame_index, pts_s, captured_ns: the frame the map was computed from (its ``Frame`` fields of the same
            names), set by the pipeline's depth stage; a map reused for later frames (``depth.every``) keeps
            them, so :meth:`age` tells how old it is. None: not stamped (a map made outside the pipeline).
    details: facts behind the metres for the JSONL's ``depth`` object (plain JSON values), e.g. the focal
            length the size priors used, a fitted scale and its spread, a cross-check's verdict; empty = none.
    """

    metres: np.ndarray
    source: str
    kind: DepthKind
    valid_range_m: tuple[float, float] | None = None
    state: str = ""
    frame_index: int | None = None
    pts_s: float | None = None
    captured_ns: int | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        m = self.metres
        if not (isinstance(m, np.ndarray) and m.dtype == np.float32 and m.ndim == 2):
            raise TypeError(f"DepthMap.metres must be a (H, W) float32 array, got {getattr(m, 'dtype', type(m))} {getattr(m, 'shape', '')}")

    @property
    def valid(self) -> np.ndarray:
        """(H, W) bool: pixels with a finite, positive depth."""
        with np.errstate(invalid="ignore"):
            return np.isfinite(self.metres) & (self.metres > 0)

    def stamped(self, frame: Frame) -> "DepthMap":
        """This map marked as computed from ``frame`` (the array is shared, not copied)."""
        return dataclasses.replace(self, frame_index=frame.index, pts_s=frame.pts_s, captured_ns=frame.captured_ns)

    def age(self, frame: Frame) -> tuple[int, float] | None:
        """How much older the map is than ``frame``: (frames, milliseconds), 0 for the frame's own map. The
        milliseconds are media time when both frames have one (what the scene did meanwhile), else capture
        time. None when the map is not stamped."""
        if self.frame_index is None:
            return None
        frames = frame.index - self.frame_index
        if self.pts_s is not None and frame.pts_s is not None:
            return frames, (frame.pts_s - self.pts_s) * 1e3
        return frames, (frame.captured_ns - (self.captured_ns or frame.captured_ns)) / 1e6


EventKind = Literal["entered", "left", "approaching"]


@dataclass(frozen=True)
class TrackEvent:
    """Something that happened to one track, once (``stream.track.events``).

    kind:        ``entered`` / ``left`` the distance band (with hysteresis and a minimum duration), or
                 ``approaching`` (time to contact below the configured value).
    reason:      why, in a few words, e.g. ``lost`` when a track ended while inside the band.
    track_id:    the track (as ``Detections.track_id``); class_id its latest box's class.
    frame_index: the frame on which it was decided; time_s that frame's time on the track clock
                 (media time for files, capture time for live feeds), seconds.
    depth_m, depth_std_m, speed_mps, speed_std_mps, ttc_s, ttc_std_s: the track's filtered values then,
                 in the units of the ``Detections`` columns of the same names (NaN: not known).
    reliable:    False when the depth source flagged the latest distance as one we cannot stand behind.
    """

    kind: EventKind
    track_id: int
    class_id: int
    frame_index: int
    time_s: float
    depth_m: float
    depth_std_m: float
    speed_mps: float
    speed_std_mps: float
    ttc_s: float
    ttc_std_s: float
    reliable: bool = True
    reason: str = ""


@dataclass(frozen=True, eq=False)
class Result:
    """Everything known about one frame as it travels through the stages.

    mask: (H, W) bool, True where the pixel lies inside the asked distance band (None: no band asked,
          or depth not computed yet).
    timings_ms: stage name -> milliseconds spent on this frame in that stage.
    events: what happened to tracks on this frame (``TrackEvent``), in the order decided.
    """

    frame: Frame
    depth: DepthMap | None = None
    mask: np.ndarray | None = None
    detections: Detections | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    events: tuple[TrackEvent, ...] = ()

    def timed(self, stage: str, ms: float, **changes) -> "Result":
        """A copy with ``changes`` applied and ``stage``'s time recorded."""
        return dataclasses.replace(self, timings_ms={**self.timings_ms, stage: ms}, **changes)
