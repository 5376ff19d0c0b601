"""Video sources: a file, the bundled demo clip, a folder or glob of images, a camera, a network stream,
a GStreamer pipeline; :func:`open_source` picks the one for what the user typed.

- :mod:`.base`: the :class:`Source` interface, :class:`Outage`, :func:`redact`.
- :mod:`.files`: FFmpeg (PyAV) video files and network streams, image folders and globs.
- :mod:`.opencv`: cameras and GStreamer pipelines through OpenCV.
- :mod:`.live`: :class:`ReconnectingSource`, which wraps every live source: a lost feed is reopened with
  exponential backoff, and the frame indices and timestamps jump over the gap.
"""

from __future__ import annotations

import glob
import os
import re
import stat
from pathlib import Path
from urllib.parse import urlsplit

from depthstream.errors import ConfigError, SourceNotFoundError
from depthstream.schema.config import SourceConfig

from depthstream.store import DEMO_CLIP, verify_shipped
from .base import IMAGE_EXTS, Outage, Source, redact
from .files import ImagesSource, VideoFileSource
from .live import ReconnectingSource
from .opencv import CameraSource, GStreamerSource, OpenCVSource, is_gstreamer_pipeline, opencv_has_gstreamer

__all__ = ["Source", "Outage", "redact", "open_source", "VideoFileSource", "ImagesSource", "OpenCVSource",
           "CameraSource", "GStreamerSource", "ReconnectingSource", "opencv_has_gstreamer", "is_gstreamer_pipeline",
           "IMAGE_EXTS", "NETWORK_SCHEMES"]

NETWORK_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")
_SLASHES_MISSING = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):/?(?!/)(.*)$", re.S)
V4L2_MAJOR = 81  # Linux's video4linux devices (/dev/video*, and the /dev/v4l/by-id/... links to them)


def _network_options(uri: str, live: SourceConfig) -> dict[str, str]:
    # A short probe: FFmpeg's default (5 s of stream analysis) delays the first frame and fills a
    # backlog of old frames; half a second finds the size and rate of a camera stream.
    options = {"analyzeduration": "500000"}
    if uri.lower().startswith(("rtsp://", "rtsps://")):
        options["rtsp_transport"] = live.rtsp_transport
    return options


def open_source(uri: str, live: SourceConfig | None = None) -> Source:
    """Pick the source for what the user typed (not yet opened). Live sources come wrapped in a
    :class:`ReconnectingSource` configured by ``live`` (the config section ``source``)."""
    live = live or SourceConfig()
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
        _check_url(uri)
        inner = VideoFileSource(uri, network=True, options=_network_options(uri, live),
                                open_timeout_s=live.open_timeout_s, read_timeout_s=live.read_timeout_s)
        return ReconnectingSource(inner, live)
    typo = _SLASHES_MISSING.match(uri)
    if typo and f"{typo.group(1).lower()}://" in NETWORK_SCHEMES and not Path(uri).exists():
        scheme, rest = typo.group(1), typo.group(2).lstrip("/")
        raise ConfigError(f"--source {redact(uri)}: a URL needs '//' after '{scheme}:' (did you mean "
                          f"{redact(f'{scheme}://{rest}')}?)")
    if any(ch in uri for ch in "*?["):
        paths = sorted(Path(p) for p in glob.glob(uri) if Path(p).suffix.lower() in IMAGE_EXTS)
        if not paths:
            raise SourceNotFoundError(f"no images match {uri} (looked for {', '.join(sorted(IMAGE_EXTS))})")
        return ImagesSource(uri, paths)
    path = Path(uri)
    kind = _special_file(path)
    if kind == "camera":
        return ReconnectingSource(CameraSource(uri, live.read_timeout_s), live)
    if kind is not None:
        raise ConfigError(f"--source {uri} is {kind}, not a video file; give a video file, a folder or glob of images, "
                          f"a camera (0 or /dev/video0) or a URL")
    if path.is_dir():
        paths = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTS)
        if not paths:
            raise SourceNotFoundError(f"folder {uri} holds no images (looked for {', '.join(sorted(IMAGE_EXTS))})")
        return ImagesSource(uri, paths)
    return VideoFileSource(uri)


def _check_url(uri: str) -> None:
    """A URL we can open: a network scheme (in any case: ``RTSP://`` is ``rtsp://``) and a host."""
    scheme = uri.split("://", 1)[0]
    if f"{scheme.lower()}://" not in NETWORK_SCHEMES:
        raise ConfigError(f"unsupported URL scheme in --source {redact(uri)}: expected one of "
                          f"{', '.join(s[:-3] for s in NETWORK_SCHEMES)}")
    try:
        host = urlsplit(uri).hostname
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket
        raise ConfigError(f"--source {redact(uri)} is not a valid URL ({exc}); expected "
                          f"{scheme.lower()}://host[:port]/path") from exc
    if not host:
        raise ConfigError(f"--source {redact(uri)}: the URL has no host; expected "
                          f"{scheme.lower()}://host[:port]/path")


def _special_file(path: Path) -> str | None:
    """What ``path`` is when it exists and is not a plain file or a folder: ``camera`` for a video4linux device,
    else words for the user (``a character device``); None for a plain file, a folder or nothing."""
    try:
        st = path.stat()
    except OSError:
        return None
    if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
        return None
    if stat.S_ISCHR(st.st_mode):
        return "camera" if os.major(st.st_rdev) == V4L2_MAJOR else "a character device"
    if stat.S_ISFIFO(st.st_mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(st.st_mode):
        return "a socket"
    return "a block device" if stat.S_ISBLK(st.st_mode) else "not a regular file"
