"""``POST /api/detect``: what an upload is, the limits it must keep, and where its results are kept.

An upload is read into a fresh folder of the result store as it arrives (never more than ``serve.max_upload_mb``),
then probed by its content, not its name: FFmpeg (PyAV) reads the container's header, and only the image and video
formats below are taken. An image becomes a one-picture folder (``python -m stream --source FOLDER``: no tracks,
the photo's own name); a video a file (tracks, an MP4 result). Width and height are checked from the header before
anything is decoded, a video's duration too.
"""

from __future__ import annotations

import math
import re
import secrets
import shutil
import tempfile
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from depthstream.schema.config import ServeConfig

# FFmpeg's name of a container -> the file extension the product's sources read it by.
IMAGE_FORMATS = {"jpeg_pipe": ".jpg", "png_pipe": ".png", "bmp_pipe": ".bmp", "webp_pipe": ".webp",
                 "tiff_pipe": ".tiff"}
VIDEO_FORMATS = {"mov,mp4,m4a,3gp,3g2,mj2": ".mp4", "matroska,webm": ".mkv", "avi": ".avi", "mpegts": ".ts",
                 "gif": ".gif"}
TAKEN = "JPEG, PNG, BMP, WebP or TIFF images; MP4/MOV, MKV/WebM, AVI, MPEG-TS or GIF videos"


class UploadError(Exception):
    """An upload refused, with the HTTP status and one line that says what to send instead."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Probe:
    """What an upload holds, from its header."""

    kind: str  # image | video
    format: str  # FFmpeg's container name
    ext: str  # the extension it is stored under
    width: int
    height: int
    fps: Fraction | None
    duration_s: float | None  # videos: from the container, else frames / rate; None: not stated


def safe_name(name: str | None, default: str = "upload") -> str:
    """The stem of a client's file name, reduced to letters, digits, ``._-`` (no path, at most 80 characters)."""
    stem = Path((name or "").replace("\\", "/")).stem
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._")[:80]
    return stem or default


def probe(path: Path, shown: str, limits: ServeConfig) -> Probe:
    """Probe ``path`` (``shown``: the client's name, for messages); UploadError when it is not an image or a video
    this product takes, or exceeds the limits."""
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as exc:
        raise UploadError(415, f"{shown} is not an image or a video ({type(exc).__name__}: FFmpeg cannot read it); "
                               f"send {TAKEN}") from exc
    with container:
        fmt = container.format.name if container.format is not None else "unknown"
        streams = container.streams.video
        codec = streams[0].codec_context.name if streams and streams[0].codec_context is not None else None
        if fmt not in IMAGE_FORMATS and fmt not in VIDEO_FORMATS or codec is None:
            what = f"'{fmt}' data" + ("" if codec or not streams else " without a decoder")
            raise UploadError(415, f"{shown} is {what}, not an image or a video this view takes; send {TAKEN}")
        stream = streams[0]
        width, height = int(stream.codec_context.width), int(stream.codec_context.height)
        if width <= 0 or height <= 0:
            raise UploadError(415, f"{shown} is cut short or damaged: its {fmt} header states no picture size; "
                                   f"send a whole file ({TAKEN})")
        if max(width, height) > limits.max_side_px:
            raise UploadError(413, f"{shown} is {width}x{height} pixels; this view takes at most {limits.max_side_px} "
                                   f"pixels a side (serve.max_side_px): scale it down")
        if fmt in IMAGE_FORMATS:
            return Probe("image", fmt, IMAGE_FORMATS[fmt], width, height, None, None)
        fps = stream.average_rate or stream.guessed_rate
        duration = _duration_s(container, stream, fps)
        if duration is not None and duration > limits.max_clip_s:
            raise UploadError(413, f"{shown} lasts {duration:.1f} s; this view takes clips of at most "
                                   f"{limits.max_clip_s:g} s (serve.max_clip_s): cut it shorter")
        return Probe("video", fmt, VIDEO_FORMATS[fmt], width, height, Fraction(fps) if fps else None, duration)


def _duration_s(container, stream, fps) -> float | None:
    if container.duration:
        return container.duration / av.time_base
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if stream.frames and fps:
        return stream.frames / float(fps)
    return None


def max_frames(p: Probe, limits: ServeConfig) -> int:
    """At most this many frames of a video are processed: its duration limit at its rate (30 fps if it states
    none), so a file whose header understates its length still stops in time."""
    return max(1, math.ceil(limits.max_clip_s * float(p.fps or 30)))


class ResultStore:
    """A folder per upload under one temporary folder, the newest ``keep`` kept; removed by ``close()``."""

    def __init__(self, keep: int) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="depthstream-web-"))
        self.keep = keep
        self._lock = threading.Lock()
        self._ids: list[str] = []

    def new(self) -> tuple[str, Path]:
        """A new result id and its (empty) folder; the oldest folders beyond ``keep`` are deleted."""
        job = secrets.token_urlsafe(9)
        folder = self.root / job
        folder.mkdir()
        with self._lock:
            self._ids.append(job)
            old, self._ids = self._ids[:-self.keep], self._ids[-self.keep:]
        for gone in old:
            shutil.rmtree(self.root / gone, ignore_errors=True)
        return job, folder

    def discard(self, job: str) -> None:
        """Delete a result that came to nothing (a refused upload), so it takes no place of a kept one."""
        with self._lock:
            if job in self._ids:
                self._ids.remove(job)
        shutil.rmtree(self.root / job, ignore_errors=True)

    def path(self, job: str, name: str) -> Path | None:
        """The file ``name`` of result ``job``, or None (unknown, deleted, or a name that leaves the folder)."""
        with self._lock:
            known = job in self._ids
        if not known or "/" in name or "\\" in name or name.startswith("."):
            return None
        path = self.root / job / "result" / name
        return path if path.is_file() else None

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
