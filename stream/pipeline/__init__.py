"""Threads and queues: the only package of the product that creates them (besides the browser view's one server
thread, :mod:`stream.web.server`).

Layouts (every arrow is a bounded queue; every box a thread running plain, synchronous stages):

    serial:    capture -> [depth + mask] -> [fill outside band, detect, per-box depth, track, band filter] -> caller
    parallel:  capture -> split -> [depth + mask]  \\
                                 -> [detect]        -> [join by index, per-box depth, track, band filter] -> caller

Both layouts pipeline across frames (frame n+1 can be in depth while frame n is detected); the
parallel one also runs depth and detection of the *same* frame at once, so a frame's latency tends to
max(depth, detect) instead of their sum.

The layout can change while a run goes on (``Pipeline(..., switch=...)``, the browser view's layout switch): the
capture thread ends the running graph behind the frames already in it, the caller's thread starts the other one on
the same capture queue; no frame is lost or reordered (:class:`Pipeline`).

Queue policies: ``block`` (files: every frame is processed, capture waits for room) and ``latest``
(live feeds: a frame nobody has taken yet is replaced by the newer one and counted as dropped; at most
``in_flight`` frames are between capture and the caller and every queue holds one frame, so the
pipeline never falls behind the camera and a frame's age stays at the pipeline's own latency). Every
put/get waits at most ``timeout_s`` before checking the stop event; a worker's exception stops every
thread and is re-raised in the caller's thread; a source's read error ends the stream like its end, so the frames
read before it still reach the caller, then ``results()`` raises it. Ctrl-C / SIGTERM (:mod:`stream.signals`) stop
the pipeline and make ``results()`` raise :class:`Interrupted` between two frames.

Capture is two threads, so that ``stop()`` never waits on a read:

    reader (daemon) --one-frame handoff--> capture --policy queue--> ...

The **reader** is the one thread whose only blocking call is ``source.read()``, which can sit inside C
code (FFmpeg waiting on a socket, V4L2 waiting on a camera) where Python cannot interrupt it. It makes
no queue calls: it hands each frame to the capture thread through ``Handoff`` (a Condition whose
every wait is timed and checks the stop event). ``stop()`` joins it for what is left of its one-second
budget; if it is still inside ``read()`` then, ``stop()`` closes the source (every source accepts a
``close()`` from another thread: a fake or a reconnect wait returns at once, FFmpeg and OpenCV finish
the read within their read timeout and then release the decoder) and returns anyway. Being a daemon, a
reader still blocked then cannot keep the process from exiting; it holds no lock and no frame anyone
waits for. Every other thread is a normal thread, joined before ``results()`` returns.

- :mod:`.queues`: the bounded, stop-aware queues and the reader's one-frame handoff.
- :mod:`.layouts`: :class:`Pipeline` (the threads of each layout), :class:`Stages`, signals.
- :mod:`.dispatch`: :class:`Dispatcher`, besides the layouts: one worker thread behind a bounded queue that never
  blocks its caller, which delivers track events (``--on-event``) off the pipeline's threads.
- :mod:`.jobs`: :class:`JobWorker`, one low-priority worker thread behind a bounded queue for the browser view's
  uploads (each a run of its own), so they never take the cores from the live pipeline.
- :mod:`.writer`: :class:`WriterThread`, a sink's writes in order on one thread behind a short bounded queue that
  waits when full: the MP4's encoder, off the thread that hands out the results.
- :mod:`.side_by_side`: several runs at once, one thread each, signals relayed to all (several sources).
"""

from .dispatch import DispatchStats, Dispatcher
from .jobs import Busy, JobWorker
from .layouts import STAGE_GRACE_S, Interrupted, Pipeline, RunStats, Stages
from .queues import EOS, BoundedQueue, Slots, Stopped
from .side_by_side import run_side_by_side
from .writer import WriterThread

__all__ = ["Pipeline", "Stages", "RunStats", "Interrupted", "BoundedQueue", "Slots", "Stopped", "EOS",
           "STAGE_GRACE_S", "Dispatcher", "DispatchStats", "JobWorker", "Busy",
           "run_side_by_side", "WriterThread"]
