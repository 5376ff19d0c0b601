"""WriterThread: a sink's writes (the MP4's encoder) on a thread of their own, in order, bounded, failures raised in
the caller's thread."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

from depthstream.errors import SinkError
from stream.pipeline import WriterThread
from stream.sinks import Mp4Sink


@pytest.mark.timeout(60)
def test_every_frame_given_reaches_the_mp4_in_order_after_close(tmp_path: Path) -> None:
    path = tmp_path / "out.mp4"
    shades = [20 + i * 9 for i in range(25)]  # one grey level per frame, 9 apart
    with Mp4Sink(path, fps=10, width=64, height=48, crf=0) as sink, WriterThread("encoder", sink.write) as encoder:
        for i, shade in enumerate(shades):
            encoder.write(np.full((48, 64, 3), shade, np.uint8), i / 10)
    with av.open(str(path)) as c:
        frames = [(f.to_ndarray(format="bgr24"), round(float(f.time), 3)) for f in c.decode(video=0)]
    assert [t for _, t in frames] == pytest.approx([i / 10 for i in range(len(shades))])
    means = np.array([float(image.mean()) for image, _ in frames])
    assert np.diff(means) == pytest.approx(np.diff(shades), abs=2)  # every frame, in order (no colour range fitted)


@pytest.mark.timeout(20)
def test_write_returns_while_the_queue_has_room_and_waits_when_it_is_full() -> None:
    release = threading.Event()
    done: list[int] = []

    def slow(i: int) -> None:
        release.wait(10)
        done.append(i)

    writer = WriterThread("slow", slow, maxsize=2, timeout_s=0.02)
    t0 = time.monotonic()
    for i in range(3):  # one in the thread's hands, two queued
        writer.write(i)
    assert time.monotonic() - t0 < 1.0 and done == []
    blocked = threading.Thread(target=writer.write, args=(3,))
    blocked.start()
    blocked.join(0.3)
    assert blocked.is_alive()  # the queue is full: the caller waits instead of piling up frames
    release.set()
    blocked.join(10)
    writer.close()
    assert done == [0, 1, 2, 3]


@pytest.mark.timeout(20)
def test_a_failed_write_is_raised_once_by_the_next_write_and_nothing_more_is_written() -> None:
    done: list[int] = []

    def failing(i: int) -> None:
        if i == 1:
            raise SinkError("writing frame 1 to MP4 out.mp4 failed: No space left on device")
        done.append(i)

    writer = WriterThread("encoder", failing, timeout_s=0.02)
    writer.write(0)
    writer.write(1)
    with pytest.raises(SinkError, match="writing frame 1 to MP4 out.mp4 failed: No space left on device"):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            writer.write(2)
            time.sleep(0.01)
    writer.close()  # already raised: not again
    assert done == [0]


@pytest.mark.timeout(20)
def test_a_failure_of_the_last_writes_is_raised_by_close_unless_an_exception_is_on_its_way() -> None:
    def failing(i: int) -> None:
        raise SinkError(f"frame {i} failed")

    writer = WriterThread("encoder", failing, timeout_s=0.02)
    writer.write(7)
    with pytest.raises(SinkError, match="frame 7 failed"):
        writer.close()

    with pytest.raises(KeyboardInterrupt):
        with WriterThread("encoder", failing, timeout_s=0.02) as other:
            other.write(8)
            raise KeyboardInterrupt  # the interrupt reaches the caller, the failed write is only logged
    with pytest.raises(RuntimeError, match="encoder: write after close"):
        other.write(9)
