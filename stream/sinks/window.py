"""``--show``: the annotated video in a desktop window, drawn with Tk (Python's own ``tkinter``).

Why Tk and not ``cv2.imshow``: the product depends on one OpenCV wheel, ``opencv-python-headless``, which has no
window support. Installing ``opencv-python`` beside it puts two builds into the same ``cv2`` folder, and
uninstalling either breaks ``import cv2``. Tk comes with Python (on Debian/Ubuntu system Pythons:
``apt-get install python3-tk``), needs no pip package and leaves ``cv2`` alone. Frames reach Tk as binary PPM
(``PhotoImage(data=..., format="PPM")``): no Pillow, about 3 ms for a 768x576 frame.

The window is created, fed and closed by the thread that runs the consumer loop (``stream.app.run``'s, through
:class:`stream.outputs.Outputs`), as Tk requires; ``write`` processes the window's events itself, so no Tk main
loop runs.
"""

from __future__ import annotations

import contextlib
import os
import sys
from types import TracebackType

import numpy as np

from depthstream.errors import SinkError

SHOW_NEEDS = "--show needs a desktop window (Tk)"
TK_HINT = ("this Python has no tkinter: install Tk for it (Debian/Ubuntu system Python: apt-get install python3-tk; "
           "python.org and conda Pythons include it)")


class WindowSink:
    """Show frames in a desktop window; ``write`` returns False when the user presses q or Esc or closes it.

    Needs ``tkinter`` and, on Linux, a display (DISPLAY or WAYLAND_DISPLAY). ``open()`` checks both and
    raises SinkError with one line saying what is missing.
    """

    _QUIT_KEYS = ("q", "Q", "Escape")

    def __init__(self, title: str = "stream") -> None:
        self.title = title
        self._root = None
        self._label = None
        self._photo = None
        self._quit = False
        self._closed = False

    def open(self) -> "WindowSink":
        """Open the window (idempotent). Raises SinkError when Tk or a display is missing."""
        if self._closed:
            raise SinkError(f"window {self.title!r} is already closed; create a new WindowSink")
        if self._root is not None:
            return self
        problems = []
        try:
            import tkinter
        except ImportError:
            tkinter = None
            problems.append(TK_HINT)
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            problems.append("DISPLAY is not set (nor WAYLAND_DISPLAY): run it in a desktop session, or drop --show and "
                            "use --output")
        if problems:
            raise SinkError(f"{SHOW_NEEDS}: " + "; ".join(problems))
        try:
            root = tkinter.Tk()
        except tkinter.TclError as exc:
            raise SinkError(f"{SHOW_NEEDS}: opening a window failed ({' '.join(str(exc).split())}); check DISPLAY, or "
                            f"drop --show and use --output") from exc
        root.title(self.title)
        root.protocol("WM_DELETE_WINDOW", self._request_quit)
        for key in self._QUIT_KEYS:
            root.bind(f"<KeyPress-{key}>", lambda event: self._request_quit())
        self._label = tkinter.Label(root, borderwidth=0)
        self._label.pack()
        self._root = root
        return self

    def _request_quit(self) -> None:
        self._quit = True

    def write(self, image: np.ndarray) -> bool:
        """Show a (H, W, 3) uint8 BGR image; False once the user pressed q / Esc or closed the window."""
        import tkinter

        self.open()
        if self._quit:
            return False
        rgb = np.ascontiguousarray(image[..., ::-1])
        h, w = rgb.shape[:2]
        try:
            self._photo = tkinter.PhotoImage(data=b"P6 %d %d 255\n" % (w, h) + rgb.tobytes(), format="PPM")
            self._label.configure(image=self._photo)
            self._root.update()
        except tkinter.TclError as exc:
            if self._quit:
                return False
            raise SinkError(f"showing a frame in window {self.title!r} failed: {' '.join(str(exc).split())}") from exc
        return not self._quit

    def close(self) -> None:
        """Destroy the window (idempotent). A window the user already closed is not an error."""
        if self._closed:
            return
        self._closed = True
        root, self._root, self._photo, self._label = self._root, None, None, None
        if root is not None:
            import tkinter

            with contextlib.suppress(tkinter.TclError):  # the window manager already destroyed it
                root.destroy()

    def __enter__(self) -> "WindowSink":
        return self.open()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
