"""Live sources read through OpenCV's ``VideoCapture``: a local camera (V4L2) and a GStreamer pipeline."""

from __future__ import annotations

import contextlib
import re
import sys
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import cv2

from depthstream.errors import ConfigError, SourceError, SourceNotFoundError
from depthstream.types import Frame

from .base import Source, redact


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """OpenCV prints its own warnings to stderr when a device cannot be opened; our error says it."""
    logging_api = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging_api is None:
        yield
        return
    level = logging_api.getLogLevel()
    logging_api.setLogLevel(logging_api.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging_api.setLogLevel(level)


def _device_exists(path: str) -> bool:
    return Path(path).exists()


class OpenCVSource(Source):
    """A live source read through ``cv2.VideoCapture``: a camera (V4L2) or a GStreamer pipeline."""

    live = True

    def __init__(self, uri: str, read_timeout_s: float = 5.0) -> None:
        super().__init__(uri)
        self._cap = None
        self._read_timeout_s = read_timeout_s

    def _capture(self):
        """A new ``cv2.VideoCapture`` for this source (opened or not)."""
        raise NotImplementedError

    def _not_opened(self) -> SourceError:
        return SourceError(f"{self.source_id} could not be opened")

    def open(self) -> "OpenCVSource":
        with _quiet_opencv():
            cap = self._capture()
        if not cap.isOpened():
            cap.release()
            raise self._not_opened()
        # Bounds each read where the backend supports it (V4L2, FFmpeg); elsewhere the backend's own.
        cap.set(cv2.CAP_PROP_READ_TIMEOUT_MSEC, self._read_timeout_s * 1000)
        self._cap = cap
        return self

    @property
    def fps(self) -> Fraction | None:
        fps = self._cap.get(cv2.CAP_PROP_FPS) if self._cap is not None else 0
        return Fraction(fps).limit_denominator(1001) if fps and fps > 0 else None

    def read(self) -> Frame | None:
        with self._reading():
            if self._cap is None:
                raise SourceError(f"source {self.source_id} is not open")
            ok, image = self._cap.read()
            if not ok or image is None:
                raise SourceError(f"{self.source_id} stopped delivering frames")
            if image.ndim == 2:
                image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
            return self._frame(image, None)

    def _release(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()


class CameraSource(OpenCVSource):
    """A local camera through OpenCV's V4L2 backend: an index such as 0, or a device path."""

    def __init__(self, uri: str, read_timeout_s: float = 5.0) -> None:
        super().__init__(uri, read_timeout_s)
        self.source_id = f"camera {uri}"
        self.device = f"/dev/video{uri}" if uri.isdigit() else uri

    def open(self) -> "CameraSource":
        if sys.platform.startswith("linux") and not _device_exists(self.device):
            raise SourceNotFoundError(f"no camera {self.uri}: {self.device} does not exist; list the cameras with 'ls /dev/video*'")
        return super().open()

    def _capture(self):
        target: int | str = int(self.uri) if self.uri.isdigit() else self.uri
        backend = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
        return cv2.VideoCapture(target, backend)

    def _not_opened(self) -> SourceError:
        return SourceError(f"camera {self.uri} ({self.device}) could not be opened: it is busy, or not a video capture device")


def opencv_has_gstreamer() -> bool:
    """Whether this OpenCV build reads GStreamer pipelines (pip's opencv-python-headless does not)."""
    return re.search(r"GStreamer:\s*YES", cv2.getBuildInformation()) is not None


def is_gstreamer_pipeline(uri: str) -> bool:
    """``v4l2src device=/dev/video0 ! videoconvert ! appsink`` and the like."""
    return re.search(r"\s!\s", uri) is not None or re.search(r"(^|\s)appsink(\s|$)", uri) is not None


class GStreamerSource(OpenCVSource):
    """A GStreamer pipeline string ending in ``appsink`` (e.g. a Jetson CSI camera), read by OpenCV."""

    def __init__(self, uri: str, read_timeout_s: float = 5.0) -> None:
        super().__init__(uri, read_timeout_s)
        self.source_id = f"GStreamer pipeline '{redact(uri)}'"

    def open(self) -> "GStreamerSource":
        if not opencv_has_gstreamer():
            raise ConfigError(
                f"--source '{redact(self.uri)}' looks like a GStreamer pipeline, but this OpenCV has no GStreamer support (pip's "
                "opencv-python-headless is built without it): install an OpenCV built with GStreamer (on a "
                "Jetson, the system's python3-opencv) or give a camera index, a file or an rtsp:// URL"
            )
        return super().open()

    def _capture(self):
        return cv2.VideoCapture(self.uri, cv2.CAP_GSTREAMER)

    def _not_opened(self) -> SourceError:
        return SourceError(f"{self.source_id} did not start: check it with gst-launch-1.0 (it must end in appsink and give BGR frames)")


