"""Video sources: a file, the bundled demo clip, a folder or glob of images, a camera, a network stream,
a GStreamer pipeline.

Every source has the same small interface, so the pipeline (and tests, with a fake) can inject any
producer: ``open()``, ``read() -> Frame | None`` (None: the source has ended), ``close()``, and the
facts the sinks need (``fps``, ``live``, ``frame_count``). ``read()`` stamps ``captured_ns`` right after
decoding; every latency is measured from it.

Threads: ``read()`` is called by one thread (the pipeline's reader); ``close()`` may be called from any
thread at any time. A source that holds a decoder (FFmpeg, OpenCV) must never free it under a read in
progress, so a ``close()`` that arrives during a read is deferred to the end of that read
(:meth:`Source._reading`). Reads of live sources are bounded by timeouts (``LiveOptions``), so a deferred
close always happens.

Live sources (cameras, network streams, GStreamer pipelines) are wrapped in :class:`ReconnectingSource`:
a lost feed is reopened with exponential backoff, and the frame indices and timestamps jump over the gap.
Credentials never leave this module unredacted: ``source_id`` and every message use :func:`redact`.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import glob
import logging
import re
import sys
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from depthstream.errors import ConfigError, SourceError, SourceNotFoundError
from .models import DEMO_CLIP, verify_shipped
from depthstream.types import Frame

log = logging.getLogger(__name__)

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
NETWORK_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")

_USERINFO = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]*@")
_SECRET_QUERY = re.compile(r"(?i)([?&;](?:user|username|pass|passwd|password|pwd|token|key|auth|secret)=)[^&;\s]*")


def redact(text: str) -> str:
    """Hide credentials in a URL or in a message holding URLs: ``rtsp://user:pw@host/x`` ->
    ``rtsp://***@host/x``, and ``?user=a&password=b`` -> ``?user=***&password=***``."""
    return _SECRET_QUERY.sub(r"\1***", _USERINFO.sub(r"\1***@", str(text)))


@dataclass(frozen=True)
class LiveOptions:
    """How live sources are opened, read and reopened (``source.*`` in config.yaml)."""

    open_timeout_s: float = 5.0  # connecting (and reading the stream's header) may take this long
    read_timeout_s: float = 5.0  # no frame for this long: the feed is lost
    rtsp_transport: str = "tcp"  # tcp (interleaved, passes firewalls, no packet loss) | udp
    reconnect_attempts: int = 30  # per outage; 0 = a lost feed ends the run with an error
    reconnect_backoff_s: float = 0.5  # wait before the first attempt; doubles after each failed one
    reconnect_backoff_max_s: float = 2.0  # the longest wait between two attempts

    @classmethod
    def from_config(cls, section) -> "LiveOptions":
        """From the ``source`` section of the config (any object with these attributes)."""
        return cls(**{f.name: getattr(section, f.name) for f in dataclasses.fields(cls) if hasattr(section, f.name)})


@dataclass(frozen=True)
class Outage:
    """A live feed lost and (maybe) regained: when, for how long, how many reopen attempts."""

    lost_at_s: float  # time.monotonic() when the loss was noticed
    duration_s: float  # until the first frame after reconnecting (or until the run ended)
    attempts: int
    reason: str  # what the source reported, credentials redacted
    recovered: bool


class Source(abc.ABC):
    live: bool = False
    stills: bool = False  # True: the frames are unrelated pictures (photos), not one scene over time

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.source_id = redact(uri)
        self._index = 0
        self._state = threading.Lock()
        self._in_read = False
        self._close_pending = False

    @property
    def fps(self) -> Fraction | None:
        """Frames per second of the media, None where the source has none (images)."""
        return None

    @property
    def frame_count(self) -> int | None:
        return None

    @property
    def outages(self) -> list[Outage]:
        """Losses of a live feed so far (only :class:`ReconnectingSource` has any)."""
        return []

    def frame_name(self, index: int) -> str | None:
        """A file name for frame ``index`` when the output is a folder of images (the source image's own
        name for image sources; None: the writer numbers the frames)."""
        return None

    def open(self) -> "Source":
        return self

    def close(self) -> None:
        """Release the source (idempotent; any thread). During a read in another thread the release
        waits for that read to end, so a decoder is never freed under it."""
        with self._state:
            if self._in_read:
                self._close_pending = True
                return
        self._release()

    def _release(self) -> None:
        """Free what ``open()`` took (subclasses with resources override this, not ``close``)."""
        return None

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """Wraps the body of ``read()`` of a source that holds a decoder (see ``close``)."""
        with self._state:
            self._in_read = True
        try:
            yield
        finally:
            with self._state:
                self._in_read = False
                pending, self._close_pending = self._close_pending, False
            if pending:
                self._release()

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
    """A video file, or a network stream (``network=True``), decoded by PyAV (FFmpeg).

    A network stream is opened with ``av.open(..., timeout=(open_timeout_s, read_timeout_s))``: PyAV's
    interrupt callback makes FFmpeg give up on a connect, a header or a packet that takes longer, so a
    server that accepts the connection and then says nothing cannot hang a read. It is ``live`` unless it
    turns out to be a file served over HTTP(S) (it has a duration): that one is read like a file.
    """

    def __init__(self, uri: str, *, network: bool = False, options: dict[str, str] | None = None,
                 open_timeout_s: float = 5.0, read_timeout_s: float = 5.0) -> None:
        super().__init__(uri)
        self.network = network
        self.live = network
        self._options = options or {}
        self._timeouts = (open_timeout_s, read_timeout_s)
        self._container = None
        self._stream = None
        self._frames = None
        self._fps: Fraction | None = None

    def open(self) -> "VideoFileSource":
        import av

        if not self.network:
            path = Path(self.uri)
            if not path.exists():
                raise SourceNotFoundError(f"source file not found: {self.uri} (expected a video file, a folder of images, a camera index or a URL)")
            if path.is_dir():
                raise SourceNotFoundError(f"{self.uri} is a folder with no images ({', '.join(sorted(IMAGE_EXTS))})")
            if path.stat().st_size == 0:
                raise SourceError(f"cannot open {self.source_id} as a video: the file is empty (0 bytes)")
        t0 = time.monotonic()
        try:
            container = av.open(self.uri, options=self._options, timeout=self._timeouts if self.network else None)
        except (av.FFmpegError, OSError) as exc:
            raise SourceError(self._open_failure(exc, time.monotonic() - t0)) from exc
        if not container.streams.video:
            container.close()
            raise SourceError(f"{self.source_id} has no video stream (is it an audio or a data file?)")
        self._container = container
        self._stream = container.streams.video[0]
        rate = self._stream.average_rate or self._stream.guessed_rate
        self._fps = Fraction(rate) if rate else None
        self._frames = container.decode(self._stream)
        if self.network and not self.uri.lower().startswith(("rtsp://", "rtsps://")):
            self.live = not (container.duration and container.duration > 0)  # a file over HTTP has one
        return self

    def _open_failure(self, exc: Exception, elapsed_s: float) -> str:
        reason = _ff_message(exc)
        if not self.network:
            return f"cannot open {self.source_id} as a video: {reason} (not a video, or a truncated or corrupt file)"
        if isinstance(exc, ConnectionRefusedError):
            return f"cannot connect to {self.source_id}: connection refused (is the server running, and is the port right?)"
        if elapsed_s >= self._timeouts[0] * 0.95:
            return (f"no answer from {self.source_id} within {self._timeouts[0]:g} s (source.open_timeout_s): "
                    "the server accepted the connection but sent no video; check the URL's path and the server")
        return f"cannot open {self.source_id}: {reason}"

    @property
    def fps(self) -> Fraction | None:
        return self._fps

    @property
    def width(self) -> int:
        return int(self._stream.codec_context.width)

    @property
    def height(self) -> int:
        return int(self._stream.codec_context.height)

    @property
    def frame_count(self) -> int | None:
        n = self._stream.frames if self._stream is not None and not self.live else 0
        return int(n) if n else None

    def read(self) -> Frame | None:
        import av

        with self._reading():
            if self._frames is None:
                raise SourceError(f"source {self.source_id} is not open")
            t0 = time.monotonic()
            try:
                frame = next(self._frames)
            except StopIteration:
                return None
            except (av.FFmpegError, OSError) as exc:
                if self.network and time.monotonic() - t0 >= self._timeouts[1] * 0.95:
                    raise SourceError(f"no frame from {self.source_id} for {self._timeouts[1]:g} s (source.read_timeout_s)") from exc
                raise SourceError(f"decoding {self.source_id} failed at frame {self._index}: {_ff_message(exc)}") from exc
            return self._frame(frame.to_ndarray(format="bgr24"), float(frame.time) if frame.time is not None else None)

    def _release(self) -> None:
        container, self._container, self._stream, self._frames = self._container, None, None, None
        if container is not None:
            container.close()


class ImagesSource(Source):
    """A folder of images (sorted by name) or a glob pattern."""

    stills = True

    def __init__(self, uri: str, paths: list[Path]) -> None:
        super().__init__(uri)
        self.paths = paths

    @property
    def frame_count(self) -> int:
        return len(self.paths)

    def frame_name(self, index: int) -> str | None:
        return self.paths[index].name if 0 <= index < len(self.paths) else None

    def read(self) -> Frame | None:
        if self._index >= len(self.paths):
            return None
        path = self.paths[self._index]
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise SourceError(f"cannot read image {path} (corrupt, or not an image)")
        return self._frame(image, None)


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
                "--source looks like a GStreamer pipeline, but this OpenCV has no GStreamer support (pip's "
                "opencv-python-headless is built without it): install an OpenCV built with GStreamer (on a "
                "Jetson, the system's python3-opencv) or give a camera index, a file or an rtsp:// URL"
            )
        return super().open()

    def _capture(self):
        return cv2.VideoCapture(self.uri, cv2.CAP_GSTREAMER)

    def _not_opened(self) -> SourceError:
        return SourceError(f"{self.source_id} did not start: check it with gst-launch-1.0 (it must end in appsink and give BGR frames)")


class ReconnectingSource(Source):
    """A live source that is reopened when it is lost, with exponential backoff.

    Lost: ``read()`` raised ``SourceError`` (timeout, connection reset, camera unplugged) or the feed
    ended (a live feed has no end). The first ``open()`` does not retry: a wrong URL fails at once.
    Each outage waits ``backoff_s``, then twice that, ... up to ``backoff_max_s``, for at most
    ``attempts`` reopen attempts, then raises ``SourceError``. ``close()`` (from any thread) ends a wait
    at once. No frame is invented for the gap: the next frame's index jumps by the number of frames the
    feed would have delivered meanwhile (outage seconds x fps, at least 1), and its ``pts_s`` continues
    the media clock by the outage's length, so the gap shows in the JSONL.
    """

    def __init__(self, inner: Source, options: LiveOptions) -> None:
        super().__init__(inner.uri)
        self.inner = inner
        self.source_id = inner.source_id
        self.options = options
        self._closed = threading.Event()
        self._outages: list[Outage] = []
        self._lost: tuple[float, int, str] | None = None  # (monotonic, attempts, reason) during an outage
        self._fps: Fraction | None = None
        self._last: Frame | None = None  # the last frame handed out
        self._last_timed: Frame | None = None  # the last one with a media time
        self._rebase_pts = False  # after an outage: the next frame with a media time sets _pts_offset
        self._index_offset = 0
        self._pts_offset = 0.0

    @property
    def fps(self) -> Fraction | None:
        return self._fps

    @property
    def live(self) -> bool:
        """As the feed says once open (a file served over HTTP is not live: it ends, and is not reopened)."""
        return self.inner.live

    @property
    def frame_count(self) -> int | None:
        return None if self.inner.live else self.inner.frame_count

    @property
    def outages(self) -> list[Outage]:
        ongoing = []
        if self._lost is not None:
            lost_at, attempts, reason = self._lost
            ongoing = [Outage(lost_at, time.monotonic() - lost_at, attempts, reason, False)]
        return self._outages + ongoing

    def open(self) -> "ReconnectingSource":
        self._closed.clear()
        self.inner.open()
        self._fps = self.inner.fps
        return self

    def close(self) -> None:
        self._closed.set()
        self.inner.close()

    def read(self) -> Frame | None:
        if not self.inner.live:
            return self.inner.read()
        while not self._closed.is_set():
            try:
                frame = self.inner.read()
                reason = "the feed ended"
            except SourceError as exc:
                frame, reason = None, redact(str(exc))
            if frame is not None:
                return self._renumber(frame)
            if self._closed.is_set():
                return None
            self._reconnect(reason)
        return None

    def _reconnect(self, reason: str) -> None:
        opts = self.options
        lost_at = time.monotonic()
        if opts.reconnect_attempts == 0:
            raise SourceError(f"lost {self.source_id}: {reason} (reconnecting is off: source.reconnect_attempts is 0)")
        self.inner.close()
        wait = opts.reconnect_backoff_s
        log.warning("lost %s: %s; reconnecting (%d attempts at most)", self.source_id, reason, opts.reconnect_attempts)
        for attempt in range(1, opts.reconnect_attempts + 1):
            self._lost = (lost_at, attempt, reason)
            if self._closed.wait(wait):
                return
            try:
                self.inner.open()
            except SourceError as exc:
                reason = redact(str(exc))
                wait = min(wait * 2, opts.reconnect_backoff_max_s)
                if attempt < opts.reconnect_attempts:
                    log.warning("reconnect attempt %d of %d failed (%s); next in %.1f s", attempt, opts.reconnect_attempts, reason, wait)
                continue
            if self._closed.is_set():  # closed while it was reopening: nobody will read it any more
                self.inner.close()
                return
            log.warning("reconnected to %s after %.1f s", self.source_id, time.monotonic() - lost_at)
            return
        self._outages.append(Outage(lost_at, time.monotonic() - lost_at, opts.reconnect_attempts, reason, False))
        self._lost = None
        raise SourceError(
            f"lost {self.source_id} and could not reconnect: {opts.reconnect_attempts} attempts in "
            f"{time.monotonic() - lost_at:.1f} s failed (last: {reason}); check the camera or server, "
            f"or raise source.reconnect_attempts"
        )

    def _renumber(self, frame: Frame) -> Frame:
        if self._lost is not None:
            lost_at, attempts, reason = self._lost
            self._lost = None
            self._outages.append(Outage(lost_at, time.monotonic() - lost_at, attempts, reason, True))
            last = self._last
            if last is not None:
                gap_s = (frame.captured_ns - last.captured_ns) / 1e9
                fps = float(self._fps) if self._fps else 0.0
                self._index_offset = last.index + max(1, round(gap_s * fps)) - frame.index
                self._rebase_pts = self._last_timed is not None
        if self._rebase_pts and frame.pts_s is not None:
            # The reopened feed's clock starts again (RTSP: at 0): continue ours by the wall time that passed.
            prev = self._last_timed
            self._pts_offset = prev.pts_s + (frame.captured_ns - prev.captured_ns) / 1e9 - frame.pts_s
            self._rebase_pts = False
        pts = frame.pts_s + self._pts_offset if frame.pts_s is not None and not self._rebase_pts else None
        frame = dataclasses.replace(frame, index=frame.index + self._index_offset, pts_s=pts, source_id=self.source_id)
        self._last = frame
        if pts is not None:
            self._last_timed = frame
        return frame


def _ff_message(exc: Exception) -> str:
    """FFmpeg's reason without the file name PyAV appends (a URL may hold credentials)."""
    text = getattr(exc, "strerror", None) or str(exc).strip() or type(exc).__name__
    return redact(text.splitlines()[0])


def _network_options(uri: str, live: LiveOptions) -> dict[str, str]:
    # A short probe: FFmpeg's default (5 s of stream analysis) delays the first frame and fills a
    # backlog of old frames; half a second finds the size and rate of a camera stream.
    options = {"analyzeduration": "500000"}
    if uri.lower().startswith(("rtsp://", "rtsps://")):
        options["rtsp_transport"] = live.rtsp_transport
    return options


def open_source(uri: str, live: LiveOptions | None = None) -> Source:
    """Pick the source for what the user typed (not yet opened). Live sources come wrapped in a
    :class:`ReconnectingSource` configured by ``live``."""
    live = live or LiveOptions()
    uri = str(uri).strip()
    if not uri:
        raise ConfigError("--source is empty: give a video file, a folder or glob of images, a camera index, a URL or 'demo'")
    if uri == "demo":
        verify_shipped(DEMO_CLIP)
        return VideoFileSource(str(DEMO_CLIP))
    if is_gstreamer_pipeline(uri):
        return ReconnectingSource(GStreamerSource(uri, live.read_timeout_s), live)
    if uri.isdigit() or uri.startswith("/dev/video"):
        return ReconnectingSource(CameraSource(uri, live.read_timeout_s), live)
    if "://" in uri:
        if not uri.lower().startswith(NETWORK_SCHEMES):
            raise ConfigError(f"unsupported URL scheme in --source {redact(uri)}: expected one of {', '.join(s[:-3] for s in NETWORK_SCHEMES)}")
        inner = VideoFileSource(uri, network=True, options=_network_options(uri, live),
                                open_timeout_s=live.open_timeout_s, read_timeout_s=live.read_timeout_s)
        return ReconnectingSource(inner, live)
    if any(ch in uri for ch in "*?["):
        paths = sorted(Path(p) for p in glob.glob(uri) if Path(p).suffix.lower() in IMAGE_EXTS)
        if not paths:
            raise SourceNotFoundError(f"no images match {uri} (looked for {', '.join(sorted(IMAGE_EXTS))})")
        return ImagesSource(uri, paths)
    path = Path(uri)
    if path.is_dir():
        paths = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTS)
        if not paths:
            raise SourceNotFoundError(f"folder {uri} holds no images (looked for {', '.join(sorted(IMAGE_EXTS))})")
        return ImagesSource(uri, paths)
    return VideoFileSource(uri)
