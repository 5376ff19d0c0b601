"""Video sources: a file, the bundled demo clip, a folder or glob of images, a camera, a network stream.

Every source has the same small interface, so the pipeline (and tests, with a fake) can inject any
producer: ``open()``, ``read() -> Frame | None`` (None: the source has ended), ``close()``, and the
facts the sinks need (``fps``, ``live``, ``frame_count``). ``read()`` stamps ``captured_ns`` right after
decoding; every latency is measured from it.
"""

from __future__ import annotations

import abc
import glob
import re
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from .errors import SourceError, SourceNotFoundError
from .models import DEMO_CLIP, verify_shipped
from .types import Frame

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
NETWORK_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")


def redact(uri: str) -> str:
    """Hide credentials: ``rtsp://user:pw@host/x`` -> ``rtsp://***@host/x``."""
    return re.sub(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@]*@", r"\1***@", uri)


class Source(abc.ABC):
    live: bool = False

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.source_id = redact(uri)
        self._index = 0

    @property
    def fps(self) -> Fraction | None:
        """Frames per second of the media, None where the source has none (images)."""
        return None

    @property
    def frame_count(self) -> int | None:
        return None

    def open(self) -> "Source":
        return self

    def close(self) -> None:
        return None

    def __enter__(self) -> "Source":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    def _frame(self, image: np.ndarray, pts_s: float | None) -> Frame:
        frame = Frame(np.ascontiguousarray(image), self._index, pts_s, time.monotonic_ns(), self.source_id)
        self._index += 1
        return frame

    @abc.abstractmethod
    def read(self) -> Frame | None:
        """The next frame, or None when the source has ended."""


class VideoFileSource(Source):
    """A video file (or network stream) decoded by PyAV (FFmpeg)."""

    def __init__(self, uri: str, *, live: bool = False, options: dict[str, str] | None = None) -> None:
        super().__init__(uri)
        self.live = live
        self._options = options or {}
        self._container = None
        self._stream = None
        self._frames = None

    def open(self) -> "VideoFileSource":
        import av

        if not self.live:
            path = Path(self.uri)
            if not path.exists():
                raise SourceNotFoundError(f"source file not found: {self.uri} (expected a video file, a folder of images, a camera index or a URL)")
            if path.is_dir():
                raise SourceError(f"{self.uri} is a folder with no images ({', '.join(sorted(IMAGE_EXTS))})")
        try:
            self._container = av.open(self.uri, options=self._options, timeout=(10.0, 10.0) if self.live else None)
        except (av.FFmpegError, OSError) as exc:
            raise SourceError(f"cannot open {self.source_id} as a video: {_ff_message(exc)}") from exc
        if not self._container.streams.video:
            self.close()
            raise SourceError(f"{self.source_id} has no video stream (is it an audio or a data file?)")
        self._stream = self._container.streams.video[0]
        self._frames = self._container.decode(self._stream)
        return self

    @property
    def fps(self) -> Fraction | None:
        rate = self._stream.average_rate if self._stream is not None else None
        return Fraction(rate) if rate else None

    @property
    def width(self) -> int:
        return int(self._stream.codec_context.width)

    @property
    def height(self) -> int:
        return int(self._stream.codec_context.height)

    @property
    def frame_count(self) -> int | None:
        n = self._stream.frames if self._stream is not None else 0
        return int(n) if n else None

    def read(self) -> Frame | None:
        import av

        if self._frames is None:
            raise SourceError(f"source {self.source_id} is not open")
        try:
            frame = next(self._frames)
        except StopIteration:
            return None
        except av.FFmpegError as exc:
            raise SourceError(f"decoding {self.source_id} failed at frame {self._index}: {_ff_message(exc)}") from exc
        return self._frame(frame.to_ndarray(format="bgr24"), float(frame.time) if frame.time is not None else None)

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = self._stream = self._frames = None


class ImagesSource(Source):
    """A folder of images (sorted by name) or a glob pattern."""

    def __init__(self, uri: str, paths: list[Path]) -> None:
        super().__init__(uri)
        self.paths = paths

    @property
    def frame_count(self) -> int:
        return len(self.paths)

    def read(self) -> Frame | None:
        if self._index >= len(self.paths):
            return None
        path = self.paths[self._index]
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise SourceError(f"cannot read image {path} (corrupt, or not an image)")
        return self._frame(image, None)


class CameraSource(Source):
    """A local camera through OpenCV (V4L2 on Linux): an index such as 0, or a device path."""

    live = True

    def __init__(self, uri: str) -> None:
        super().__init__(uri)
        self._cap = None

    def open(self) -> "CameraSource":
        target: int | str = int(self.uri) if self.uri.isdigit() else self.uri
        cap = cv2.VideoCapture(target)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"camera {self.uri} could not be opened (no such device, or it is busy); list cameras with 'ls /dev/video*'")
        self._cap = cap
        return self

    @property
    def fps(self) -> Fraction | None:
        fps = self._cap.get(cv2.CAP_PROP_FPS) if self._cap is not None else 0
        return Fraction(fps).limit_denominator(1001) if fps and fps > 0 else None

    def read(self) -> Frame | None:
        ok, image = self._cap.read()
        if not ok:
            raise SourceError(f"camera {self.uri} stopped delivering frames")
        return self._frame(image, None)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def _ff_message(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def open_source(uri: str) -> Source:
    """Pick the source for what the user typed (not yet opened)."""
    uri = str(uri).strip()
    if not uri:
        raise SourceError("--source is empty: give a video file, a folder or glob of images, a camera index, a URL or 'demo'")
    if uri == "demo":
        verify_shipped(DEMO_CLIP)
        return VideoFileSource(str(DEMO_CLIP))
    if uri.isdigit() or uri.startswith("/dev/video"):
        return CameraSource(uri)
    if "://" in uri:
        if not uri.lower().startswith(NETWORK_SCHEMES):
            raise SourceError(f"unsupported URL scheme in {redact(uri)}: expected one of {', '.join(s[:-3] for s in NETWORK_SCHEMES)}")
        options = {"rtsp_transport": "tcp"} if uri.lower().startswith("rtsp") else {}
        return VideoFileSource(uri, live=True, options=options)
    if any(ch in uri for ch in "*?["):
        paths = sorted(Path(p) for p in glob.glob(uri) if Path(p).suffix.lower() in IMAGE_EXTS)
        if not paths:
            raise SourceNotFoundError(f"no images match {uri} (looked for {', '.join(sorted(IMAGE_EXTS))})")
        return ImagesSource(uri, paths)
    path = Path(uri)
    if path.is_dir():
        paths = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTS)
        if not paths:
            raise SourceError(f"folder {uri} holds no images (looked for {', '.join(sorted(IMAGE_EXTS))})")
        return ImagesSource(uri, paths)
    return VideoFileSource(uri)
