"""The annotated video: H.264 in a fragmented MP4 that browsers play, written so that a run killed at any moment
leaves a playable file, flushed and closed when a run is interrupted."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import av
import cv2
import numpy as np

from depthstream.errors import SinkError

from .paths import SYNC_S, disk_hint, prepare_output_path

log = logging.getLogger(__name__)

_FPS_MAX_DENOMINATOR = 1001
TIME_BASE = Fraction(1, 90000)  # presentation times in ticks of 1/90000 s (every common frame rate is whole ticks)
FRAGMENT_S = 0.5  # a fragment (moof + mdat) is written to the file every half second of video


def _as_fraction(fps: float | Fraction) -> Fraction:
    if isinstance(fps, Fraction):
        rate = fps
    elif isinstance(fps, (int, float, np.integer, np.floating)) and math.isfinite(float(fps)):
        rate = Fraction(float(fps)).limit_denominator(_FPS_MAX_DENOMINATOR)
    else:
        raise ValueError(f"fps must be a positive number or fractions.Fraction, got {fps!r}")
    if rate <= 0:
        raise ValueError(f"fps must be positive, got {fps!r}")
    return rate


class Mp4Sink:
    """Write BGR frames to an H.264 MP4 that browsers play, one output frame per ``write``.

    path:    output file; missing parent folders are created.
    fps:     the nominal frame rate, a positive number or ``fractions.Fraction`` (e.g. ``Fraction(30000, 1001)``);
             floats are turned into the nearest fraction with a denominator <= 1001, so 29.97002997 becomes
             30000/1001. Frames are shown at the times given to ``write`` (none given: frame i at i / fps s); the
             rate is what the encoder plans for and how long the last frame is shown.
    width, height: size in pixels of every image given to ``write``.
    crf, preset, threads: libx264 quality (0..51, lower is better), speed preset and encoder threads.

    The stream is libx264, ``yuv420p`` (the pixel format every browser decodes), without B-frames (so a frame's
    decode time is its presentation time and a variable frame rate keeps its exact timing). While it is written the
    file is a **fragmented** MP4 (``empty_moov``, a fragment every :data:`FRAGMENT_S` s, each flushed to the file,
    the file synced every :data:`SYNC_S` s): a run killed at any moment, or a disk that fills up, leaves a playable
    file with every frame but those of the last fragment and the encoder's look-ahead (kept to half a second),
    about the last second. ``close()`` then rewrites it as a regular MP4 with its index first, for browsers.
    yuv420p needs an even width and height: an odd-sized frame is padded by one row / column repeating its edge
    pixels, so the file is ``output_size`` = (width rounded up to even, height rounded up to even).

    ``close()`` flushes the encoder and finishes the file; it is idempotent and ``__exit__`` calls it even on an
    exception (then a failure to finish is only logged: the exception on its way says what went wrong). After a
    failed ``write`` (a full disk) nothing more is written: the file keeps what fit. If no frame was ever written no
    file is created.
    """

    def __init__(
        self,
        path: str | Path,
        fps: float | Fraction,
        width: int,
        height: int,
        *,
        crf: int = 23,
        preset: str = "veryfast",
        threads: int = 1,
    ) -> None:
        if int(width) != width or int(height) != height or width < 1 or height < 1:
            raise ValueError(f"Mp4Sink width and height must be positive integers, got {width}x{height}")
        if not 0 <= int(crf) <= 51:
            raise ValueError(f"Mp4Sink crf must be 0..51 (libx264 quality, lower is better), got {crf!r}")
        if int(threads) < 0:
            raise ValueError(f"Mp4Sink threads must be >= 0 (0: libx264 chooses), got {threads!r}")
        self.path = Path(path)
        self.fps = _as_fraction(fps)
        self.width = int(width)
        self.height = int(height)
        self.output_size = (self.width + self.width % 2, self.height + self.height % 2)
        self._crf = int(crf)
        self._preset = str(preset)
        self._threads = int(threads)
        self._container: Any = None
        self._stream: Any = None
        self._frames = 0
        self._last_pts: int | None = None
        self._failed = False
        self._closed = False
        self._sync_fd: int | None = None
        self._synced_at = 0.0

    @property
    def frames_written(self) -> int:
        """Number of frames given to the encoder so far."""
        return self._frames

    def open(self) -> "Mp4Sink":
        """Check the path, create its folders and set up the encoder (idempotent). Raises SinkError."""
        if self._closed:
            raise SinkError(f"MP4 {self.path} is already closed; create a new Mp4Sink to write another file")
        if self._container is not None:
            return self
        self.path = prepare_output_path(self.path, "MP4")
        options = {"movflags": "empty_moov+default_base_moof", "frag_duration": str(round(FRAGMENT_S * 1e6)),
                   "flush_packets": "1"}
        try:
            container = av.open(str(self.path), mode="w", format="mp4", container_options=options)
        except (OSError, av.FFmpegError) as exc:
            raise SinkError(f"cannot open MP4 {self.path} for writing: {exc}{disk_hint(exc, self.path)}") from exc
        try:
            stream = container.add_stream("libx264", rate=self.fps)
            stream.width, stream.height = self.output_size
            stream.pix_fmt = "yuv420p"
            lookahead = max(1, min(10, math.floor(self.fps / 2)))  # x264's default is 10 frames; at most half a second
            stream.options = {"crf": str(self._crf), "preset": self._preset, "bf": "0", "rc-lookahead": str(lookahead)}
            stream.codec_context.thread_count = self._threads
            stream.codec_context.time_base = TIME_BASE
            stream.time_base = TIME_BASE
        except (ValueError, av.FFmpegError) as exc:
            container.close()
            raise SinkError(f"cannot set up the H.264 encoder for {self.path} ({self.output_size[0]}x{self.output_size[1]} at {self.fps} fps): {exc}") from exc
        self._container = container
        self._stream = stream
        self._synced_at = time.monotonic()
        return self

    def write(self, image_bgr: np.ndarray, time_s: float | None = None) -> None:
        """Encode one frame: (height, width, 3) uint8 BGR, as given to the constructor, shown ``time_s`` seconds
        after the first frame (None: frame count / fps). Times must increase; two that fall in the same 1/90000 s
        tick are put one tick apart."""
        expected = (self.height, self.width, 3)
        if not isinstance(image_bgr, np.ndarray) or image_bgr.dtype != np.uint8 or image_bgr.shape != expected:
            got = f"{type(image_bgr).__name__} {getattr(image_bgr, 'dtype', '')} {getattr(image_bgr, 'shape', '')}"
            raise ValueError(f"Mp4Sink.write expected a {expected} uint8 BGR image (height, width, 3), got {got}")
        if self._failed:
            raise SinkError(f"MP4 {self.path} stopped at frame {self._frames} after a failed write; nothing more is written")
        self.open()
        pts = round((self._frames / self.fps if time_s is None else Fraction(time_s)) / TIME_BASE)
        if self._last_pts is not None and pts <= self._last_pts:
            if time_s is not None and pts < self._last_pts - 1:
                raise ValueError(f"Mp4Sink.write: time {time_s} s is before the previous frame's "
                                 f"({float(self._last_pts * TIME_BASE)} s); times must increase")
            pts = self._last_pts + 1
        image = image_bgr
        pad_w, pad_h = self.output_size[0] - self.width, self.output_size[1] - self.height
        if pad_w or pad_h:
            image = cv2.copyMakeBorder(image, 0, pad_h, 0, pad_w, cv2.BORDER_REPLICATE)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        frame.pts = pts
        frame.time_base = TIME_BASE
        with contextlib.suppress(AttributeError):  # PyAV < 14 has no Frame.duration: the last frame is shown shorter
            frame.duration = round(1 / self.fps / TIME_BASE)  # how long the last frame is shown
        try:
            self._container.mux(self._stream.encode(frame))
        except (OSError, av.FFmpegError) as exc:
            self._failed = True
            raise SinkError(f"writing frame {self._frames} to MP4 {self.path} failed: {_reason(exc)}"
                            f"{disk_hint(exc, self.path)}") from exc
        self._frames += 1
        self._last_pts = pts
        if time.monotonic() - self._synced_at >= SYNC_S:
            self._sync()

    def _sync(self) -> None:
        self._synced_at = time.monotonic()
        try:
            if self._sync_fd is None:  # the muxer creates the file when it writes the header
                self._sync_fd = os.open(self.path, os.O_RDONLY)
            os.fsync(self._sync_fd)
        except OSError as exc:
            log.debug("syncing MP4 %s to the disk failed: %s", self.path, exc)

    def close(self, *, for_browsers: bool = True) -> None:
        """Flush the encoder and finish the file (idempotent). After a failed write only the file is closed.

        ``for_browsers``: then rewrite it as a regular MP4 with its index first (:meth:`_index_first`)."""
        if self._closed:
            return
        self._closed = True
        container, stream = self._container, self._stream
        self._container = self._stream = None
        if container is None:
            return
        try:
            if self._frames and not self._failed:
                container.mux(stream.encode(None))
        except (OSError, av.FFmpegError) as exc:
            self._failed = True
            raise SinkError(f"finishing MP4 {self.path} failed while flushing the encoder: {_reason(exc)}"
                            f"{disk_hint(exc, self.path)}") from exc
        finally:
            try:
                container.close()
            except (OSError, av.FFmpegError) as exc:
                if not self._failed:
                    raise SinkError(f"finishing MP4 {self.path} failed: {_reason(exc)}{disk_hint(exc, self.path)}") from exc
            finally:
                if self._frames:
                    self._sync()
                fd, self._sync_fd = self._sync_fd, None
                if fd is not None:
                    os.close(fd)
        if for_browsers and self._frames and not self._failed:
            self._index_first()

    def _index_first(self) -> None:
        """The finished fragmented file, rewritten as a regular MP4 with its index first (``+faststart``): browsers
        misread a fragmented MP4's duration (Chromium gives 2.5 s for the 15 s demo, from its first fragments).
        The packets are copied as they are (no new encoding) into a file beside it, synced, and renamed over it in
        one step: a run killed meanwhile leaves the fragmented file, whole. If it cannot be done (no room for the
        copy) the fragmented file stays, and plays."""
        tmp = self.path.with_name(f".{self.path.name}.finishing")
        try:
            with av.open(str(self.path)) as src, \
                    av.open(str(tmp), mode="w", format="mp4", container_options={"movflags": "+faststart"}) as out:
                video = src.streams.video[0]
                stream = out.add_stream_from_template(video)
                for packet in src.demux(video):
                    if packet.dts is None:  # the demuxer's end-of-stream packet
                        continue
                    packet.stream = stream
                    out.mux(packet)
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
        except (OSError, av.FFmpegError) as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            log.warning("MP4 %s stays a fragmented MP4 (it plays; some browsers show a wrong duration): rewriting it "
                        "with its index first failed: %s", self.path, _reason(exc))

    def __enter__(self) -> "Mp4Sink":
        return self.open()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
            return
        try:
            # Ctrl-C / SIGTERM end a run like its end; after a failure the file is left as it is (fragmented)
            self.close(for_browsers=issubclass(exc_type, KeyboardInterrupt))
        except SinkError as failure:  # a consequence (the same full disk): the exception on its way says what happened
            log.debug("%s", failure)


def _reason(exc: BaseException) -> str:
    """FFmpeg's or the OS's reason, without the file name PyAV appends (the message names the file already)."""
    return getattr(exc, "strerror", None) or str(exc).strip() or type(exc).__name__


