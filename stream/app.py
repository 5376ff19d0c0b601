"""Builds the stages from a Config, runs a layout over a source and feeds the outputs (:mod:`stream.outputs`).

The CLI (``python -m stream``) and the benchmarks both call :func:`run`; nothing here prints: the
caller gets a :class:`Summary` back.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import time
from dataclasses import dataclass, replace
from typing import Callable

import cv2

from engines.backends import Choice, EngineOptions, resolve_options
from engines.shared import EnginePool

from depthstream.errors import SourceError, StreamError
from depthstream.schema.camera import CameraProfile
from depthstream.schema.config import Config
from depthstream.types import Result

from .boxdepth import assign_box_depth
from .control import LiveFrame, RuntimeControl
from .boxtrust import flag_boxes
from .depth import DepthProvider, DepthRate, GroundPlaneDepth
from .depth.scaled import ScaledNetworkDepth
from .depth.select import CameraChoice, DepthChoice, build_depth, select_camera, select_depth
from .depth.sizing import SizeStage
from .detect import Detector
from .mask import band_mask, fill_outside, in_band, serial_mask
from .overlay import Overlay
from .pipeline import Dispatcher, Interrupted, Pipeline, RunStats, Stages
from .outputs import DEFAULT_IMAGE_FPS, Outputs, claim_outputs
from .sinks import frame_record
from .summary import MAIN_STAGES, Summary, ThreadPlan, count_result, sketch  # noqa: F401 -- also the run's API: stream.app.Summary
from .sources import Source, open_source
from .track import TrackStage, band_metres
from .track.deliver import delivery_target
from .track.records import event_record

log = logging.getLogger(__name__)

def plan_threads(cfg: Config, depth_is_network: bool, cores: int | None = None) -> ThreadPlan:
    """Every core (or ``pipeline.threads``) for the detector alone; with a depth network, ``depth.threads``
    (default half) for it and the rest for the detector."""
    total = cfg.pipeline.threads or cores or os.cpu_count() or 1
    if not depth_is_network:
        return ThreadPlan(detect=total, depth=0)
    depth = cfg.depth.threads or max(1, total // 2)
    return ThreadPlan(detect=max(1, total - depth), depth=depth)


def engine_options(cfg: Config, pool: EnginePool | None = None) -> tuple[EngineOptions, Choice]:
    """The backend both models run on (``auto`` resolved on this machine's facts) and why; ``pool``: the engines
    several pipelines of this process share (:mod:`stream.multi`). An explicit backend this machine cannot run is
    an EngineError here, before any model loads."""
    return resolve_options(EngineOptions(cfg.engine.backend, fp16=cfg.engine.fp16, cache_dir=cfg.engine.cache_dir,
                                         pool=pool))


def build_models(cfg: Config, camera: CameraChoice | None = None, choice: DepthChoice | None = None,
                 pool: EnginePool | None = None) -> tuple[ThreadPlan, DepthProvider, Detector]:
    """The thread plan and the two models, not yet opened, for a source whose camera profile is ``camera``
    (:func:`stream.depth.select.select_camera`; None: no profile) and whose depth source is ``choice``
    (default: :func:`~stream.depth.select.select_depth`). ``run`` and the benchmarks' bare model loop both
    build them here, so the baseline runs the same models with the same thread settings."""
    camera = camera or CameraChoice()
    choice = choice or select_depth(cfg, camera)
    threads = plan_threads(cfg, choice.is_network)
    options, _ = engine_options(cfg, pool)
    depth = build_depth(cfg, camera, threads.depth, options, choice)
    detector = Detector.from_config(cfg.detect, threads=threads.detect, engine=options)
    return threads, depth, detector


def engine_providers(engine) -> list[str]:
    """What really runs an engine: ONNX Runtime's providers as the session reports them after it was
    created, else the backend's name."""
    return list(getattr(engine, "providers", None) or [engine.backend])


def box_stat_for(cfg: Config, depth: DepthProvider) -> str:
    """``auto``: the ground-contact strip for ground-plane depth (an upright object's own pixels show
    the ground far behind it), the central 40 % for a depth network (the seed reports' rule)."""
    if cfg.depth.is_size_prior:
        return "size-prior"  # no map: each box's own size gives its distance
    if cfg.depth.box_stat == "auto":
        return "bottom" if isinstance(depth, GroundPlaneDepth) else "center_mean"
    return cfg.depth.box_stat


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1e3


def make_stages(cfg: Config, depth: DepthProvider, detector: Detector, stat: str,
                track: TrackStage | None = None, sizing: SizeStage | None = None,
                control: RuntimeControl | None = None, rate: DepthRate | None = None) -> Stages:
    """The three stages the pipeline runs: depth (+ the band's mask; on the frames ``rate`` says, the others
    reuse the last map and its mask, with no ``depth`` / ``mask`` timing; ``rate`` None: every frame), detect
    (on the masked frame in the serial layout), finish (per-box depth -- through ``sizing``, the size priors'
    stage, when given --, then ``track``: tracks, filtered distances, events, then the band keeps the boxes
    inside it, by the tracks' filtered distances).

    The band is read per frame from ``control`` (default: the config's, fixed), pinned for the frame
    (:meth:`RuntimeControl.for_frame`), so a band changed while the run goes on reaches the mask, the filter and
    the track events of the same frames (a reused map's mask is made again when the band changed since). The
    layout too: a frame pinned to the serial layout is blanked by its mask before detection when the graph it runs
    in computed the mask first (the serial graph; in the parallel graph detection runs beside depth and there is
    no mask yet); ``finish`` knows it by the ``fill`` time."""
    control = control or RuntimeControl.from_config(cfg)
    no_map = cfg.depth.is_size_prior
    rate = rate or DepthRate()
    last: list = [None, None, None]  # the last map, the band of its mask, the mask; only the depth stage's thread touches them

    def depth_stage(res: Result) -> Result:
        band = control.for_frame(res.frame.index).band
        if not rate.due(res.frame, last[0]):
            if last[1] != band:  # the band changed since the map was made: its mask for the band in force
                last[1:] = band, band_mask(last[0], band) if band.active and not no_map else None
            return replace(res, depth=last[0], mask=last[2])
        t0 = time.perf_counter()
        dm = depth(res.frame).stamped(res.frame)
        t1 = time.perf_counter()
        mask = band_mask(dm, band) if band.active and not no_map else None
        last[:] = dm, band, mask
        return replace(res, depth=dm, mask=mask, timings_ms={**res.timings_ms, "depth": (t1 - t0) * 1e3, "mask": _ms(t1)})

    def detect_stage(res: Result) -> Result:
        image = res.frame.image
        extra = {}
        frame = control.for_frame(res.frame.index)
        if frame.layout == "serial" and res.mask is not None:  # a mask before detection: depth ran first
            t0 = time.perf_counter()
            image = fill_outside(image, serial_mask(res.mask, cfg, depth, frame.band), cfg.mask)
            extra["fill"] = _ms(t0)
        t0 = time.perf_counter()
        dets, sub = detector(image)
        return replace(res, detections=dets, timings_ms={**res.timings_ms, **extra, "detect": _ms(t0), **sub})

    def finish_stage(res: Result) -> Result:
        band = control.for_frame(res.frame.index).band
        serial = "fill" in res.timings_ms  # detection ran on the frame blanked by this mask
        t0 = time.perf_counter()
        dm, mask = res.depth, res.mask
        if sizing is None:
            dets = assign_box_depth(res.detections, dm, stat, cfg.depth.roi)
        else:
            dm, dets = sizing(res.frame, dm, res.detections)
            if band.active and not serial and not no_map and dm.metres is not res.depth.metres:
                mask = band_mask(dm, band)  # the scale changed the metres the overlay tints by
        if not no_map:
            dets = flag_boxes(dets, dm, domain_note=depth.domain_note, stat=stat, frame_height=res.frame.height)
        res = res.timed("box_depth", _ms(t0), detections=dets, depth=dm, mask=mask)
        if track is not None:
            track.use_band(band)
            res = track(res)
        if band.active:
            res = replace(res, detections=res.detections[in_band(band_metres(res.detections), band)])
        return res

    return Stages(depth=depth_stage, detect=detect_stage, finish=finish_stage)


def size_stage(cfg: Config, depth: DepthProvider, detector: Detector, profile: CameraProfile | None = None) -> SizeStage | None:
    """The size priors' stage for a run: always with the size-prior source or a network (scale, cross-check);
    with another source (the ground plane) only when a camera profile gives the focal length: checking a
    camera's geometry against an assumed field of view would say nothing."""
    if not (cfg.depth.is_size_prior or isinstance(depth, ScaledNetworkDepth) or profile is not None):
        return None
    return SizeStage(cfg.depth, depth, detector.class_names, profile=profile, box_stat=box_stat_for(cfg, depth),
                     roi=cfg.depth.roi)


class _Fps:
    """Frames per second over the last ~2 s of results."""

    def __init__(self) -> None:
        self.times: collections.deque[float] = collections.deque()

    def tick(self) -> float | None:
        now = time.perf_counter()
        self.times.append(now)
        while now - self.times[0] > 2.0:
            self.times.popleft()
        return (len(self.times) - 1) / (now - self.times[0]) if len(self.times) > 1 else None


def _open_models(stack: contextlib.ExitStack, depth: DepthProvider, detector: Detector) -> None:
    stack.enter_context(detector)
    depth.open()
    stack.callback(depth.close)


def _describe_models(summary: Summary, cfg: Config, depth: DepthProvider, detector: Detector, camera: CameraChoice,
                     choice: DepthChoice) -> str:
    """What really runs the models, into the summary (after they opened: a fallback shows here);
    returns the detector's backend."""
    summary.depth_source, summary.depth_kind, summary.depth_state = depth.source, depth.kind, depth.state
    summary.depth_why = choice.why
    summary.camera = f"{camera.name} ({camera.how})" if camera.profile is not None else camera.how
    summary.providers = {"detect": engine_providers(detector.engine)}
    if getattr(depth, "engine", None) is not None:
        summary.providers["depth"] = engine_providers(depth.engine)
    backend = detector.engine.backend
    summary.backend = engine_options(cfg)[1].describe_running(backend)
    log.info("backend: %s", summary.backend)
    return backend


def _frame_total(cfg: Config, src: Source) -> int | None:
    total = src.frame_count
    if cfg.source.max_frames:
        total = min(total, cfg.source.max_frames) if total else cfg.source.max_frames
    return total


@dataclass
class _Events:
    """Where a run's track events go: the frame's JSONL line (while tracking), the delivery worker (with a
    target), the summary's counts."""

    tracking: bool
    dispatcher: Dispatcher | None

    def take(self, summary: Summary, records: list[dict]) -> list[dict] | None:
        """Hand a frame's event records to the delivery worker (never waits) and count them; returns what the
        frame's JSONL line carries (None: tracking is off, the line has no ``events``)."""
        for event in records:
            if self.dispatcher is not None:
                self.dispatcher.submit(event)
            summary.events[event["event"]] = summary.events.get(event["event"], 0) + 1
        return records if self.tracking else None


def _consume(pipeline: Pipeline, control: RuntimeControl, outputs: Outputs, summary: Summary, depth: DepthProvider,
             overlay: Overlay, camera: CameraChoice, backend: str, events: _Events,
             on_frame: Callable[[int, int | None], None] | None, total: int | None,
             publish: Callable[[LiveFrame], None] | None,
             on_result: Callable[[Result, float], None] | None = None) -> str | None:
    """Every result: overlay, outputs, events, summary, ``publish``, ``on_result``. Returns why the run stopped
    early (None: the pipeline ended)."""
    names = overlay.class_names
    fps_meter = _Fps()
    for res in pipeline.results():
        fps = fps_meter.tick()
        settings = control.for_frame(res.frame.index)
        band_text = settings.band_text
        t0 = time.perf_counter()
        shown = replace(res, timings_ms={k: res.timings_ms[k] for k in MAIN_STAGES if k in res.timings_ms})
        image = overlay.draw(shown, fps=fps, band_text=band_text)
        res = outputs.write_image(res.timed("overlay", _ms(t0)), image)
        age_ms = (time.monotonic_ns() - res.frame.captured_ns) / 1e6
        records = [event_record(e, res.frame, names, depth_source=depth.source, depth_kind=depth.kind,
                                band_text=band_text) for e in res.events]
        outputs.write_record(frame_record(res, names, depth_source=depth.source, depth_kind=depth.kind,
                                          band_text=band_text, age_ms=age_ms, backend=backend, camera=camera.name,
                                          selected=summary.depth_why, events=events.take(summary, records),
                                          file=outputs.src.frame_file(res.frame.index)))
        count_result(summary, res, age_ms, names)
        control.release(res.frame.index)
        if publish is not None:
            publish(LiveFrame(image, res, settings, fps, tuple(records), names, pipeline.dropped))
        if on_result is not None:
            on_result(res, age_ms)
        if on_frame is not None:
            on_frame(summary.frames, total)
        if not outputs.show(image):
            return "window closed"
    return None


def _close_summary(summary: Summary, pipeline: Pipeline, stopped_by: str | None, outputs_paths: list[str], src: Source,
                   track: TrackStage | None) -> None:
    stats: RunStats = pipeline.stats
    summary.wall_s = stats.wall_s
    if len(stats.layouts) > 1:
        summary.layout = " then ".join(stats.layouts)
    summary.dropped = stats.dropped
    summary.stopped_by = stopped_by or stats.stopped_by
    summary.outputs = outputs_paths
    outages = getattr(src, "outages", [])
    summary.outages = len(outages)
    summary.outage_s = sum(o.duration_s for o in outages)
    if track is not None:
        summary.tracks = track.stats.tracks
        summary.distances_rejected = (track.stats.rejected, track.stats.measured)


def _track_stage(cfg: Config, src: Source) -> TrackStage | None:
    """The track step (None with ``track.enabled: false``, and for a folder of unrelated pictures, whose boxes
    belong to no track across them: each picture stands alone, as the overlay lays it out)."""
    if not cfg.track.enabled:
        return None
    if src.stills:
        log.info("tracks: off, the source's pictures are unrelated (%s)", src.source_id)
        return None
    return TrackStage(cfg.track, cfg.events, cfg.band, live=src.live, fps=float(src.fps or DEFAULT_IMAGE_FPS))


def depth_rate(cfg: Config, depth: DepthProvider, src: Source) -> DepthRate:
    """``depth.every`` for this run: a ground plane (no pixels read) and a folder of unrelated pictures get a
    map of their own on every frame."""
    every = cfg.depth.every if depth.reads_pixels else 1
    return DepthRate(every, cfg.depth.every_max, live=src.live, stills=src.stills)


def _open_dispatcher(stack: contextlib.ExitStack, cfg: Config, summary: Summary, deliver) -> Dispatcher | None:
    """The event-delivery worker for ``--on-event`` (None without a target); closed by ``stack``, which gives
    it ``events.drain_s`` to deliver what is still queued."""
    if deliver is None:
        return None
    dispatcher = stack.enter_context(Dispatcher("event delivery", deliver, maxsize=cfg.events.queue_size,
                                                drain_s=cfg.events.drain_s))
    summary.delivery, summary.delivery_target = dispatcher.stats, deliver.name
    return dispatcher


def run(cfg: Config, *, source: Source | None = None, on_frame: Callable[[int, int | None], None] | None = None,
        control: RuntimeControl | None = None, publish: Callable[[LiveFrame], None] | None = None,
        on_result: Callable[[Result, float], None] | None = None, inputs: dict[str, str] | None = None,
        detector: Detector | None = None, pool: EnginePool | None = None) -> Summary:
    """Run the configured pipeline to the end of the source (or ``max_frames``, or a closed window).

    ``source`` injects a producer (tests, benchmarks); by default ``cfg.source.uri`` is opened.
    ``on_frame(done, total)`` is called after each written frame (progress bars); ``on_result(result, age_ms)``
    too, with the frame's result and its age (the benchmarks keep every frame's numbers; the summary does not).
    ``control``: the band and layout, changeable while the run goes on (the browser view; default: the config's,
    fixed). ``publish(LiveFrame)`` is called with each written frame (the browser view's frame hub; it must not
    block).
    ``inputs``: other files the run reads (what they are -> path, e.g. the config file): never an output.
    ``detector`` runs instead of ``cfg.detect.model`` (the soak benchmark's instant stand-in, ``bench/soak.py``).
    ``pool``: the models come from it, shared with the other pipelines of the process (:mod:`stream.multi`).
    KeyboardInterrupt propagates after every output is flushed and closed (the MP4 stays playable). A source that
    fails mid-way (a file cut short) still gives every frame read before it, then its error is raised.
    """
    # A delivery target that cannot work is a usage error before anything opens.
    deliver = delivery_target(cfg.events.on_event, cfg.events.deliver_timeout_s) if cfg.events.on_event else None
    src = source or open_source(cfg.source.uri, cfg.source)
    control = control or RuntimeControl.from_config(cfg)
    start = control.settings
    summary = Summary(layout=start.layout, source=src.source_id, band=start.band.describe())
    cv2.setNumThreads(1)  # OpenCV's own thread pool would compete with the models' threads for the same cores
    with contextlib.ExitStack() as stack:
        claim_outputs(cfg, src, stack, inputs)  # no output is an input or another output, nor written by another run
        stack.enter_context(src)  # first: a wrong --source fails before any model loads
        camera = select_camera(cfg, getattr(src, "uri", ""))
        choice = select_depth(cfg, camera)
        if detector is None:
            threads, depth, detector = build_models(cfg, camera, choice, pool)
        else:
            threads = plan_threads(cfg, choice.is_network)
            depth = build_depth(cfg, camera, threads.depth, engine_options(cfg, pool)[0], choice)
        stat = box_stat_for(cfg, depth)
        outputs = Outputs(cfg, src, stack)
        _open_models(stack, depth, detector)
        policy = cfg.pipeline.policy if cfg.pipeline.policy != "auto" else ("latest" if src.live else "block")
        summary.policy, summary.threads, summary.box_stat = policy, threads, stat
        backend = _describe_models(summary, cfg, depth, detector, camera, choice)
        options = replace(cfg.overlay, depth_inset=False) if cfg.depth.is_size_prior else cfg.overlay  # no map to show
        overlay = Overlay(options, detector.class_names, stills=src.stills)  # one per run: its layout stays steady
        track = _track_stage(cfg, src)
        rate = depth_rate(cfg, depth, src)
        summary.depth_rate = rate
        dispatcher = _open_dispatcher(stack, cfg, summary, deliver)
        sizing = size_stage(cfg, depth, detector, camera.profile)
        pipeline = Pipeline(
            src, make_stages(cfg, depth, detector, stat, track, sizing, control, rate), layout=control.layout(),
            policy=policy, queue_size=cfg.pipeline.queue_size, timeout_s=cfg.pipeline.timeout_s,
            max_frames=cfg.source.max_frames, switch=control.layout,
        )
        stopped_by = None
        try:
            stopped_by = _consume(pipeline, control, outputs, summary, depth, overlay, camera, backend,
                                  _Events(track is not None, dispatcher), on_frame, _frame_total(cfg, src), publish,
                                  on_result)
        except (Interrupted, StreamError) as exc:
            exc.summary = summary  # Ctrl-C / SIGTERM between two frames, a failure mid-way: the caller may report the run
            if isinstance(exc, SourceError) and summary.frames and outputs.paths:  # say what the outputs still hold
                frames = f"{summary.frames} frame" + ("s" if summary.frames != 1 else "")
                exc.args = (f"{exc} (the outputs hold the {frames} before it)",)
            raise
        finally:
            _close_summary(summary, pipeline, stopped_by, outputs.paths, src, track)
            summary.depth_notes = sizing.summary() if sizing is not None else []
            end = control.settings
            if end.band != start.band:
                summary.band += f" at the start, {end.band.describe()} at the end (changed while running)"
    return summary
