"""Cross-check: a depth source's box distances against the size priors' (stream/depth/crosscheck.py, sizing.py).
FastDepth-224 (NYU, indoor) must look out of its domain on the street clip and a street photo, and not on indoor
photos; the ground plane must agree on its own clip and disagree under another camera's geometry."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from conftest import DATA, DEMO, FASTDEPTH_CARD, LIVING_ROOM, YOLOX
from depthstream.coco import COCO_CLASSES
from depthstream.schema.camera import load_profile
from depthstream.schema.card import load_card
from depthstream.schema.config import DetectConfig, load_config
from depthstream.store import locate
from depthstream.types import Frame
from stream.depth import GroundPlaneDepth, OnnxDepth
from stream.depth.scaled import ScaledNetworkDepth
from stream.depth.sizing import SizeStage
from stream.detect import YoloxDetector

PROFILE = load_profile(DEMO.parent / "vtest_pets2009.camera.yaml")


def _verdicts(depth, images, profile=None, stat="center_mean"):
    stage = SizeStage(load_config().depth, depth, COCO_CLASSES, profile=profile, box_stat=stat)
    maps = []
    with YoloxDetector.from_path(YOLOX, DetectConfig(conf=0.3)) as det:
        depth.open()
        try:
            for i, image in enumerate(images):
                frame = Frame(image, i, None, 0, "x")
                dm, boxed = stage(frame, depth(frame), det(image)[0])
                maps.append((dm, boxed))
        finally:
            depth.close()
    return stage, maps


@pytest.mark.timeout(120)
def test_fastdepth_looks_out_of_its_domain_on_the_street_clip(demo_frames):
    """No camera profile given to the network (it cannot know the scene): the size priors find it out."""
    stage, maps = _verdicts(ScaledNetworkDepth(OnnxDepth(load_card(FASTDEPTH_CARD))), demo_frames, PROFILE)
    verdict = stage.last[1]
    assert verdict.verdict == "out of domain" and verdict.ratio < 0.3  # people 20-55 m away read 2-5 m
    dm, boxed = maps[-1]
    assert dm.details["crosscheck"]["verdict"] == "out of domain" and "looks out of its domain" in dm.state
    assert not boxed.depth_reliable.any()  # scaled or not, its metres are flagged
    assert all("out of domain by the size priors' cross-check" in note for note in boxed.depth_note)
    assert dm.details["scale"]["applied"] and "scaled by size priors" in dm.state  # mode auto: scaled meanwhile
    assert any("looks out of its domain" in line for line in stage.summary())


@pytest.mark.timeout(60)
@pytest.mark.parametrize("photo, expected", [
    (LIVING_ROOM, "agrees"),  # a person standing in a living room
    (DATA / "basketball2.png", "agrees"),  # a man standing in an office
    (locate("coco_val2017_000000001532.jpg"), "out of domain"),  # cars on a street, 7-30 m away
    (locate("coco_val2017_000000000632.jpg"), "unknown"),  # a bedroom: nobody, no vehicle
])
def test_fastdepth_on_photos_without_a_profile(photo, expected):
    stage, maps = _verdicts(ScaledNetworkDepth(OnnxDepth(load_card(FASTDEPTH_CARD))), [cv2.imread(str(photo))])
    dm, boxed = maps[0]
    assert stage.last[1].verdict == expected
    assert dm.details["size_prior"]["focal_assumed"] is True
    if expected == "agrees":
        assert 0.6 < stage.last[1].ratio < 1.5 and boxed.depth_reliable.any()
        assert not dm.details["scale"]["applied"]  # in its domain: its own metres


@pytest.mark.timeout(60)
def test_ground_plane_agrees_on_its_own_clip_and_not_under_another_cameras_geometry(demo_frames):
    stage, maps = _verdicts(GroundPlaneDepth(PROFILE), demo_frames, PROFILE, stat="bottom")
    assert stage.last[1].verdict == "agrees" and maps[-1][1].depth_reliable.all()
    tilted = dataclasses.replace(PROFILE, mounting=dataclasses.replace(PROFILE.mounting, pitch_deg=30.0))
    stage, maps = _verdicts(GroundPlaneDepth(tilted), demo_frames, PROFILE, stat="bottom")  # the wrong pitch
    assert stage.last[1].verdict == "disagrees" and stage.last[1].ratio < 0.6
    dm, boxed = maps[-1]
    assert "another camera's geometry" in dm.state and not boxed.depth_reliable.any()
    assert all("disagrees with the size priors' cross-check" in note for note in boxed.depth_note)
    assert np.all(np.isfinite(boxed.depth_m[boxed.class_id == 0]))  # still reported, flagged
