"""What can change while a run goes on (the distance band, the layout) and what a run shows of each frame.

:class:`RuntimeControl` is the one place the stages, the pipeline and the consumer loop read the band and the
layout from, once per frame; the browser view (``--serve``, :mod:`stream.web`) writes it. Writers replace the
whole :class:`Settings` under a lock (a new validated, frozen value); readers never see half a change.

One frame, one band. A frame passes through several threads (depth + mask, detect, per-box depth and band
filter, overlay), so :meth:`RuntimeControl.for_frame` pins the settings a frame was first asked about and gives
every later stage of that frame the same ones (the mask, the band filter, the track events and the overlay's
band legend all agree); the consumer releases the frame when it is written. A change reaches the next frame that
enters the depth stage: within a frame or two of the click.

The layout is read by the pipeline's capture thread before each frame (:class:`stream.pipeline.Pipeline`'s
``switch``); a change ends the running stage graph after the frames already in it and starts the other one.

:class:`LiveFrame` is what the consumer loop hands to a frame-publishing sink (``publish`` of
:func:`stream.app.run`): the annotated image and the result it was drawn from, by reference (nothing is copied;
neither is modified after it is published).
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from depthstream.errors import ConfigError
from depthstream.schema.adapter import validate
from depthstream.schema.config import BandConfig, Config
from depthstream.types import Result

__all__ = ["RuntimeControl", "Settings", "LiveFrame", "LAYOUTS"]

LAYOUTS = ("serial", "parallel")
_PINNED_MAX = 4096  # frames whose settings are pinned at once; far above any pipeline's frames in flight
_UNSET: Any = object()


@dataclass(frozen=True)
class Settings:
    """The band and the layout in force, and how many changes led to them (``version`` 0: the run's config)."""

    band: BandConfig
    layout: Literal["serial", "parallel"]
    version: int = 0

    @property
    def band_text(self) -> str | None:
        """The band in words for the HUD and the JSONL; None when no band is asked."""
        return self.band.describe() if self.band.active else None


class RuntimeControl:
    """The band and the layout of a running pipeline; thread-safe. Built from the run's config.

    ``layouts``: the layouts this run may switch to, and ``why_not`` what to say of the others (the size-prior
    depth source has no map for the serial layout to mask by)."""

    def __init__(self, band: BandConfig, layout: str, layouts: tuple[str, ...] = LAYOUTS, why_not: str = "") -> None:
        if layout not in layouts:
            raise ConfigError(f"layout must be one of {', '.join(layouts)}, got {layout!r}")
        self.layouts = layouts
        self._why_not = why_not
        self._lock = threading.Lock()
        self._settings = Settings(band, layout)  # type: ignore[arg-type]
        self._pinned: collections.OrderedDict[int, Settings] = collections.OrderedDict()

    @classmethod
    def from_config(cls, cfg: Config) -> "RuntimeControl":
        if cfg.depth.is_size_prior:
            return cls(cfg.band, cfg.pipeline.layout, ("parallel",),
                       "the serial layout masks the frame by a depth map, and depth.source size-prior gives none")
        return cls(cfg.band, cfg.pipeline.layout)

    @property
    def settings(self) -> Settings:
        """The settings in force now (for frames not yet pinned)."""
        return self._settings

    def layout(self) -> str:
        """The layout the next frame should run in (the pipeline's ``switch``)."""
        return self._settings.layout

    def update(self, *, closer_than: float | None = _UNSET, further_than: float | None = _UNSET,
               layout: str = _UNSET) -> Settings:
        """Change the band's bounds (None: no bound) and/or the layout; what is not given stays. The band is
        validated like the config's ``band`` section (ConfigError with one line, nothing changed)."""
        with self._lock:
            old = self._settings
            band = old.band
            if closer_than is not _UNSET or further_than is not _UNSET:
                data = {"closer_than": old.band.closer_than if closer_than is _UNSET else closer_than,
                        "further_than": old.band.further_than if further_than is _UNSET else further_than}
                band = validate(BandConfig, data, where="band: ", noun="band key")
            new_layout = old.layout if layout is _UNSET else layout
            if new_layout not in LAYOUTS:
                raise ConfigError(f"layout: got {new_layout!r}, expected one of {', '.join(LAYOUTS)}")
            if new_layout not in self.layouts:
                raise ConfigError(f"layout: {new_layout} is not possible in this run: {self._why_not}")
            self._settings = Settings(band, new_layout, old.version + 1)
            return self._settings

    def for_frame(self, index: int) -> Settings:
        """The settings of frame ``index``: pinned on the first call for it, the same on every later call."""
        with self._lock:
            pinned = self._pinned.get(index)
            if pinned is None:
                pinned = self._pinned[index] = self._settings
                if len(self._pinned) > _PINNED_MAX:
                    self._pinned.popitem(last=False)
            return pinned

    def release(self, index: int) -> None:
        """Frame ``index`` is written: forget its pinned settings."""
        with self._lock:
            self._pinned.pop(index, None)


@dataclass(frozen=True, eq=False)
class LiveFrame:
    """One written frame, for a frame-publishing sink.

    image:     the annotated (H, W, 3) uint8 BGR image, as written to the outputs.
    result:    what it was drawn from (detections after the band filter: the objects in the band).
    settings:  the band and layout this frame was processed with.
    fps:       frames per second over the last seconds (None at the start).
    events:    this frame's track event records (``stream.track.records``).
    names:     the detector's class names.
    dropped:   frames dropped so far (live sources: the newest is kept).
    """

    image: np.ndarray
    result: Result
    settings: Settings
    fps: float | None
    events: tuple[dict, ...]
    names: Sequence[str]
    dropped: int = 0
