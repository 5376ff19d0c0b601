"""Automatic scale: a depth network's metres fitted to the size priors' references (stream/depth/autoscale.py,
robust.py, scaled.py, sizing.py), on real frames with real detections, sources rescaled by a known factor."""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np
import pytest

from bench.sizeprior_bench import RescaledOutput
from conftest import DEMO, LIVING_ROOM, YOLOX
from depthstream.coco import COCO_CLASSES
from depthstream.errors import DepthError
from depthstream.schema.camera import load_profile
from depthstream.schema.card import load_card
from depthstream.schema.config import AutoScaleConfig, DetectConfig, load_config
from depthstream.store import locate
from depthstream.types import Frame
from fastdepth_variants import write_variant
from stream.boxdepth import assign_box_depth
from stream.depth import GroundPlaneDepth, OnnxDepth
from stream.depth.autoscale import AutoScale, SceneCut
from stream.depth.robust import robust_line, robust_location
from stream.depth.scaled import ScaledNetworkDepth
from stream.depth.sizing import SizeStage
from stream.detect import YoloxDetector

PROFILE = load_profile(DEMO.parent / "vtest_pets2009.camera.yaml")
PERSON = COCO_CLASSES.index("person")


def with_mode(mode: str):
    cfg = load_config()
    return dataclasses.replace(cfg.depth, autoscale=dataclasses.replace(cfg.depth.autoscale, mode=mode))


@pytest.fixture(scope="module")
def demo_detections(demo_frames):
    with YoloxDetector.from_path(YOLOX, DetectConfig(conf=0.3)) as det:
        return [det(image)[0] for image in demo_frames]


def test_robust_location_leaves_gross_outliers_out():
    rng = np.random.default_rng(7)
    good = rng.normal(0.3, 0.05, 40)
    values = np.concatenate([good, np.full(10, 1.0)])  # a fifth of the references are wrong by far more
    fit = robust_location(values, np.full(50, 0.05))
    assert fit.params[0] == pytest.approx(good.mean(), abs=0.01)
    assert fit.inliers[:40].all() and not fit.inliers[40:].any()
    assert math.sqrt(fit.cov[0, 0]) == pytest.approx(0.05 / math.sqrt(40), rel=0.3)


def test_robust_line_recovers_slope_and_intercept_despite_outliers():
    rng = np.random.default_rng(3)
    x = rng.uniform(0.01, 0.06, 60)
    y = 3.0 * x + 0.002 + rng.normal(0, 0.0005, 60)
    y[:6] *= 2.0
    fit = robust_line(x, y, np.full(60, 0.0005))
    assert fit.params[0] == pytest.approx(3.0, rel=0.03) and fit.params[1] == pytest.approx(0.002, abs=0.0005)
    assert not fit.inliers[:6].any()
    assert robust_line(np.full(5, 0.02), np.arange(5.0), np.ones(5)) is None  # one x: no line


def _run(network, demo_frames, detections, mode: str, stat: str, profile=PROFILE):
    wrapped = ScaledNetworkDepth(network)
    stage = SizeStage(with_mode(mode), wrapped, COCO_CLASSES, profile=profile, box_stat=stat)
    out = []
    with wrapped:
        for i, (image, d) in enumerate(zip(demo_frames, detections)):
            frame = Frame(image, i, None, 0, "demo")
            if isinstance(network, RescaledOutput):
                network.current = GroundPlaneDepth(PROFILE)(frame).metres
            out.append(stage(frame, wrapped(frame), d))
    return stage, out


@pytest.mark.timeout(120)
@pytest.mark.parametrize("inverse", [False, True])
def test_scale_of_the_ground_planes_metres_divided_by_3_is_found_again(demo_frames, demo_detections, inverse):
    """The ground plane's metres (the clip's published calibration) turned into metres / 3, or into inverse depth
    1 / (3 m): the fit must give the ground plane's metres back (150 frames: -9 % and -6 %, README)."""
    network = RescaledOutput("ground plane rescaled", 3.0 if inverse else 1 / 3, inverse)
    stage, out = _run(network, demo_frames, demo_detections, "auto" if inverse else "always", "bottom")
    scaling = stage.last[0]
    assert scaling.fit.calibrated and scaling.applied
    assert scaling.fit.fit == ("scale-shift" if inverse else "scale")
    at_25m = 1 / (3 * 25.0) if inverse else 25.0 / 3
    assert scaling.fit.apply(np.array([at_25m]))[0] == pytest.approx(25.0, rel=0.15)
    gp = GroundPlaneDepth(PROFILE).depth_for_size(576, 768)
    errors = []
    for (dm, boxed), d in zip(out[3:], demo_detections[3:]):
        persons = d.class_id == PERSON
        truth = assign_box_depth(d, gp, "bottom").depth_m[persons]
        errors += list(np.abs(boxed.depth_m[persons] / truth - 1))
        assert dm.kind == ("relative+autoscaled" if inverse else "metric") and "scaled by size priors" in dm.state
        assert dm.details["scale"]["state"] == "calibrated" and dm.details["scale"]["applied"]
    assert np.nanmedian(errors) < 0.2


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fastdepth-variants")
    return {name: write_variant(folder, f, inv) for name, f, inv in
            (("x1", 1.0, False), ("x3", 3.0, False), ("inverse", 3.0, True))}


@pytest.mark.timeout(180)
def test_fastdepth_times_3_and_inverted_is_scaled_back_to_the_same_metres(demo_frames, demo_detections, variants):
    """The real FastDepth-224 on the street clip (out of its indoor domain) with its metres x 3, and as inverse
    depth: the fits follow the factor exactly, and all three give the persons' distances the ground plane gives
    to within what FastDepth's own map allows (150 frames: 13.7 %, README; unscaled: 90 %)."""
    runs = {}
    for name, card in variants.items():
        network = OnnxDepth(load_card(card), autoscaled=True)
        runs[name] = _run(network, demo_frames, demo_detections, "always", "center_mean")
    one, three, inverse = (runs[k][0].last[0] for k in ("x1", "x3", "inverse"))
    assert one.applied and three.applied and inverse.applied
    assert three.fit.scale * 3 == pytest.approx(one.fit.scale, rel=1e-4)
    for (_, a), (_, b) in zip(runs["x1"][1], runs["x3"][1]):
        np.testing.assert_allclose(a.depth_m, b.depth_m, rtol=1e-4)
    gp = GroundPlaneDepth(PROFILE).depth_for_size(576, 768)
    for name in variants:
        errors = []
        for (_, boxed), d in zip(runs[name][1][3:], demo_detections[3:]):
            persons = d.class_id == PERSON
            errors += list(np.abs(boxed.depth_m[persons] / assign_box_depth(d, gp, "bottom").depth_m[persons] - 1))
        assert np.nanmedian(errors) < 0.3, name


@pytest.mark.timeout(120)
def test_a_reused_map_neither_updates_the_fit_nor_the_cross_check(demo_frames, demo_detections, variants):
    """depth.every: a frame given an earlier frame's map (stamped with that frame) is no new measurement; the
    fit and the verdict of the last fresh map stay as they were, and its boxes get their distances under that fit."""
    wrapped = ScaledNetworkDepth(OnnxDepth(load_card(variants["x3"]), autoscaled=True))
    stage = SizeStage(with_mode("always"), wrapped, COCO_CLASSES, profile=PROFILE, box_stat="center_mean")
    with wrapped:
        frames = [Frame(image, i, i / 10, 0, "demo") for i, image in enumerate(demo_frames[:12])]
        for f, d in zip(frames[:10], demo_detections[:10]):
            last_map = wrapped(f).stamped(f)
            stage(f, last_map, d)
        fit, verdict = stage.last[0].fit, stage.last[1]
        dm, boxed = stage(frames[10], last_map, demo_detections[10])  # frame 9's map again
        assert stage.last[0].fit is fit and stage.last[1] is verdict
        assert dm.frame_index == 9 and dm.details["scale"]["scale"] == fit.details(True)["scale"]
        assert np.isfinite(boxed.depth_m).sum() == np.isfinite(assign_box_depth(demo_detections[10], dm, "center_mean")
                                                                .depth_m).sum()
        stage(frames[11], wrapped(frames[11]).stamped(frames[11]), demo_detections[11])  # a fresh map: updated
        assert stage.last[0].fit is not fit


@pytest.mark.timeout(60)
def test_no_references_means_uncalibrated_never_a_guess(variants):
    """A bedroom without people or vehicles: an inverse-depth network has nothing to be scaled by."""
    image = cv2.imread(str(locate("coco_val2017_000000000632.jpg")))
    with YoloxDetector.from_path(YOLOX, DetectConfig(conf=0.3)) as det:
        d, _ = det(image)
    assert len(d) > 0
    wrapped = ScaledNetworkDepth(OnnxDepth(load_card(variants["inverse"]), autoscaled=True))
    stage = SizeStage(with_mode("auto"), wrapped, COCO_CLASSES, box_stat="center_mean")
    with wrapped:
        frame = Frame(image, 0, None, 0, "bedroom")
        dm, boxed = stage(frame, wrapped(frame), d)
    assert dm.kind == "relative+autoscaled" and not dm.valid.any()
    assert "uncalibrated" in dm.state and dm.details["scale"]["state"] == "uncalibrated"
    assert dm.details["scale"]["scale"] is None and dm.details["size_prior"]["references"] == 0
    assert np.isnan(boxed.depth_m).all() and not boxed.depth_reliable.any()


def test_a_relative_network_without_calibration_needs_the_automatic_scale(variants):
    with pytest.raises(DepthError, match="has no calibration.*automatic scale from size priors"):
        OnnxDepth(load_card(variants["inverse"]))


@pytest.mark.timeout(60)
def test_references_age_out_and_the_fit_becomes_uncalibrated(demo_frames, demo_detections):
    """Real references from the clip, then frames where nobody is seen: the time-weighted count of references
    per frame halves every half-life, so the metres turn uncalibrated instead of keeping an old scale for ever."""
    options = AutoScaleConfig(half_life_frames=5, min_references=2.0)
    auto = AutoScale(options, "metric")
    stage = SizeStage(load_config().depth, GroundPlaneDepth(PROFILE), COCO_CLASSES, profile=PROFILE, box_stat="bottom")
    gp = GroundPlaneDepth(PROFILE).depth_for_size(576, 768)
    for d in demo_detections:
        r = stage.ranger(d, 768, 576)
        y = assign_box_depth(d, gp, "bottom").depth_m / 2  # metres off by 2
        fit = auto.update(y[r.reference], r.distance_m[r.reference], r.spread[r.reference])
    assert fit.calibrated and fit.scale == pytest.approx(2.0, rel=0.2) and fit.references > 3
    empty = np.zeros(0)
    states = [auto.update(empty, empty, empty).calibrated for _ in range(20)]
    first_off = states.index(False)
    # about 5 refs per frame must fall below 2: log2(5 / 2) = 1.3 half-lives (frames with nobody count too)
    assert 3 <= first_off <= 12 and not any(states[first_off:])


def test_scene_cut_between_unrelated_frames_only(demo_frames):
    cut = SceneCut(load_config().depth.autoscale.scene_cut)
    assert cut(demo_frames[0])  # the first frame starts a scene
    assert not any(cut(image) for image in demo_frames[1:])
    assert cut(cv2.resize(cv2.imread(str(LIVING_ROOM)), (768, 576)))
    assert not cut(cv2.resize(cv2.imread(str(LIVING_ROOM)), (768, 576)))  # the same again: no cut
    never = SceneCut(1.0)
    never(demo_frames[0])
    assert not never(cv2.imread(str(LIVING_ROOM)))
