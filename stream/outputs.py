"""The outputs of one run: an MP4 or a folder of annotated images, a JSONL, a window (``output.*``), checked and
locked before anything heavy runs and created on the first frame.

What survives a fault: the MP4 is fragmented and the JSONL written line by line, so a killed run or a full disk
leaves both readable (the MP4 all but about its last second); an output is never an input or another output, and
never written by two runs at once (:mod:`stream.sinks.lock`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from depthstream.errors import ConfigError
from depthstream.schema.config import Config
from depthstream.types import Result

from .pipeline.writer import WriterThread
from .sinks import ImageFolderSink, JsonlSink, Mp4Sink, WindowSink, prepare_output_path
from .sinks.lock import OutputLock
from .sinks.paths import refuse_outputs_over_inputs, refuse_replacing_a_non_jsonl
from .sinks.timeline import Timeline
from .sources import Source

DEFAULT_IMAGE_FPS = Fraction(5)  # an MP4 made from a folder of images plays at this rate
ENCODER_QUEUE = 2  # frames waiting for the MP4's encoder thread at most (a killed run loses them besides the open fragment)


def fit_frame(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """An image of another size (a folder of mixed photos) scaled to fit the video's first frame size,
    centred on black; an image of the right size is returned as it is."""
    h, w = image.shape[:2]
    if (h, w) == (height, width):
        return image
    r = min(height / h, width / w)
    nh, nw = max(1, round(h * r)), max(1, round(w * r))
    canvas = np.zeros((height, width, 3), np.uint8)
    y0, x0 = (height - nh) // 2, (width - nw) // 2
    canvas[y0:y0 + nh, x0:x0 + nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    return canvas


def output_is_folder(path: str) -> bool:
    """``--output``: a path ending in ``.mp4`` is an MP4; an existing folder, a path ending in ``/`` or
    a path without a suffix is a folder of annotated images; anything else is a usage error."""
    p = Path(path).expanduser()
    if p.is_dir() or str(path).endswith(("/", "\\")):
        return True
    if p.suffix.lower() == ".mp4":
        return False
    if not p.suffix:
        return True
    raise ConfigError(f"--output {path}: expected a file ending in .mp4 (H.264 video) or a folder (annotated images), got a '{p.suffix}' file")


class Outputs:
    """The run's sinks: an MP4 (or a folder of annotated images), a JSONL, a window.

    Paths are checked when this is built, before anything heavy runs, so a bad path fails at once; the
    files are created on the first frame, so a run that fails before it leaves existing ones as they were.
    Every sink is closed by ``stack``.
    """

    def __init__(self, cfg: Config, src: Source, stack: contextlib.ExitStack) -> None:
        self.cfg, self.src, self.stack = cfg.output, src, stack
        self.to_folder = bool(self.cfg.mp4) and output_is_folder(self.cfg.mp4)
        self.folder = stack.enter_context(ImageFolderSink(self.cfg.mp4)) if self.to_folder else None
        if self.cfg.mp4 and not self.to_folder:
            prepare_output_path(self.cfg.mp4, "MP4")
        if self.cfg.jsonl:
            prepare_output_path(self.cfg.jsonl, "JSONL")
        self.mp4: Mp4Sink | None = None  # opened on the first frame, when its size is known
        self.encoder: WriterThread | None = None  # the MP4's writes, on a thread of their own
        self.timeline = Timeline(live=src.live, fps=src.fps or DEFAULT_IMAGE_FPS, stills=src.stills)
        self.jsonl: JsonlSink | None = None
        self.window = WindowSink("stream") if self.cfg.show else None
        if self.window is not None:
            self.window.open()
            stack.callback(self.window.close)

    @property
    def paths(self) -> list[str]:
        return [p for p in (self.cfg.mp4, self.cfg.jsonl) if p]

    def write_image(self, res: Result, image: np.ndarray) -> Result:
        """The annotated image into the folder or the MP4 (``encode`` timed: the wait of the thread that hands out
        the results; the MP4 is encoded on its own thread, :class:`WriterThread`); ``res`` unchanged without either.
        ``image`` must not change afterwards (the overlay draws a new one every frame)."""
        if self.folder is None and not self.cfg.mp4:
            return res
        t0 = time.perf_counter()
        if self.folder is not None:
            self.folder.write(image, self.src.frame_name(res.frame.index), res.frame.index)
        else:
            if self.mp4 is None:
                h, w = image.shape[:2]
                self.mp4 = self.stack.enter_context(Mp4Sink(
                    self.cfg.mp4, fps=self.src.fps or DEFAULT_IMAGE_FPS, width=w, height=h,
                    crf=self.cfg.crf, preset=self.cfg.preset,
                ))
                # closed first (the stack unwinds backwards): every queued frame is encoded before the file is finished
                self.encoder = self.stack.enter_context(WriterThread("encoder", self.mp4.write, maxsize=ENCODER_QUEUE))
                t0 = time.perf_counter()
            self.encoder.write(fit_frame(image, self.mp4.height, self.mp4.width), self.timeline.seconds(res.frame))
        return res.timed("encode", (time.perf_counter() - t0) * 1e3)

    def write_record(self, record: dict) -> None:
        if self.cfg.jsonl:
            if self.jsonl is None:
                self.jsonl = self.stack.enter_context(JsonlSink(self.cfg.jsonl))
            self.jsonl.write(record)

    def show(self, image: np.ndarray) -> bool:
        """Show the frame; False when the user closed the window (q, Esc)."""
        return self.window is None or self.window.write(image)


def claim_outputs(cfg: Config, src: Source, stack: contextlib.ExitStack, inputs: dict[str, str] | None = None) -> None:
    """Before anything is opened: refuse outputs that are an input (the source, the config file, a model) or each
    other (OutputPathError, exit code 2), an existing file at the JSONL's path that is no JSONL, then lock every
    output against a second run (SinkError, exit code 1; released by ``stack``).

    inputs: other files this run reads, what they are -> path (e.g. {"the config file": "run.yaml"}).
    """
    out = cfg.output
    outputs = {flag: path for flag, path in (("--output", out.mp4), ("--jsonl", out.jsonl)) if path}
    if not outputs:
        return
    refuse_output_over_source(cfg, src)
    refuse_outputs_over_inputs(outputs, {**_source_files(src), **(inputs or {}), **_config_files(cfg)})
    if out.jsonl:
        refuse_replacing_a_non_jsonl(out.jsonl)
    for flag, path in outputs.items():
        if flag == "--output" and output_is_folder(path):
            what = "annotated images"
            ImageFolderSink(path).open()  # checks the folder and creates it
        else:
            what = "MP4" if flag == "--output" else "JSONL"
            prepare_output_path(path, what)  # checks the path and creates its folders
        stack.enter_context(OutputLock(path, what))


def _source_files(src: Source) -> dict[str, str]:
    files = {f"a source image ({Path(p).name})": str(p) for p in getattr(src, "paths", [])}
    for inner in (src, getattr(src, "inner", None)):
        uri = getattr(inner, "uri", None)
        if uri and Path(uri).is_file():
            files["the source video"] = uri
    return files


_INPUT_NAMES = {"detect.model": "the detector model", "depth.source": "the depth model card"}


def _config_files(cfg: Config) -> dict[str, str]:
    """Every file the config names (outside ``output``): what it is (with its key) -> path."""
    found: dict[str, str] = {}

    def walk(section, prefix: str) -> None:
        for f in dataclasses.fields(section):
            value, key = getattr(section, f.name), f"{prefix}{f.name}"
            if dataclasses.is_dataclass(value):
                walk(value, key + ".")
            elif isinstance(value, str) and key != "source.uri" and Path(value).is_file():
                found[f"{_INPUT_NAMES.get(key, 'the file of')} ({key})"] = value

    for f in dataclasses.fields(cfg):
        if f.name != "output":
            walk(getattr(cfg, f.name), f.name + ".")
    return found


def refuse_output_over_source(cfg: Config, src: Source) -> None:
    """An image folder as --output must not be the folder of the source images: they would be replaced."""
    out = cfg.output.mp4
    if not (out and output_is_folder(out)):
        return
    for i, p in enumerate(getattr(src, "paths", [])):
        name = src.frame_name(i)
        if name and (Path(out) / name).resolve() == Path(p).resolve():
            raise ConfigError(f"--output {out} is the folder of the source images: the annotated images would "
                              f"replace them; give another folder")
