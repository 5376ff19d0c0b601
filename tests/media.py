"""Test media made with PyAV, and what a player finds in an MP4 the product wrote (tests of faults and timelines).

``mp4_facts`` reads a file the way a player does: it plays what it can and stops at the first damaged packet
(a run killed mid-write leaves a last fragment cut short), so it counts the frames a viewer would see and the time
they span, without failing on the tail.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from conftest import DEMO


@dataclass(frozen=True)
class Mp4Facts:
    frames: int  # decoded before the end or the first damaged packet
    times_s: list[float]  # presentation time of each decoded frame
    duration_s: float | None  # the container's duration as a player reads it (None: unknown)
    damaged_tail: bool  # decoding stopped at a damaged packet before the end of the file
    codec: str

    @property
    def span_s(self) -> float:
        """From the first frame to the end of the last one (its duration taken as the median step)."""
        if len(self.times_s) < 2:
            return 0.0
        steps = np.diff(self.times_s)
        return float(self.times_s[-1] - self.times_s[0] + np.median(steps))


def mp4_facts(path: Path) -> Mp4Facts:
    times: list[float] = []
    damaged = False
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        duration = c.duration / 1e6 if c.duration else None
        codec = stream.codec_context.name
        try:
            for packet in c.demux(stream):
                for frame in packet.decode():
                    times.append(float(frame.time))
        except av.FFmpegError:
            damaged = True
    return Mp4Facts(len(times), times, duration, damaged, codec)


def decodable_frames(path: Path) -> int:
    """How many frames FFmpeg decodes from a (possibly damaged) video before it gives up."""
    n = 0
    with av.open(str(path)) as c:
        try:
            for _ in c.decode(video=0):
                n += 1
        except av.FFmpegError:
            pass
    return n


def demo_faststart_copy(dest: Path) -> Path:
    """The bundled clip remuxed with its index first (``+faststart``), as a camera or a web download has it: cut
    short, such a file still opens and decodes up to the cut."""
    with av.open(str(DEMO)) as src, av.open(str(dest), "w", container_options={"movflags": "+faststart"}) as out:
        stream = out.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is None:  # the flush packet
                continue
            packet.stream = stream
            out.mux(packet)
    return dest


def demo_cut_short(folder: Path, keep: float) -> tuple[Path, int]:
    """The clip (index first) with only its first ``keep`` share of bytes, as a copy cut off mid-download; returns
    the file and how many frames FFmpeg decodes from it."""
    full = demo_faststart_copy(folder / "full.mp4")
    cut = folder / "cut.mp4"
    data = full.read_bytes()
    cut.write_bytes(data[: int(len(data) * keep)])
    return cut, decodable_frames(cut)


def avi_with_b_frames(dest: Path, frames: int = 100, fps: int = 25) -> Path:
    """An H.264 AVI with B-frames: AVI stores no presentation times, so the times FFmpeg hands out with the frames
    are those of the packets in decode order, and about one step in four goes backwards."""
    with av.open(str(dest), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.codec_context.max_b_frames = 3
        stream.codec_context.gop_size = fps
        for i in range(frames):
            image = np.zeros((240, 320, 3), np.uint8)
            image[:, (i * 3) % 320] = 255
            image[(i * 2) % 240, :] = 128
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return dest


def source_times(path: Path) -> list[float]:
    """The times FFmpeg hands out with a file's frames, in the order it decodes them."""
    with av.open(str(path)) as c:
        return [float(f.time) for f in c.decode(video=0)]


def source_duration_s(path: Path) -> float:
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        return float(stream.frames / Fraction(stream.average_rate))
