"""Size-prior ranging: each box's distance from its class's typical size (stream/depth/sizeprior.py, priors.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import DEMO, YOLOX
from depthstream.coco import COCO_CLASSES
from depthstream.errors import ConfigError
from depthstream.schema.camera import load_profile
from depthstream.schema.config import DetectConfig, SizePriorConfig, load_config
from depthstream.types import Detections, Frame
from stream.boxdepth import assign_box_depth
from stream.depth import GroundPlaneDepth
from stream.depth.priors import CLASS_PRIORS, prior_for
from stream.depth.sizeprior import IQR_Z, SizePriorDepth, SizePriorRanger, camera_geometry, hidden_below
from stream.detect import YoloxDetector

PROFILE = load_profile(DEMO.parent / "vtest_pets2009.camera.yaml")
OPTIONS = SizePriorConfig()
PERSON, CAR, DOG = (COCO_CLASSES.index(n) for n in ("person", "car", "dog"))


def dets(*rows) -> Detections:
    """Boxes (x1, y1, x2, y2, class id)."""
    a = np.array(rows, float)
    return Detections(a[:, :4], np.full(len(a), 0.9), a[:, 4].astype(int))


def test_priors_cite_their_sources_and_have_plausible_spreads():
    assert {"person", "car", "bus", "truck", "bicycle", "motorcycle"} <= set(CLASS_PRIORS)
    for name, cp in CLASS_PRIORS.items():
        for p in (cp.height, cp.width):
            if p is not None:
                assert len(p.source) > 30, name
                assert 0.02 < p.spread < 0.5, name
        assert cp.prior(cp.primary) is not None, name
    person = prior_for("person")
    assert person.primary == "height" and person.upright and 1.6 < person.height.metres < 1.8
    assert prior_for("dog") is None  # a dog's size varies too much to range it


def test_focal_length_from_the_profile_scales_with_the_frame_and_else_is_assumed_and_said():
    geo = camera_geometry(768, 576, OPTIONS, PROFILE)
    assert geo.fy == pytest.approx(1194.6) and not geo.assumed and geo.pitch_deg == 16.5
    assert camera_geometry(1536, 1152, OPTIONS, PROFILE).fy == pytest.approx(2 * 1194.6)
    assumed = camera_geometry(640, 480, OPTIONS, None)
    assert assumed.fx == pytest.approx(320 / math.tan(math.radians(35)))  # hfov 70 deg
    assert assumed.assumed and assumed.focal_spread == OPTIONS.assumed_focal_spread
    assert "assumed: hfov 70 deg" in assumed.describe()
    assert SizePriorRanger(OPTIONS, COCO_CLASSES)(dets([300, 100, 340, 300, PERSON]), 640, 480).geometry == assumed
    with pytest.raises(ConfigError, match="another aspect ratio than the 768x576"):
        camera_geometry(1280, 720, OPTIONS, PROFILE)


def _project(point, f, cy, pitch_deg):
    """Row of a world point (X right, Y down, Z forward, camera at the origin pitched down), and its z-depth."""
    th = math.radians(pitch_deg)
    _, y, z = point
    zc = y * math.sin(th) + z * math.cos(th)
    yc = y * math.cos(th) - z * math.sin(th)
    return cy + f * yc / zc, zc


@pytest.mark.parametrize("pitch, foot_y, dist", [(0.0, 1.5, 20.0), (16.5, 7.07, 25.0), (35.0, 8.0, 12.0)])
def test_height_distance_matches_a_projected_upright_person_under_a_pitched_camera(pitch, foot_y, dist):
    """A person 1.72 m tall standing ``dist`` m ahead, ``foot_y`` m below a pitched camera, projected with a
    pinhole; the ranger must give the z-depth of the point of the person seen at the box's centre row."""
    f, cy = 1000.0, 299.5
    top, _ = _project((0, foot_y - 1.72, dist), f, cy, pitch)
    bottom, _ = _project((0, foot_y, dist), f, cy, pitch)
    middle = (top + bottom) / 2
    lo, hi = foot_y - 1.72, foot_y  # the point on the person seen at the centre row, by bisection
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _project((0, mid, dist), f, cy, pitch)[0] < middle else (lo, mid)
    _, want = _project((0, (lo + hi) / 2, dist), f, cy, pitch)
    profile = PROFILE.__class__(name="test", intrinsics=PROFILE.intrinsics.__class__(
        width=800, height=600, fy=f, cy=cy, source={"method": "manual"}),
        mounting=PROFILE.mounting.__class__(height_m=foot_y, pitch_deg=pitch, source={"method": "manual"}))
    ranger = SizePriorRanger(OPTIONS, COCO_CLASSES, profile)
    r = ranger(dets([390, top, 410, bottom, PERSON]), 800, 600)
    scale = 1.72 / CLASS_PRIORS["person"].height.metres  # the prior's height, not the true one, gives the distance
    assert r.basis[0] == "height" and r.reference[0]
    assert r.distance_m[0] == pytest.approx(want / scale, rel=1e-6)


def test_cut_boxes_and_classes_without_a_prior_get_no_distance_on_that_dimension():
    ranger = SizePriorRanger(OPTIONS, COCO_CLASSES)
    r = ranger(dets([100, 200, 300, 479.5, CAR],     # cut at the bottom: a car has only a height prior
                    [100, 50, 160, 479, PERSON],     # a person cut at the bottom: its width still ranges it
                    [0.5, 50, 60, 300, PERSON],      # cut on the left (and standing): height
                    [200, 100, 260, 220, DOG]), 640, 480)
    assert list(r.basis) == ["cut", "width", "height", "no prior"]
    assert math.isnan(r.distance_m[0]) and math.isnan(r.distance_m[3])
    assert r.distance_m[1] == pytest.approx(r.geometry.fx * 0.70 / 60)
    # the width of a person varies with pose: never a reference; a standing person is one
    assert not r.reference[1] and r.reference[2]
    # under an assumed focal length no distance is one to stand behind
    assert not r.reliable.any()


def test_a_person_not_upright_or_hidden_below_is_only_bounded_and_flagged():
    ranger = SizePriorRanger(OPTIONS, COCO_CLASSES)
    sitting = [100, 100, 220, 250, PERSON]  # 150 x 120 px: not upright
    r = ranger(dets(sitting), 640, 480)
    f = r.geometry.fx
    assert r.basis[0] == "bound" and not r.reliable[0] and not r.reference[0]
    assert r.distance_m[0] == pytest.approx(min(f * 1.72 / 150, f * 0.70 / 120))
    # standing behind a car: the person's bottom edge ends inside the car's box
    boxes = np.array([[300, 100, 340, 230], [250, 180, 450, 300]], float)
    assert list(hidden_below(boxes)) == [True, False]
    behind = ranger(dets([*boxes[0], PERSON], [*boxes[1], CAR]), 640, 480)
    assert behind.basis[0] == "bound" and behind.basis[1] == "height"
    # standing in front of it: the feet are below the car's bottom
    front = ranger(dets([300, 150, 340, 330, PERSON], [250, 180, 450, 300, CAR]), 640, 480)
    assert front.basis[0] == "height" and front.reference[0]


def test_spread_combines_prior_pixels_and_an_assumed_focal_length_and_reports_an_iqr():
    r = SizePriorRanger(OPTIONS, COCO_CLASSES)(dets([300, 100, 340, 300, PERSON]), 640, 480)
    prior = CLASS_PRIORS["person"].height.spread
    own = math.hypot(prior, math.sqrt(2) * OPTIONS.box_error_px / 200)
    assert r.spread[0] == pytest.approx(own)
    total = math.hypot(own, OPTIONS.assumed_focal_spread)
    z = r.distance_m[0]
    assert r.spread_m[0] == pytest.approx(z * (math.exp(IQR_Z * total) - math.exp(-IQR_Z * total)))
    boxed = r.apply_to(dets([300, 100, 340, 300, PERSON]))
    assert boxed.depth_m[0] == pytest.approx(z, rel=1e-6) and not boxed.depth_reliable[0]  # the focal is assumed
    assert boxed.depth_spread_m[0] == pytest.approx(r.spread_m[0], rel=1e-6) and math.isnan(boxed.depth_valid_frac[0])
    # the same field of view from a camera profile: the same distance, without the focal length's spread, trusted
    profile = PROFILE.__class__(name="phone", intrinsics=PROFILE.intrinsics.__class__(
        width=640, height=480, hfov_deg=70.0, source={"method": "datasheet"}))
    known = SizePriorRanger(OPTIONS, COCO_CLASSES, profile)(dets([300, 100, 340, 300, PERSON]), 640, 480)
    assert known.distance_m[0] == pytest.approx(z, rel=2e-3) and known.reliable[0] and known.common_spread == 0
    assert known.spread_m[0] == pytest.approx(z * (math.exp(IQR_Z * own) - math.exp(-IQR_Z * own)), rel=2e-3)


def test_size_prior_source_has_no_map_and_says_which_focal_length():
    image = np.zeros((480, 640, 3), np.uint8)
    dm = SizePriorDepth(OPTIONS)(Frame(image, 0, None, 0, "x"))
    assert dm.kind == "size-prior" and dm.source == "size-prior" and not dm.valid.any()
    assert not dm.metres.flags.writeable and dm.metres.shape == (480, 640)
    assert "assumed: hfov 70 deg" in dm.state and dm.details["size_prior"]["focal_assumed"] is True


@pytest.mark.timeout(120)
def test_persons_on_the_demo_clip_agree_with_the_ground_plane(demo_frames):
    """The bundled clip's published calibration gives each pedestrian's distance from where the feet touch the
    ground; the size priors, with the same camera's focal length and pitch, must agree with it (150 frames:
    median 7.4 %, see README)."""
    cfg = load_config()
    ground = GroundPlaneDepth(PROFILE, cfg.depth.ground_max_m)
    ranger = SizePriorRanger(cfg.depth.size_prior, COCO_CLASSES, PROFILE)
    assumed = SizePriorRanger(cfg.depth.size_prior, COCO_CLASSES)
    rel, rel_assumed, refs = [], [], 0
    with YoloxDetector.from_path(YOLOX, DetectConfig(conf=0.3)) as det:
        for image in demo_frames:
            d, _ = det(image)
            gp = assign_box_depth(d, ground.depth_for_size(576, 768), "bottom").depth_m
            r, a = ranger(d, 768, 576), assumed(d, 768, 576)
            ref = r.reference & (d.class_id == PERSON)
            refs += int(ref.sum())
            rel += list((r.distance_m[ref] - gp[ref]) / gp[ref])
            rel_assumed += list((a.distance_m[ref] - gp[ref]) / gp[ref])
    assert refs >= 20
    assert np.median(np.abs(rel)) < 0.12
    assert -0.15 < np.median(rel) < 0.05
    # without the camera's profile the assumed 70 deg is far from this camera's 36 deg: every box says so
    assert np.median(rel_assumed) < -0.4
