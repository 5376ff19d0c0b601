"""The frozen data that flows through the pipeline: what its constructors accept."""

from __future__ import annotations

import numpy as np
import pytest

from depthstream.types import Detections


def test_detections_take_n_boxes_of_four_coordinates():
    dets = Detections(np.zeros((5, 4)), np.ones(5), np.zeros(5))
    assert len(dets) == 5 and dets.xyxy.dtype == np.float32 and dets.depth_m.shape == (5,)
    assert len(Detections([], [], [])) == 0 and Detections([], [], []).xyxy.shape == (0, 4)


@pytest.mark.parametrize("shape", [(4, 5), (4,), (2, 2, 4), (20,)])
def test_detections_refuse_boxes_that_are_not_n_by_4(shape):
    # A (4, 5) array is not five boxes: reshaping it would invent boxes from unrelated numbers.
    with pytest.raises(ValueError, match=r"Detections.xyxy must be an \(N, 4\) array of boxes .*got shape"):
        Detections(np.zeros(shape), np.ones(5), np.zeros(5))
