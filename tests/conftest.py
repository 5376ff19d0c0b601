from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
YOLOX = ROOT / "models" / "yolox_nano.onnx"
DEMO = ROOT / "data" / "vtest_pets2009_150f.mp4"


@pytest.fixture(scope="session")
def dog_image() -> np.ndarray:
    return cv2.imread(str(DATA / "dog.jpg"))


@pytest.fixture(scope="session")
def living_room_image() -> np.ndarray:
    return cv2.imread(str(DATA / "coco_val2017_000000000139.jpg"))


@pytest.fixture(scope="session")
def demo_frames() -> list[np.ndarray]:
    """The first 12 frames of the bundled clip, BGR."""
    import av

    frames = []
    with av.open(str(DEMO)) as c:
        for f in c.decode(video=0):
            frames.append(f.to_ndarray(format="bgr24"))
            if len(frames) == 12:
                break
    return frames
