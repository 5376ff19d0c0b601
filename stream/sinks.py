"""Where annotated frames and per-frame records go: H.264 MP4, JSONL, a display window.

Every sink has ``open()`` (optional: the first ``write`` opens it), ``write(...)``, an idempotent
``close()``, and is a context manager whose ``__exit__`` closes it even when an exception is on its way,
so an interrupted run leaves a playable MP4 and a JSONL file whose every line is valid. Problems with the
output path are reported as ``SinkError`` in ``open()``, before any frame is encoded.

JSONL schema
------------
One JSON object per line, one line per processed frame, written by ``JsonlSink`` from ``frame_record``.
Strict JSON: NaN and infinities are written as ``null``. Distances are metres along the camera's
optical axis; times are milliseconds unless the key ends in ``_s``.

.. code-block:: text

    {
      "index": 42,                      # frame index from the source (int, monotonic; gaps = dropped frames)
      "pts_s": 1.4,                     # media time in seconds (float), null for cameras / images
      "source": "data/clip.mp4",        # the source as given, credentials redacted
      "depth": {"source": "depth-anything-v2-metric-indoor-small",   # what produced the depth map
                "kind": "metric",       # "metric" | "relative+calibrated" | "geometric"
                "unit": "m"},
      "band": "closer than 2 m",        # the asked distance band in words, null when none was asked
      "detections": [                   # one object per box, possibly empty
        {"box": [x1, y1, x2, y2],       # frame pixels, rounded to 0.1 px, x1 < x2, y1 < y2
         "class_id": 0,                 # index into the detector's class names
         "class": "person",             # class name ("class N" when the id has no name)
         "score": 0.873,                # detector confidence 0..1, 3 decimals
         "depth_m": 1.734,              # the box's distance in metres (3 decimals), null: no valid depth
         "depth_valid_frac": 0.962,     # share of the sampled pixels with valid depth (3 decimals) or null
         "depth_spread_m": 0.211,       # interquartile range of the sampled depths, metres, or null
         "depth_reliable": true,        # false: the depth source flagged this distance as an estimate
         "track_id": 7,                 # the box's track (stable across frames), null when untracked
         "depth_filtered_m": 1.702,     # the track's distance after outlier rejection and smoothing (the band
         "depth_filtered_std_m": 0.04,  #   decision uses it), and its standard deviation; null when untracked
         "speed_mps": -1.21,            # rate of change of the distance, m/s, negative = approaching, and its
         "speed_std_mps": 0.09,         #   standard deviation; null until the track has track.window distances
         "ttc_s": 1.41,                 # time to contact while approaching (else null), s, and its std
         "ttc_std_s": 0.12}
      ],
      "timings_ms": {"depth": 3.12, "detect": 11.95},   # stage -> milliseconds (0.01 ms), in stage order
      "age_ms": 35.27,                  # capture-to-output latency of this frame in ms (0.01), or null
      "backend": "ort-cpu",             # the inference backend that ran the detector (python -m stream writes it)
      "events": [...]                   # while tracking: the track events decided on this frame (entered, left,
    }                                   #   approaching), each as stream/track/records.py describes; often []
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import av
import cv2
import numpy as np

from depthstream.errors import OutputPathError, SinkError
from depthstream.types import Result

__all__ = ["Mp4Sink", "JsonlSink", "ImageFolderSink", "WindowSink", "frame_record", "prepare_output_path"]

_FPS_MAX_DENOMINATOR = 1001


def prepare_output_path(path: str | Path, what: str) -> Path:
    """Check that ``path`` can be created as a file and create its missing parent folders.

    Raises OutputPathError (a SinkError with exit code 2) saying what to fix when the path is a folder,
    a parent is a file, or the folder (or an existing file at the path) is not writable.
    """
    out = Path(path).expanduser()
    if out.is_dir():
        raise OutputPathError(f"cannot write the {what} to {out}: it is an existing folder; give a file path such as {out / ('out' + out.suffix if out.suffix else 'out')}")
    parent = out.parent
    ancestor = parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if ancestor.exists() and not ancestor.is_dir():
        raise OutputPathError(f"cannot write the {what} to {out}: {ancestor} is a file, not a folder; choose another output path or move that file")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputPathError(f"cannot write the {what} to {out}: folder {ancestor} is not writable (permission denied); choose a folder you can write to")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(f"cannot write the {what} to {out}: creating folder {parent} failed ({exc.strerror or exc}); choose another output path") from exc
    if out.exists() and not os.access(out, os.W_OK):
        raise OutputPathError(f"cannot write the {what} to {out}: the existing file is not writable (permission denied); remove it or choose another path")
    return out


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


def _jsonable(value: Any, where: str) -> Any:
    """Convert a record to plain JSON types: numpy scalars/arrays to Python, NaN/inf to None."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, np.bool_):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist(), where)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"JSONL record field {where} has type {type(value).__name__}, which has no JSON form; convert it to a number, string, list or dict")


class JsonlSink:
    """Append one strict-JSON line per ``write(record)`` to a file, flushed after every line.

    A killed run leaves every finished line valid. Records may hold numpy scalars and arrays; NaN and
    infinities become ``null``. The file is created (truncated if it exists) by ``open()``.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file: IO[str] | None = None
        self._closed = False
        self._lines = 0

    @property
    def lines_written(self) -> int:
        return self._lines

    def open(self) -> "JsonlSink":
        """Check the path, create its folders and open the file (idempotent). Raises SinkError."""
        self._open_file()
        return self

    def _open_file(self) -> IO[str]:
        if self._closed:
            raise SinkError(f"JSONL {self.path} is already closed; create a new JsonlSink to write another file")
        if self._file is None:
            self.path = prepare_output_path(self.path, "JSONL")
            try:
                self._file = open(self.path, "w", encoding="utf-8", newline="\n")
            except OSError as exc:
                raise SinkError(f"cannot open JSONL {self.path} for writing: {exc.strerror or exc}") from exc
        return self._file

    def write(self, record: Mapping[str, Any]) -> None:
        """Write ``record`` (a dict) as one JSON line and flush it."""
        if not isinstance(record, Mapping):
            raise TypeError(f"JsonlSink.write expects a dict record, got {type(record).__name__}")
        line = json.dumps(_jsonable(record, "record"), allow_nan=False, ensure_ascii=False, separators=(",", ":"))
        file = self._open_file()
        try:
            file.write(line + "\n")
            file.flush()
        except OSError as exc:
            raise SinkError(f"writing line {self._lines + 1} of JSONL {self.path} failed: {exc.strerror or exc}") from exc
        self._lines += 1

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._closed:
            return
        self._closed = True
        file, self._file = self._file, None
        if file is not None:
            try:
                file.close()
            except OSError as exc:
                raise SinkError(f"closing JSONL {self.path} failed: {exc.strerror or exc}") from exc

    def __enter__(self) -> "JsonlSink":
        return self.open()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class ImageFolderSink:
    """Write each annotated frame as an image file into a folder (``--output`` given a folder).

    ``write(image, name)``: ``name`` is the file name (an image source's own name, so ``a.png`` gives
    ``folder/a.png``); None numbers the frames ``frame_000042.jpg`` by frame index. The folder is created
    by ``open()``; files already in it are replaced only when a frame of the same name is written.
    """

    def __init__(self, folder: str | Path, ext: str = ".jpg") -> None:
        self.folder = Path(folder).expanduser()
        self.ext = ext
        self._files = 0

    @property
    def files_written(self) -> int:
        return self._files

    def open(self) -> "ImageFolderSink":
        """Check the folder (an existing file there is an error) and create it. Raises SinkError."""
        if self.folder.exists() and not self.folder.is_dir():
            raise OutputPathError(f"cannot write annotated images to {self.folder}: it is an existing file, not a folder; give a folder path or a .mp4 file")
        prepare_output_path(self.folder / "probe", "annotated images")
        if not os.access(self.folder, os.W_OK | os.X_OK):
            raise OutputPathError(f"cannot write annotated images to {self.folder}: the folder is not writable (permission denied)")
        return self

    def write(self, image_bgr: np.ndarray, name: str | None, index: int) -> Path:
        """Write one (H, W, 3) uint8 BGR image; returns its path."""
        path = self.folder / (name if name else f"frame_{index:06d}{self.ext}")
        try:
            ok = cv2.imwrite(str(path), image_bgr)
        except cv2.error as exc:
            raise SinkError(f"writing {path} failed: {str(exc).strip().splitlines()[-1]}") from exc
        if not ok:
            raise SinkError(f"writing {path} failed (disk full, or no encoder for its extension)")
        self._files += 1
        return path

    def close(self) -> None:
        return None

    def __enter__(self) -> "ImageFolderSink":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _round_or_none(value: float, digits: int) -> float | None:
    v = float(value)
    return round(v, digits) if math.isfinite(v) else None


def frame_record(
    result: Result,
    class_names: Sequence[str],
    *,
    depth_source: str,
    depth_kind: str,
    band_text: str | None,
    age_ms: float | None,
    extra_timings: dict[str, float] | None = None,
    backend: str | None = None,
    events: Sequence[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One frame's JSONL record (schema in this module's docstring); plain Python types only.

    extra_timings: stages timed outside ``result.timings_ms`` (e.g. overlay, encode), merged after them.
    backend: the inference backend that ran the detector (``ort-cpu``, ``trt``, ...); the key is left
    out when None.
    events: the event records of this frame (``stream.track.records.event_record``); the key is left out
    when None (tracking off).
    """
    frame = result.frame
    detections: list[dict[str, Any]] = []
    dets = result.detections
    if dets is not None:
        for i in range(len(dets)):
            cid = int(dets.class_id[i])
            detections.append(
                {
                    "box": [round(float(v), 1) for v in dets.xyxy[i]],
                    "class_id": cid,
                    "class": str(class_names[cid]) if 0 <= cid < len(class_names) else f"class {cid}",
                    "score": _round_or_none(dets.confidence[i], 3),
                    "depth_m": _round_or_none(dets.depth_m[i], 3),
                    "depth_valid_frac": _round_or_none(dets.depth_valid_frac[i], 3),
                    "depth_spread_m": _round_or_none(dets.depth_spread_m[i], 3),
                    "depth_reliable": bool(dets.depth_reliable[i]),
                    "track_id": int(dets.track_id[i]) if dets.track_id[i] >= 0 else None,
                    "depth_filtered_m": _round_or_none(dets.depth_filtered_m[i], 3),
                    "depth_filtered_std_m": _round_or_none(dets.depth_filtered_std_m[i], 3),
                    "speed_mps": _round_or_none(dets.speed_mps[i], 3),
                    "speed_std_mps": _round_or_none(dets.speed_std_mps[i], 3),
                    "ttc_s": _round_or_none(dets.ttc_s[i], 3),
                    "ttc_std_s": _round_or_none(dets.ttc_std_s[i], 3),
                }
            )
    timings = {**result.timings_ms, **(extra_timings or {})}
    record = {
        "index": int(frame.index),
        "pts_s": None if frame.pts_s is None else _round_or_none(frame.pts_s, 6),
        "source": frame.source_id,
        "depth": {"source": depth_source, "kind": depth_kind, "unit": "m"},
        "band": band_text,
        "detections": detections,
        "timings_ms": {str(stage): _round_or_none(ms, 2) for stage, ms in timings.items()},
        "age_ms": None if age_ms is None else _round_or_none(age_ms, 2),
    }
    if backend is not None:
        record["backend"] = backend
    if events is not None:
        record["events"] = list(events)
    return record


_GUI_HINT = "pip install opencv-python (or the 'gui' extra)"
_SHOW_NEEDS = "--show needs OpenCV with GUI support and a display"


def _opencv_has_gui() -> bool:
    """False when OpenCV's build information says it was built without any GUI backend (headless)."""
    for line in cv2.getBuildInformation().splitlines():
        key, _, value = line.strip().partition(":")
        if key.strip() == "GUI":
            return value.strip().upper() not in ("NONE", "NO", "")
    return True


class WindowSink:
    """Show frames in a desktop window; ``write`` returns False when the user presses q or Esc.

    Needs OpenCV built with a GUI (the ``opencv-python`` wheel, not ``opencv-python-headless``) and,
    on Linux, a display (DISPLAY or WAYLAND_DISPLAY). ``open()`` checks both and raises SinkError.
    """

    _QUIT_KEYS = (ord("q"), ord("Q"), 27)

    def __init__(self, title: str = "stream") -> None:
        self.title = title
        self._open = False
        self._closed = False

    def open(self) -> "WindowSink":
        """Open the window (idempotent). Raises SinkError when no GUI or no display is available."""
        if self._closed:
            raise SinkError(f"window {self.title!r} is already closed; create a new WindowSink")
        if self._open:
            return self
        problems = []
        if not _opencv_has_gui():
            problems.append(f"this OpenCV has no window support (the opencv-python-headless wheel): {_GUI_HINT}")
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            problems.append("DISPLAY is not set (nor WAYLAND_DISPLAY): run it in a desktop session, or drop --show and use --output")
        if problems:
            raise SinkError(f"{_SHOW_NEEDS}: " + "; ".join(problems))
        try:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
        except cv2.error as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise SinkError(f"{_SHOW_NEEDS}: opening a window failed ({reason}); {_GUI_HINT}") from exc
        self._open = True
        return self

    def write(self, image: np.ndarray) -> bool:
        """Show a (H, W, 3) uint8 BGR image; False when the user pressed q / Esc or closed the window."""
        self.open()
        try:
            cv2.imshow(self.title, image)
            key = cv2.waitKey(1) & 0xFF
            visible = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE)
        except cv2.error as exc:
            raise SinkError(f"showing a frame in window {self.title!r} failed: {exc}") from exc
        return key not in self._QUIT_KEYS and visible >= 1

    def close(self) -> None:
        """Destroy the window (idempotent). A window the user already closed is not an error."""
        if self._closed:
            return
        self._closed = True
        if self._open:
            self._open = False
            with contextlib.suppress(cv2.error):
                cv2.destroyWindow(self.title)
                cv2.waitKey(1)

    def __enter__(self) -> "WindowSink":
        return self.open()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
