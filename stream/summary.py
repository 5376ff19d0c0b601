"""What a run did (:class:`Summary`): frames, timings, drops, outages, objects, in constant memory, for the CLI's
summary and the benchmarks. :func:`count_result` adds one written frame to it; :class:`ThreadPlan` is how the
models share the cores."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ddsketch import LogCollapsingLowestDenseDDSketch

from depthstream.types import Result

from .depth import DepthRate
from .pipeline import DispatchStats


@dataclass(frozen=True)
class ThreadPlan:
    """How the CPU threads are shared between the two models (they run at the same time in both
    layouts, so their sum must not exceed the budget)."""

    detect: int
    depth: int


def sketch() -> LogCollapsingLowestDenseDDSketch:
    """A quantile sketch (DDSketch): any quantile within 1 % of the true value, in at most 2048 bins however many
    values it is given, so a run's summary keeps constant memory (a day at 30 fps is 2.6 million frames)."""
    return LogCollapsingLowestDenseDDSketch(relative_accuracy=0.01, bin_limit=2048)


@dataclass
class Summary:
    """What a run did, for the CLI's summary and the benchmarks: frames, timings, drops, outages, objects.

    Per-frame numbers (stage timings, frame ages) go into quantile sketches, never into lists: its size does not
    grow with the run. Who needs every frame's numbers (the benchmarks) passes ``on_result`` to :func:`run`.
    """

    frames: int = 0
    wall_s: float = 0.0
    layout: str = ""
    policy: str = ""
    source: str = ""
    depth_source: str = ""
    depth_kind: str = ""
    depth_state: str = ""
    depth_why: str = ""  # why this depth source (depth.source auto, a camera profile's mounting, ...)
    camera: str = ""  # the camera profile used and how it was chosen, or why there is none
    box_stat: str = ""
    band: str = ""
    threads: ThreadPlan | None = None
    providers: dict[str, list[str]] = field(default_factory=dict)  # model -> what really runs it
    backend: str = ""  # the backend that really runs the detector, e.g. "ort-cpu (auto chose ...)"
    stopped_by: str = ""
    dropped: int = 0
    outputs: list[str] = field(default_factory=list)
    timings: dict[str, LogCollapsingLowestDenseDDSketch] = field(default_factory=dict)  # stage -> its ms
    ages_ms: LogCollapsingLowestDenseDDSketch = field(default_factory=sketch)  # decode -> written, each frame
    outages: int = 0  # times a live source was lost (and reconnected, or the run ended)
    outage_s: float = 0.0  # seconds without frames, all outages together
    objects: dict[str, int] = field(default_factory=dict)
    tracks: int | None = None  # track ids handed out (None: tracking off)
    distances_rejected: tuple[int, int] = (0, 0)  # (raw distances rejected as outliers, raw distances of tracked boxes)
    events: dict[str, int] = field(default_factory=dict)  # event kind -> count
    delivery: DispatchStats | None = None  # --on-event: how the deliveries went (None: no target)
    delivery_target: str = ""
    boxes: int = 0  # boxes written, over all frames
    flagged: int = 0  # of which with a distance flagged unreliable
    unreliable: dict[str, int] = field(default_factory=dict)  # depth_note -> boxes flagged with it
    depth_rate: DepthRate | None = None  # depth.every: how often the depth network ran
    depth_notes: list[str] = field(default_factory=list)  # size priors, automatic scale, cross-check (one line each)
    served: dict | None = None  # --serve: the view's url, viewers_total, encodes, dropped_viewers (None: not served)

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0

    def percentiles(self, stage: str, qs=(50, 95)) -> list[float]:
        """The stage's milliseconds at the percentiles ``qs`` (within 1 %)."""
        return [float(self.timings[stage].get_quantile_value(q / 100)) for q in qs]

    def age_percentiles(self, qs=(50, 95, 99)) -> list[float]:
        """The frame age (decode -> written) in ms at the percentiles ``qs`` (within 1 %)."""
        return [float(self.ages_ms.get_quantile_value(q / 100)) for q in qs]


# Stages shown in the HUD and the summary, in pipeline order (sub-timings stay in the JSONL).
MAIN_STAGES = ("decode", "depth", "mask", "fill", "detect", "box_depth", "track", "overlay", "encode")


def count_result(summary: Summary, res: Result, age_ms: float, names) -> None:
    """One written frame into the summary: its timings, age, boxes by class and flagged distances."""
    summary.frames += 1
    summary.ages_ms.add(age_ms)
    for k, v in res.timings_ms.items():
        stage = summary.timings.get(k)
        if stage is None:
            stage = summary.timings[k] = sketch()
        stage.add(v)
    dets = res.detections
    summary.boxes += len(dets)
    for c in dets.class_id:
        name = names[c] if c < len(names) else str(c)
        summary.objects[name] = summary.objects.get(name, 0) + 1
    summary.flagged += int(np.count_nonzero(~dets.depth_reliable))
    for note in dets.depth_note[~dets.depth_reliable]:
        for part in str(note).split("; "):
            summary.unreliable[part] = summary.unreliable.get(part, 0) + 1
