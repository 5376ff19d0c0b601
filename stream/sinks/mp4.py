"""The annotated video: H.264 in an MP4 that browsers play, flushed and closed even when a run is interrupted."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import av
import cv2
import numpy as np

from depthstream.errors import SinkError

from .paths import prepare_output_path

_FPS_MAX_DENOMINATOR = 1001


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
    fps:     frame rate, a positive number or ``fractions.Fraction`` (e.g. ``Fraction(30000, 1001)``);
             floats are turned into the nearest fraction with a denominator <= 1001, so
             29.97002997 becomes 30000/1001. The file has a constant rate: frame i is shown at i / fps s.
    width, height: size in pixels of every image given to ``write``.
    crf, preset, threads: libx264 quality (0..51, lower is better), speed preset and encoder threads.

    The stream is libx264, ``yuv420p`` (the pixel format every browser decodes) and ``+faststart``
    (the index is at the start of the file, so it plays while downloading). yuv420p needs an even
    width and height: an odd-sized frame is padded by one row / column repeating its edge pixels, so
    the file is ``output_size`` = (width rounded up to even, height rounded up to even).

    ``close()`` flushes the encoder and finishes the file; it is idempotent and ``__exit__`` calls it
    even on an exception, so an interrupted run leaves a playable file with every written frame. If no
    frame was ever written no file is created.
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
        self._closed = False

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
        try:
            container = av.open(str(self.path), mode="w", format="mp4", container_options={"movflags": "+faststart"})
        except (OSError, av.FFmpegError) as exc:
            raise SinkError(f"cannot open MP4 {self.path} for writing: {exc}") from exc
        try:
            stream = container.add_stream("libx264", rate=self.fps)
            stream.width, stream.height = self.output_size
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(self._crf), "preset": self._preset}
            stream.codec_context.thread_count = self._threads
            stream.codec_context.time_base = 1 / self.fps
        except (ValueError, av.FFmpegError) as exc:
            container.close()
            raise SinkError(f"cannot set up the H.264 encoder for {self.path} ({self.output_size[0]}x{self.output_size[1]} at {self.fps} fps): {exc}") from exc
        self._container = container
        self._stream = stream
        return self

    def write(self, image_bgr: np.ndarray) -> None:
        """Encode one frame: (height, width, 3) uint8 BGR, as given to the constructor."""
        expected = (self.height, self.width, 3)
        if not isinstance(image_bgr, np.ndarray) or image_bgr.dtype != np.uint8 or image_bgr.shape != expected:
            got = f"{type(image_bgr).__name__} {getattr(image_bgr, 'dtype', '')} {getattr(image_bgr, 'shape', '')}"
            raise ValueError(f"Mp4Sink.write expected a {expected} uint8 BGR image (height, width, 3), got {got}")
        self.open()
        image = image_bgr
        pad_w, pad_h = self.output_size[0] - self.width, self.output_size[1] - self.height
        if pad_w or pad_h:
            image = cv2.copyMakeBorder(image, 0, pad_h, 0, pad_w, cv2.BORDER_REPLICATE)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        frame.pts = self._frames
        frame.time_base = self._stream.codec_context.time_base
        try:
            self._container.mux(self._stream.encode(frame))
        except (OSError, av.FFmpegError) as exc:
            raise SinkError(f"writing frame {self._frames} to MP4 {self.path} failed: {exc}") from exc
        self._frames += 1

    def close(self) -> None:
        """Flush the encoder and finish the file (idempotent)."""
        if self._closed:
            return
        self._closed = True
        container, stream = self._container, self._stream
        self._container = self._stream = None
        if container is None:
            return
        try:
            if self._frames:
                container.mux(stream.encode(None))
        except (OSError, av.FFmpegError) as exc:
            raise SinkError(f"finishing MP4 {self.path} failed while flushing the encoder: {exc}") from exc
        finally:
            container.close()

    def __enter__(self) -> "Mp4Sink":
        return self.open()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


