"""The demo's metres are honest: under the bundled clip's camera profile (PETS 2009 View_001),
the pedestrians the detector finds in the bundled clip come out as tall as people are."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import YOLOX
from depthstream.schema.camera import load_profile
from depthstream.schema.config import DetectConfig
from stream.depth.select import BUNDLED_PROFILE
from stream.detect import YoloxDetector


def standing_height_m(v_top, v_bottom, height_m, pitch_deg, focal_px, cy_px):
    """Height of an upright object whose foot is at row v_bottom and top at row v_top, on flat ground.

    The foot ray meets the ground at horizontal distance D; the top ray at that same distance is
    D * down(v_top) / forward(v_top) below the camera, so the object is H minus that tall.
    """
    th = np.radians(pitch_deg)

    def down_forward(v):
        y = (v - cy_px) / focal_px
        return y * np.cos(th) + np.sin(th), np.cos(th) - y * np.sin(th)

    d_b, f_b = down_forward(v_bottom)
    dist = height_m * f_b / d_b
    d_t, f_t = down_forward(v_top)
    return height_m - dist * d_t / f_t


@pytest.mark.timeout(60)
def test_pedestrians_are_about_1_7_m_tall(demo_frames):
    profile = load_profile(BUNDLED_PROFILE)
    mount, intr = profile.mounting, profile.intrinsics_for(768, 576)
    heights = []
    with YoloxDetector.from_path(YOLOX, DetectConfig(conf=0.5, classes=("person",))) as det:
        for image in demo_frames:
            h, w = image.shape[:2]
            dets, _ = det(image)
            for x1, y1, x2, y2 in dets.xyxy:
                whole = x1 > 2 and y1 > 2 and x2 < w - 2 and y2 < h - 2 and (y2 - y1) > 1.8 * (x2 - x1)
                if whole:
                    # box edges are pixel edges; the profile's rows are OpenCV's (row r's centre is r): - 0.5
                    heights.append(standing_height_m(y1 - 0.5, y2 - 0.5, mount.height_m, mount.pitch_deg, intr.fy,
                                                     intr.cy))
    assert len(heights) >= 20
    # detector boxes carry a little margin around the person: 1.6-1.95 m is a person
    assert 1.6 < np.median(heights) < 1.95, np.percentile(heights, [10, 50, 90])
