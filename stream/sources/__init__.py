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
from pathlib import Path

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
