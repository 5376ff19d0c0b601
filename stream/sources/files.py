"""Sources read with FFmpeg (PyAV) or from image files: a video file (or the demo clip), a network stream
(rtsp://, http(s)://, ...), a folder or glob of images."""

from __future__ import annotations

import collections
import socket
import time
from fractions import Fraction
from pathlib import Path
from urllib.parse import urlsplit

import cv2

from depthstream.errors import SourceError, SourceNotFoundError
from depthstream.types import Frame

from .base import IMAGE_EXTS, Source, redact


class VideoFileSource(Source):
    """A video file, or a network stream (``network=True``), decoded by PyAV (FFmpeg).

    A network stream is opened with ``av.open(..., timeout=(open_timeout_s, read_timeout_s))``: PyAV's
    interrupt callback makes FFmpeg give up on a connect, a header or a packet that takes longer, so a
    server that accepts the connection and then says nothing cannot hang a read. It is ``live`` unless it
    turns out to be a file served over HTTP(S) (it has a duration): that one is read like a file.

    Packets of every stream are read here (PyAV's own filter would skip audio packets inside one call, out of
    reach of any clock), so a live read that receives data but no video frame for ``read_timeout_s`` ends with
    a SourceError too. A frame's ``captured_ns`` is when the packet that carried it arrived, not when the decoder
    let it out: a decoder holds a frame until the next packet comes, and a stream that stalls would otherwise
    hand out its last frame, seconds old, as new. For the same reason the frames a live decoder still holds when
    the feed stops are dropped, not flushed out.
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
        self._packets = None  # the container's packets, every stream
        self._pending: collections.deque = collections.deque()  # (decoded frame, when its packet arrived)
        self._arrived: dict[int, int] = {}  # packet pts -> time.monotonic_ns() when it arrived
        self._fps: Fraction | None = None
        self._times = PresentationTimes()

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
            container = av.open(_ffmpeg_url(self.uri) if self.network else self.uri, options=self._options,
                                timeout=self._timeouts if self.network else None)
        except (av.FFmpegError, OSError) as exc:
            raise SourceError(self._open_failure(exc, time.monotonic() - t0)) from exc
        if not container.streams.video:
            container.close()
            raise SourceError(f"{self.source_id} has no video stream (is it an audio or a data file?)")
        self._container = container
        self._stream = container.streams.video[0]
        rate = self._stream.average_rate or self._stream.guessed_rate
        self._fps = Fraction(rate) if rate else None
        self._packets = container.demux()
        self._pending.clear()
        self._arrived.clear()
        self._times = PresentationTimes()
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
        host = _unknown_host(self.uri)
        if host is not None:
            return f"cannot connect to {self.source_id}: host '{host}' not found (DNS); check the host name, or give its IP address"
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
        with self._reading():
            if self._packets is None:
                raise SourceError(f"source {self.source_id} is not open")
            t0 = time.monotonic()
            while not self._pending:
                if not self._decode_next_packet(t0):
                    return None
            frame, arrived_ns = self._pending.popleft()
            return self._frame(frame.to_ndarray(format="bgr24"), self._times.seconds(frame),
                               captured_ns=arrived_ns)

    def _decode_next_packet(self, t0: float) -> bool:
        """Read one packet and decode it if it is video; False at the end of the source."""
        import av

        try:
            packet = next(self._packets)
        except StopIteration:
            if self.live and time.monotonic() - t0 >= self._timeouts[1] * 0.95:  # FFmpeg ends a timed-out read as EOF
                raise self._no_frame(t0) from None
            return False
        except (av.FFmpegError, OSError) as exc:
            if self.network and time.monotonic() - t0 >= self._timeouts[1] * 0.95:
                raise self._no_frame(t0) from exc
            raise SourceError(f"decoding {self.source_id} failed at frame {self._index}: {_ff_message(exc)}") from exc
        arrived_ns = time.monotonic_ns()
        if self.live and time.monotonic() - t0 >= self._timeouts[1]:
            raise self._no_frame(t0)
        if packet.stream_index != self._stream.index:
            return True
        if packet.size == 0 and self.live:  # the end: what the decoder still holds is as old as the stall before it
            return True
        if packet.pts is not None:
            self._arrived[packet.pts] = arrived_ns
            while len(self._arrived) > 64:  # pts the decoder never gave a frame for
                del self._arrived[next(iter(self._arrived))]
        try:
            frames = packet.decode()
        except (av.FFmpegError, OSError) as exc:
            raise SourceError(f"decoding {self.source_id} failed at frame {self._index}: {_ff_message(exc)}") from exc
        for frame in frames:
            self._pending.append((frame, self._arrived.pop(frame.pts, None) or arrived_ns))
        return True

    def _no_frame(self, t0: float) -> SourceError:
        return SourceError(f"no frame from {self.source_id} for {time.monotonic() - t0:.1f} s "
                           f"(source.read_timeout_s is {self._timeouts[1]:g})")

    def _release(self) -> None:
        container, self._container, self._stream, self._packets = self._container, None, None, None
        self._pending.clear()
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

    def frame_file(self, index: int) -> str | None:
        return str(self.paths[index]) if 0 <= index < len(self.paths) else None

    def read(self) -> Frame | None:
        if self._index >= len(self.paths):
            return None
        path = self.paths[self._index]
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise SourceError(f"cannot read image {path} (corrupt, or not an image)")
        return self._frame(image, None)


class PresentationTimes:
    """A decoded frame's presentation time as FFmpeg's own tools take it (libavcodec's ``best_effort_timestamp``):
    its pts, unless the pts have gone backwards more often than the decode times (dts). A container without
    presentation times (an AVI with B-frames) gives each frame the pts of the packet in decode order, which jump
    back and forth; the dts there increase with every frame. The frames the decoder lets out at the end have no
    dts: they continue the dts by the last step."""

    def __init__(self) -> None:
        self.faulty_pts = self.faulty_dts = 0
        self._last_pts: int | None = None
        self._last_dts: int | None = None
        self._dts_step = 0

    def seconds(self, frame) -> float | None:
        pts, dts = frame.pts, frame.dts
        if dts is not None:
            if self._last_dts is not None:
                self.faulty_dts += dts <= self._last_dts
                self._dts_step = dts - self._last_dts
            self._last_dts = dts
        if pts is not None:
            self.faulty_pts += self._last_pts is not None and pts <= self._last_pts
            self._last_pts = pts
        if pts is not None and (self.faulty_pts <= self.faulty_dts or (dts is None and self._last_dts is None)):
            best = pts
        elif dts is None and self._last_dts is not None and self._dts_step > 0:
            best = self._last_dts = self._last_dts + self._dts_step
        else:
            best = dts
        return None if best is None or frame.time_base is None else float(best * frame.time_base)


def _ff_message(exc: Exception) -> str:
    """FFmpeg's reason without the file name PyAV appends (a URL may hold credentials)."""
    text = getattr(exc, "strerror", None) or str(exc).strip() or type(exc).__name__
    return redact(text.splitlines()[0])




def _ffmpeg_url(url: str) -> str:
    """The URL with its scheme in lower case (schemes are case-insensitive; FFmpeg's protocol names are not)."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.lower()}{sep}{rest}"


def _unknown_host(url: str) -> str | None:
    """The URL's host when it is a name that does not resolve (FFmpeg says only "Input/output error"), else None."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    if not host:
        return None
    try:
        socket.getaddrinfo(host, None)
    except socket.gaierror:
        return host
    except OSError:
        return None
    return None
