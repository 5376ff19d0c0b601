"""Builds the stages from a Config, runs a layout over a source and feeds the sinks.

The CLI (``python -m stream``) and the benchmarks both call :func:`run`; nothing here prints: the
caller gets a :class:`Summary` back.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import time
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from engines.backends import Choice, EngineOptions, resolve_options

from .boxdepth import assign_box_depth, parse_box_stat
from .config import Config
from .depth import DepthProvider, GroundPlaneDepth, open_depth_model
from .detect import Detector
from .mask import DistanceBand, band_mask, fill_outside
from .overlay import OverlayOptions, draw
from .pipeline import DispatchStats, Dispatcher, Interrupted, Pipeline, RunStats, Stages
from depthstream.errors import ConfigError
from .sinks import ImageFolderSink, JsonlSink, Mp4Sink, WindowSink, frame_record, prepare_output_path
from .sources import LiveOptions, Source, open_source
from .track import TrackStage, band_metres, build_track_stage
from .track.deliver import delivery_target
from .track.records import event_record
from depthstream.types import Result

log = logging.getLogger(__name__)

DEFAULT_IMAGE_FPS = Fraction(5)  # an MP4 made from a folder of images plays at this rate


@dataclass(frozen=True)
class ThreadPlan:
    """How the CPU threads are shared between the two models (they run at the same time in both
    layouts, so their sum must not exceed the budget)."""

    detect: int
    depth: int


def plan_threads(cfg: Config, depth_is_network: bool, cores: int | None = None) -> ThreadPlan:
    total = cfg.pipeline.threads or cores or os.cpu_count() or 1
    if not depth_is_network:
        return ThreadPlan(detect=total, depth=0)
    depth = cfg.depth.threads or max(1, total // 2)
    return ThreadPlan(detect=max(1, total - depth), depth=depth)


def engine_options(cfg: Config) -> tuple[EngineOptions, Choice]:
    """The backend both models run on (``auto`` resolved on this machine's facts) and why.
    An explicit backend this machine cannot run is an EngineError here, before any model loads."""
    return resolve_options(EngineOptions(cfg.engine.backend, fp16=cfg.engine.fp16, cache_dir=cfg.engine.cache_dir))


def build_depth(cfg: Config, threads: int, engine: EngineOptions | None = None) -> DepthProvider:
    if cfg.depth.source == "ground-plane":
        gp = cfg.depth.ground_plane
        return GroundPlaneDepth(
            gp.height_m, gp.pitch_deg, vfov_deg=gp.vfov_deg, focal_px=gp.focal_px, cy_px=gp.cy_px, max_depth_m=gp.max_depth_m,
        )
    return open_depth_model(cfg.depth.source, threads=max(1, threads), engine_options=engine)


def build_models(cfg: Config) -> tuple[ThreadPlan, DepthProvider, Detector]:
    """The thread plan and the two models, not yet opened. ``run`` and the benchmarks' bare model loop
    both build them here, so the baseline runs the same models with the same thread settings."""
    threads = plan_threads(cfg, cfg.depth.source != "ground-plane")
    options, _ = engine_options(cfg)
    depth = build_depth(cfg, threads.depth, options)
    detector = Detector.from_path(
        cfg.detect.model, threads=threads.detect, conf=cfg.detect.conf, iou=cfg.detect.iou,
        classes=cfg.detect.classes, max_det=cfg.detect.max_det, engine=options,
    )
    return threads, depth, detector


def engine_providers(engine) -> list[str]:
    """What really runs an engine: ONNX Runtime's providers as the session reports them after it was
    created, else the backend's name."""
    return list(getattr(engine, "providers", None) or [engine.backend])


def box_stat_for(cfg: Config, depth: DepthProvider) -> str:
    """``auto``: the ground-contact strip for ground-plane depth (an upright object's own pixels show
    the ground far behind it), the central 40 % for a depth network (the seed reports' rule)."""
    if cfg.depth.box_stat == "auto":
        return "bottom" if isinstance(depth, GroundPlaneDepth) else "center_mean"
    parse_box_stat(cfg.depth.box_stat)
    return cfg.depth.box_stat


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


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1e3


def make_stages(cfg: Config, depth: DepthProvider, detector: Detector, band: DistanceBand, stat: str,
                track: TrackStage | None = None) -> Stages:
    """The layout's stages. ``track`` (tracks, filtered distances, events) runs in ``finish`` between the per-box
    depth and the band filter, which then uses the tracks' filtered distances."""
    serial = cfg.pipeline.layout == "serial"

    def depth_stage(res: Result) -> Result:
        t0 = time.perf_counter()
        dm = depth(res.frame)
        t1 = time.perf_counter()
        mask = band_mask(dm, band) if band.active else None
        return replace(res, depth=dm, mask=mask, timings_ms={**res.timings_ms, "depth": (t1 - t0) * 1e3, "mask": _ms(t1)})

    def detect_stage(res: Result) -> Result:
        image = res.frame.image
        extra = {}
        if serial and res.mask is not None:
            t0 = time.perf_counter()
            image = fill_outside(image, res.mask, cfg.mask.fill, cfg.mask.blur_ksize)
            extra["fill"] = _ms(t0)
        t0 = time.perf_counter()
        dets, sub = detector(image)
        return replace(res, detections=dets, timings_ms={**res.timings_ms, **extra, "detect": _ms(t0), **sub})

    def finish_stage(res: Result) -> Result:
        t0 = time.perf_counter()
        dets = assign_box_depth(res.detections, res.depth, stat, cfg.depth.roi)
        res = res.timed("box_depth", _ms(t0), detections=dets)
        if track is not None:
            res = track(res)
        if band.active:
            res = replace(res, detections=res.detections[band.contains(band_metres(res.detections))])
        return res

    return Stages(depth=depth_stage, detect=detect_stage, finish=finish_stage)


@dataclass
class Summary:
    frames: int = 0
    wall_s: float = 0.0
    layout: str = ""
    policy: str = ""
    source: str = ""
    depth_source: str = ""
    depth_kind: str = ""
    box_stat: str = ""
    band: str = ""
    threads: ThreadPlan | None = None
    providers: dict[str, list[str]] = field(default_factory=dict)  # model -> what really runs it
    backend: str = ""  # the backend that really runs the detector, e.g. "ort-cpu (auto chose ...)"
    stopped_by: str = ""
    dropped: int = 0
    outputs: list[str] = field(default_factory=list)
    timings: dict[str, list[float]] = field(default_factory=dict)
    ages_ms: list[float] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)  # frame index of each result (gaps = dropped frames)
    outages: int = 0  # times a live source was lost (and reconnected, or the run ended)
    outage_s: float = 0.0  # seconds without frames, all outages together
    objects: dict[str, int] = field(default_factory=dict)
    tracks: int | None = None  # track ids handed out (None: tracking off)
    distances_rejected: tuple[int, int] = (0, 0)  # (raw distances rejected as outliers, raw distances of tracked boxes)
    events: dict[str, int] = field(default_factory=dict)  # event kind -> count
    delivery: DispatchStats | None = None  # --on-event: how the deliveries went (None: no target)
    delivery_target: str = ""

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0

    def percentiles(self, stage: str, qs=(50, 95)) -> list[float]:
        return [float(np.percentile(self.timings[stage], q)) for q in qs]


# Stages shown in the HUD and the summary, in pipeline order (sub-timings stay in the JSONL).
MAIN_STAGES = ("decode", "depth", "mask", "fill", "detect", "box_depth", "track", "overlay", "encode")


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


def run(cfg: Config, *, source: Source | None = None, on_frame: Callable[[int, int | None], None] | None = None) -> Summary:
    """Run the configured pipeline to the end of the source (or ``max_frames``, or a closed window).

    ``source`` injects a producer (tests, benchmarks); by default ``cfg.source.uri`` is opened.
    ``on_frame(done, total)`` is called after each written frame (progress bars).
    KeyboardInterrupt propagates after every output is flushed and closed (the MP4 stays playable).
    """
    band = DistanceBand(cfg.band.closer_than, cfg.band.further_than)
    deliver = delivery_target(cfg.events.on_event, cfg.events.deliver_timeout_s) if cfg.events.on_event else None
    src = source or open_source(cfg.source.uri, LiveOptions.from_config(cfg.source))
    to_folder = bool(cfg.output.mp4) and output_is_folder(cfg.output.mp4)
    if to_folder and any(src.frame_name(i) and (Path(cfg.output.mp4) / src.frame_name(i)).resolve() == Path(p).resolve()
                         for i, p in enumerate(getattr(src, "paths", []))):
        raise ConfigError(f"--output {cfg.output.mp4} is the folder of the source images: the annotated images would replace them; give another folder")
    summary = Summary(layout=cfg.pipeline.layout, source=src.source_id, band=band.describe())
    # OpenCV's own thread pool would compete with the models' threads for the same cores.
    cv2.setNumThreads(1)
    with contextlib.ExitStack() as stack:
        stack.enter_context(src)  # first: a wrong --source fails before any model loads
        threads, depth, detector = build_models(cfg)
        stat = box_stat_for(cfg, depth)
        # Outputs are checked before anything heavy runs, so a bad path fails at once.
        # Files are created on the first frame, so a run that fails before it leaves existing ones as they were.
        folder = stack.enter_context(ImageFolderSink(cfg.output.mp4)) if to_folder else None
        if cfg.output.mp4 and not to_folder:
            prepare_output_path(cfg.output.mp4, "MP4")
        mp4: Mp4Sink | None = None  # opened on the first frame, when its size is known
        if cfg.output.jsonl:
            prepare_output_path(cfg.output.jsonl, "JSONL")
        jsonl: JsonlSink | None = None
        window = WindowSink("stream") if cfg.output.show else None
        if window is not None:
            window.open()
            stack.callback(window.close)
        stack.enter_context(detector)
        depth.open()
        stack.callback(depth.close)
        policy = cfg.pipeline.policy if cfg.pipeline.policy != "auto" else ("latest" if src.live else "block")
        summary.policy, summary.threads, summary.box_stat = policy, threads, stat
        summary.depth_source = depth.source
        summary.providers = {"detect": engine_providers(detector.engine)}
        backend = detector.engine.backend
        summary.backend = engine_options(cfg)[1].describe_running(backend)
        log.info("backend: %s", summary.backend)  # once, after the models opened (a fallback shows here)
        if getattr(depth, "engine", None) is not None:
            summary.providers["depth"] = engine_providers(depth.engine)
        summary.depth_kind = depth.kind
        options = OverlayOptions(
            tint_bgr=tuple(cfg.overlay.tint_bgr), tint_alpha=cfg.overlay.tint_alpha,
            depth_inset=cfg.overlay.depth_inset, inset_fraction=cfg.overlay.inset_fraction,
            inset_max_m=cfg.overlay.inset_max_m, hud=cfg.overlay.hud,
        )
        track = build_track_stage(cfg.track, cfg.events, band, live=src.live, fps=float(src.fps or DEFAULT_IMAGE_FPS))
        dispatcher = None
        if deliver is not None:
            dispatcher = stack.enter_context(Dispatcher("event delivery", deliver, maxsize=cfg.events.queue_size,
                                                        drain_s=cfg.events.drain_s))
            summary.delivery, summary.delivery_target = dispatcher.stats, deliver.name
        pipeline = Pipeline(
            src, make_stages(cfg, depth, detector, band, stat, track), layout=cfg.pipeline.layout, policy=policy,
            queue_size=cfg.pipeline.queue_size, timeout_s=cfg.pipeline.timeout_s, max_frames=cfg.source.max_frames,
        )
        total = src.frame_count
        if cfg.source.max_frames:
            total = min(total, cfg.source.max_frames) if total else cfg.source.max_frames
        fps_meter = _Fps()
        band_text = band.describe() if band.active else None
        names = detector.class_names
        stopped_by = None
        try:
            for res in pipeline.results():
                fps = fps_meter.tick()
                t0 = time.perf_counter()
                shown = replace(res, timings_ms={k: res.timings_ms[k] for k in MAIN_STAGES if k in res.timings_ms})
                image = draw(shown, names, fps=fps, band_text=band_text, options=options)
                res = res.timed("overlay", _ms(t0))
                if folder is not None:
                    t0 = time.perf_counter()
                    folder.write(image, src.frame_name(res.frame.index), res.frame.index)
                    res = res.timed("encode", _ms(t0))
                elif cfg.output.mp4:
                    if mp4 is None:
                        h, w = image.shape[:2]
                        mp4 = stack.enter_context(Mp4Sink(
                            cfg.output.mp4, fps=src.fps or DEFAULT_IMAGE_FPS, width=w, height=h,
                            crf=cfg.output.crf, preset=cfg.output.preset,
                        ))
                    t0 = time.perf_counter()
                    mp4.write(fit_frame(image, mp4.height, mp4.width))
                    res = res.timed("encode", _ms(t0))
                age_ms = (time.monotonic_ns() - res.frame.captured_ns) / 1e6
                events = [event_record(e, res.frame, names, depth_source=depth.source, depth_kind=depth.kind,
                                       band_text=band_text) for e in res.events]
                if cfg.output.jsonl:
                    if jsonl is None:
                        jsonl = stack.enter_context(JsonlSink(cfg.output.jsonl))
                    jsonl.write(frame_record(res, names, depth_source=depth.source, depth_kind=depth.kind,
                                             band_text=band_text, age_ms=age_ms, backend=backend,
                                             events=events if track is not None else None))
                for event in events:
                    if dispatcher is not None:
                        dispatcher.submit(event)
                    summary.events[event["event"]] = summary.events.get(event["event"], 0) + 1
                summary.frames += 1
                summary.ages_ms.append(age_ms)
                summary.indices.append(res.frame.index)
                for k, v in res.timings_ms.items():
                    summary.timings.setdefault(k, []).append(v)
                for c in res.detections.class_id:
                    name = names[c] if c < len(names) else str(c)
                    summary.objects[name] = summary.objects.get(name, 0) + 1
                if on_frame is not None:
                    on_frame(summary.frames, total)
                if window is not None and not window.write(image):
                    stopped_by = "window closed"
                    break
        except Interrupted as exc:
            exc.summary = summary  # Ctrl-C / SIGTERM between two frames: the caller may still report the run
            raise
        finally:
            stats: RunStats = pipeline.stats
            summary.wall_s = stats.wall_s
            summary.dropped = stats.dropped
            summary.stopped_by = stopped_by or stats.stopped_by
            summary.outputs = [p for p in (cfg.output.mp4, cfg.output.jsonl) if p]
            outages = getattr(src, "outages", [])
            summary.outages = len(outages)
            summary.outage_s = sum(o.duration_s for o in outages)
            if track is not None:
                summary.tracks = track.stats.tracks
                summary.distances_rejected = (track.stats.rejected, track.stats.measured)
    return summary
