"""The interface every depth provider implements."""

from __future__ import annotations

import abc

from depthstream.types import DepthKind, DepthMap, Frame


class DepthProvider(abc.ABC):
    """Base of every depth provider.

    ``source`` names what produced the depth (``ground-plane`` or the model card's name); ``kind`` is the
    :data:`~depthstream.types.DepthKind` of the maps it returns; ``valid_range_m`` (near, far metres it can
    measure, None = not stated) and ``state`` (words, e.g. ``indoor, metric``) are what its maps carry;
    ``domain_note`` says why none of its distances can be trusted on this source (a network out of its domain),
    None when nothing does. ``reads_pixels``: the map depends on the frame's pixels (a network), so a map
    reused for later frames (``depth.every``) ages; False: on the camera alone (a ground plane), computed for
    every frame. ``open()`` loads what the provider needs
    (a model), ``close()`` frees it; both are no-ops here. Use as a context manager:
    ``with provider: depth = provider(frame)``.
    """

    source: str
    kind: DepthKind
    valid_range_m: tuple[float, float] | None = None
    state: str = ""
    domain_note: str | None = None
    reads_pixels: bool = True

    def open(self) -> None:
        """Load what the provider needs; calling it again while open does nothing."""

    def close(self) -> None:
        """Free what ``open()`` loaded; safe to call more than once."""

    def __enter__(self) -> "DepthProvider":
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @abc.abstractmethod
    def __call__(self, frame: Frame) -> DepthMap:
        """Depth of ``frame``: a DepthMap of (frame.height, frame.width) float32 metres, NaN = invalid."""

