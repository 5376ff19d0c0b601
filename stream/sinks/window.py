"""A desktop window (``--show``)."""

from __future__ import annotations

import contextlib
import os
import sys
from types import TracebackType

import cv2
import numpy as np

from depthstream.errors import SinkError

_GUI_HINT = "pip install opencv-python (or the 'gui' extra)"
_SHOW_NEEDS = "--show needs OpenCV with GUI support and a display"


def _opencv_has_gui() -> bool:
    """False when OpenCV's build information says it was built without any GUI backend (headless)."""
    for line in cv2.getBuildInformation().splitlines():
        key, _, value = line.strip().partition(":")
        if key.strip() == "GUI":
            return value.strip().upper() not in ("NONE", "NO", "")
    return True


class WindowSink:
    """Show frames in a desktop window; ``write`` returns False when the user presses q or Esc.

    Needs OpenCV built with a GUI (the ``opencv-python`` wheel, not ``opencv-python-headless``) and,
    on Linux, a display (DISPLAY or WAYLAND_DISPLAY). ``open()`` checks both and raises SinkError.
    """

    _QUIT_KEYS = (ord("q"), ord("Q"), 27)

    def __init__(self, title: str = "stream") -> None:
        self.title = title
        self._open = False
        self._closed = False

    def open(self) -> "WindowSink":
        """Open the window (idempotent). Raises SinkError when no GUI or no display is available."""
        if self._closed:
            raise SinkError(f"window {self.title!r} is already closed; create a new WindowSink")
        if self._open:
            return self
        problems = []
        if not _opencv_has_gui():
            problems.append(f"this OpenCV has no window support (the opencv-python-headless wheel): {_GUI_HINT}")
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            problems.append("DISPLAY is not set (nor WAYLAND_DISPLAY): run it in a desktop session, or drop --show and use --output")
        if problems:
            raise SinkError(f"{_SHOW_NEEDS}: " + "; ".join(problems))
        try:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
        except cv2.error as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise SinkError(f"{_SHOW_NEEDS}: opening a window failed ({reason}); {_GUI_HINT}") from exc
        self._open = True
        return self

    def write(self, image: np.ndarray) -> bool:
        """Show a (H, W, 3) uint8 BGR image; False when the user pressed q / Esc or closed the window."""
        self.open()
        try:
            cv2.imshow(self.title, image)
            key = cv2.waitKey(1) & 0xFF
            visible = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE)
        except cv2.error as exc:
            raise SinkError(f"showing a frame in window {self.title!r} failed: {exc}") from exc
        return key not in self._QUIT_KEYS and visible >= 1

    def close(self) -> None:
        """Destroy the window (idempotent). A window the user already closed is not an error."""
        if self._closed:
            return
        self._closed = True
        if self._open:
            self._open = False
            with contextlib.suppress(cv2.error):
                cv2.destroyWindow(self.title)
                cv2.waitKey(1)

    def __enter__(self) -> "WindowSink":
        return self.open()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
