"""Tracks (ByteTrack through edgefirst-tracker), the per-track distance filter, the track clock and events.

The tracker is fed the real detector's boxes on the bundled clip; the filter and the events are fed sequences
whose true distance and speed are known, so the expected values come from that truth, not from the code.
"""

from __future__ import annotations

import math

import av
import numpy as np
import pytest

from depthstream.schema.config import BandConfig, EventsConfig, TrackConfig
from depthstream.types import Detections, Frame, Result
from stream.detect import Detector
from stream.track import TrackClock, TrackStage, band_metres
from stream.track.bytetrack import ByteTrackAdapter
from stream.track.distance import DistanceFilter, TrackEstimate
from stream.track.events import TrackEvents

from conftest import DEMO, YOLOX

DEMO_FPS = 10.0


@pytest.fixture(scope="module")
def demo_detections() -> list[tuple[float, Detections]]:
    """(media time, the shipped YOLOX-Nano's boxes) for every frame (150) of the bundled clip."""
    out = []
    with Detector.from_path(YOLOX, threads=2) as det, av.open(str(DEMO)) as c:
        for f in c.decode(video=0):
            boxes, _ = det(f.to_ndarray(format="bgr24"))
            out.append((float(f.time), boxes))
            if len(out) == 150:
                break
    return out


def _track(frames, fps: float | None) -> tuple[list[np.ndarray], int]:
    tracker = ByteTrackAdapter(TrackConfig(), fps=fps)
    ids = [tracker(dets, t)[0] for t, dets in frames]
    return ids, tracker.tracks_started


# -- track ids -------------------------------------------------------------------------------------------


def test_every_confident_box_gets_a_stable_id_on_the_clip(demo_detections):
    ids, started = _track(demo_detections, DEMO_FPS)
    for frame_ids, (_, dets) in zip(ids, demo_detections):
        tracked = frame_ids[frame_ids >= 0]
        assert len(set(tracked.tolist())) == len(tracked), "two boxes of one frame share a track id"
        assert (frame_ids[dets.confidence >= 0.5] >= 0).all(), "a box above high_conf was left untracked"
    # The parked car and truck at the top right stand still for the whole clip: one id each, every frame.
    still = [tid for tid in set(ids[0].tolist()) if tid >= 0 and all(tid in f for f in ids)]
    assert len(still) >= 3
    # About twenty people and vehicles pass in the clip: ids are not handed out per frame.
    assert started <= 30, f"{started} tracks for 150 frames: tracks are being broken up"


def test_dropped_frames_are_predicted_across_by_time(demo_detections):
    """The latest policy keeps every third frame of a 10 fps feed: the adapter fills each gap with the two
    missing frame periods, so the box filters move as far as the objects did; without that (the library's
    one step per call) fast walkers are lost and come back under new ids."""
    kept = [fd for i, fd in enumerate(demo_detections) if i % 3 == 0]
    _, with_fill = _track(kept, DEMO_FPS)
    # fps None: the period is learned from the spacing of the frames seen (0.3 s here), so nothing is filled.
    _, one_step = _track(kept, None)
    assert with_fill < one_step


def test_a_track_survives_a_miss_shorter_than_lost_s_whatever_the_frame_rate(demo_detections):
    _, dets = demo_detections[0]
    empty = Detections.empty()
    for fps in (10.0, 30.0):
        for gap_s, same in ((0.8, True), (1.3, False)):
            tracker = ByteTrackAdapter(TrackConfig(lost_s=1.0), fps=fps)
            first, _ = tracker(dets, 0.0)
            t, ended = 0.0, []
            while t + 1 / fps < gap_s:  # frames in which every object was missed
                t += 1 / fps
                ended += tracker(empty, t)[1]
            again, ended_now = tracker(dets, gap_s)
            assert (again == first).all() == same, (fps, gap_s)
            assert bool(ended or ended_now) != same, "tracks should end exactly when the miss outlasts lost_s"


def test_frames_out_of_time_order_are_refused(demo_detections):
    tracker = ByteTrackAdapter(TrackConfig(), fps=DEMO_FPS)
    tracker(demo_detections[0][1], 1.0)
    with pytest.raises(ValueError, match="not after the previous one"):
        tracker(demo_detections[1][1], 1.0)


# -- the track clock ---------------------------------------------------------------------------------------


def _frame(index: int, pts_s: float | None, captured_s: float) -> Frame:
    return Frame(np.zeros((4, 4, 3), np.uint8), index, pts_s, int(captured_s * 1e9), "test")


def test_track_clock_uses_media_time_then_capture_time_then_index():
    media = TrackClock(live=False, fps=10)
    assert [media(_frame(i, p, c)) for i, p, c in ((0, 5.0, 100.0), (3, 5.3, 100.01))] == [5.0, 5.3]
    live = TrackClock(live=True, fps=30)
    assert live(_frame(0, None, 100.0)) == pytest.approx(100.0)
    assert live(_frame(7, None, 100.25)) == pytest.approx(100.25)
    images = TrackClock(live=False, fps=5)
    assert [images(_frame(i, None, 1.0)) for i in (0, 1, 4)] == [0.0, 0.2, 0.8]
    # A duplicated media time still moves the clock forward (trackers need increasing times).
    dup = TrackClock(live=False, fps=10)
    assert dup(_frame(0, 1.0, 0.0)) < dup(_frame(1, 1.0, 0.1))


# -- the per-track distance filter --------------------------------------------------------------------------


def _approach(seed: int, n: int = 40, d0: float = 8.0, v: float = -1.5, noise_rel: float = 0.05, dt: float = 0.1):
    """A person walking towards the camera at ``v`` m/s, measured with ``noise_rel`` relative noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) * dt
    truth = d0 + v * t
    return t, truth, truth * (1 + noise_rel * rng.standard_normal(n))


def test_filter_estimates_speed_and_time_to_contact_within_their_uncertainty():
    hits = 0
    for seed in range(20):
        t, truth, raw = _approach(seed)
        f = DistanceFilter(TrackConfig())
        est = [f.update(ti, zi, 0.0) for ti, zi in zip(t, raw)]
        last = est[-1]
        true_ttc = truth[-1] / 1.5
        assert last.speed_mps < 0 and math.isfinite(last.ttc_s)
        hits += abs(last.speed_mps + 1.5) <= 2 * last.speed_std_mps and abs(last.ttc_s - true_ttc) <= 2 * last.ttc_std_s
        # smoother than the raw distances: the error of the filtered distance is smaller over the last 30 frames
        assert np.std([e.depth_m for e in est[10:]] - truth[10:]) < np.std(raw[10:] - truth[10:])
    assert hits >= 17, f"truth inside 2 standard deviations in only {hits} of 20 runs"


def test_speed_is_unknown_until_the_window_is_full():
    f = DistanceFilter(TrackConfig(window=5))
    est = [f.update(0.1 * k, 5.0 - 0.1 * k) for k in range(5)]
    assert all(math.isnan(e.speed_mps) and math.isnan(e.ttc_s) for e in est[:4])
    assert math.isfinite(est[4].speed_mps)


def test_a_single_outlier_is_rejected_and_a_lasting_jump_is_accepted():
    f = DistanceFilter(TrackConfig(window=5, outlier_rel=0.2))
    for k in range(10):
        f.update(0.1 * k, 4.0)
    spike = f.update(1.0, 7.0)  # e.g. the box's centre fell on the wall behind the person
    assert spike.outlier and spike.depth_m == pytest.approx(4.0, abs=0.05)
    assert not f.update(1.1, 4.0).outlier
    # The object really is at 6 m now (the tracker moved to another person behind): accepted within half the window.
    steps = [f.update(1.2 + 0.1 * k, 6.0) for k in range(5)]
    first_used = next(k for k, e in enumerate(steps) if not e.outlier)
    assert first_used <= 3 and steps[-1].depth_m == pytest.approx(6.0, abs=0.1)


def test_prediction_across_a_gap_follows_the_time_that_passed():
    t, truth, _ = _approach(0, n=30, noise_rel=0.0)
    f = DistanceFilter(TrackConfig())
    for ti, zi in zip(t, truth):
        f.update(ti, zi)
    # 2 s without a measurement (dropped frames, an occlusion): the distance predicted then is the truth then.
    later = t[-1] + 2.0
    est = f.update(later, math.nan)
    assert est.outlier and est.depth_m == pytest.approx(truth[-1] - 1.5 * 2.0, abs=0.05)
    assert est.depth_std_m > f.sigma(truth[-1], 0.0, True)  # and it is less sure of it than of a measurement


def test_unreliable_depth_and_wide_boxes_count_for_less():
    f = DistanceFilter(TrackConfig(noise_rel=0.03, unreliable_factor=3.0))
    assert f.sigma(10.0, 0.0, True) == pytest.approx(0.3)
    assert f.sigma(10.0, 0.0, False) == pytest.approx(0.9)
    assert f.sigma(10.0, 1.349, True) == pytest.approx(math.hypot(0.3, 1.0))


# -- events --------------------------------------------------------------------------------------------------


def _est(d: float, v: float = math.nan, sv: float = math.nan) -> TrackEstimate:
    ttc = d / -v if v < 0 else math.nan
    return TrackEstimate(d, 0.05, v, sv, ttc, 0.1 if v < 0 else math.nan, False)


def _feed(events: TrackEvents, distances, dt=0.1, tid=1, v=math.nan, sv=math.nan):
    out = []
    for k, d in enumerate(distances):
        out += events.update(tid, 0, k, k * dt, _est(d, v, sv), True)
    return out


def test_entered_needs_the_minimum_duration_and_left_needs_the_margin():
    band = BandConfig(closer_than=2.0)
    ev = TrackEvents(band, EventsConfig(margin_m=0.3, min_duration_s=0.5, approach_ttc_s=3.0))
    # 0.3 s inside, then out: too short for an event
    assert _feed(ev, [3.0] * 3 + [1.9] * 3 + [3.0] * 10) == []
    ev = TrackEvents(band, EventsConfig(margin_m=0.3, min_duration_s=0.5, approach_ttc_s=3.0))
    # inside for good: entered after 0.5 s inside; then wobbling within the margin (2.0 .. 2.3 m): no left
    wobble = [1.9, 2.1, 2.25, 1.95, 2.2, 2.28, 2.1, 2.25, 2.2, 2.15]
    got = _feed(ev, [3.0] * 3 + [1.8] * 8 + wobble + [2.6] * 8)
    kinds = [(e.kind, e.frame_index) for e in got]
    assert kinds == [("entered", 3 + 5), ("left", 3 + 8 + len(wobble) + 5)]
    assert got[0].depth_m == pytest.approx(1.8) and got[1].depth_m == pytest.approx(2.6)


def test_a_track_that_ends_inside_the_band_has_left_lost():
    ev = TrackEvents(BandConfig(closer_than=2.0), EventsConfig(min_duration_s=0.2))
    assert [e.kind for e in _feed(ev, [1.5] * 5)] == ["entered"]
    left = ev.end(1, 99, 9.9)
    assert [(e.kind, e.reason, e.frame_index) for e in left] == [("left", "lost", 99)]
    assert ev.end(2, 99, 9.9) == []  # a track that never entered leaves nothing


def test_approaching_once_per_approach_and_only_when_the_speed_is_sure():
    opts = EventsConfig(min_duration_s=0.3, approach_ttc_s=3.0)
    ev = TrackEvents(BandConfig(), opts)
    # -1 m/s at 5 .. 1 m: time to contact drops below 3 s at 3 m; one event however long it lasts
    dists = [5.0 - 0.1 * k for k in range(40)]
    got = _feed(ev, dists, v=-1.0, sv=0.1)
    assert [e.kind for e in got] == ["approaching"]
    assert got[0].ttc_s < 3.0 and got[0].ttc_s == pytest.approx(dists[got[0].frame_index] / 1.0)
    # the same approach with a speed no surer than its own noise: no event
    ev = TrackEvents(BandConfig(), opts)
    assert _feed(ev, dists, v=-1.0, sv=0.8) == []


# -- the stage on the clip --------------------------------------------------------------------------------


def test_stage_fills_the_track_columns_and_the_band_uses_the_filtered_distance(demo_detections):
    stage = TrackStage(TrackConfig(), EventsConfig(), BandConfig(closer_than=25.0), live=False, fps=DEMO_FPS)
    rng = np.random.default_rng(1)
    last = None
    for k, (t, dets) in enumerate(demo_detections):
        # distances 20 +- 10 % with the track's own noise, so the raw ones cross the band's edge at 25 m
        depth = (np.full(len(dets), 20.0) * (1 + 0.1 * rng.standard_normal(len(dets)))).astype(np.float32)
        dets = dets.with_depth(depth, np.ones(len(dets), np.float32), np.full(len(dets), 0.2, np.float32))
        last = stage(Result(frame=_frame(k, t, t), detections=dets))
    d = last.detections
    tracked = d.track_id >= 0
    assert tracked.any() and np.isfinite(d.depth_filtered_m[tracked]).all()
    old = np.array([stage.filters[t].hits >= 5 for t in d.track_id[tracked]])
    assert old.any() and np.isfinite(d.speed_mps[tracked][old]).all() and np.isnan(d.speed_mps[tracked][~old]).all()
    assert np.isnan(d.depth_filtered_m[~tracked]).all()
    assert (band_metres(d)[tracked] == d.depth_filtered_m[tracked]).all()
    assert np.abs(d.depth_filtered_m[tracked] - 20.0).max() < np.abs(d.depth_m[tracked] - 20.0).max()
    assert "track" in last.timings_ms
    assert stage.stats.tracks >= 1 and stage.stats.measured > 0


def test_clock_needs_a_frame_rate_and_the_tracker_needs_its_package(monkeypatch):
    with pytest.raises(ValueError, match="needs a frame rate > 0"):
        TrackClock(live=False, fps=0)
    monkeypatch.setitem(__import__("sys").modules, "edgefirst.tracker", None)
    from depthstream.errors import ConfigError

    with pytest.raises(ConfigError, match="tracking needs the edgefirst-tracker package"):
        ByteTrackAdapter(TrackConfig(), fps=None)
