from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from depthstream.store import locate

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"  # photos committed with the project (Debian opencv-doc's samples)
DEMO = ROOT / "data" / "vtest_pets2009_150f.mp4"
# The real model and the photos from other repositories come through the model store (the user's cache, then the
# mirror ../shared/assets; `make test` fetches them first). Missing: one error line saying how to get them.
YOLOX = locate("yolox_nano.onnx")
DOG = locate("dog.jpg")  # the YOLOX sample: dog, bicycle, car
LIVING_ROOM = locate("coco_val2017_000000000139.jpg")  # COCO val2017 #139: tv, person, chairs, table


@pytest.fixture(scope="session")
def dog_image() -> np.ndarray:
    return cv2.imread(str(DOG))


@pytest.fixture(scope="session")
def living_room_image() -> np.ndarray:
    return cv2.imread(str(LIVING_ROOM))


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


def start_demo_run(mp4: Path, jsonl: Path, min_lines: int = 10):
    """`python -m stream` on the bundled clip in a subprocess, returned once it has written at least
    ``min_lines`` JSONL lines (so a signal sent next lands while frames are flowing)."""
    import subprocess
    import sys
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "stream", "--source", "demo", "--output", str(mp4), "--jsonl", str(jsonl)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not jsonl.exists() or len(jsonl.read_text().splitlines()) < min_lines):
        time.sleep(0.05)
    return proc


# -- FastDepth-224 and the chessboard photos (issue 10) ----------------------------------------------------

CHESSBOARD = DATA / "chessboard"
CHESSBOARD_PHOTOS = sorted(CHESSBOARD.glob("left*.jpg"))
FASTDEPTH = locate("fastdepth_224_nyu.onnx")  # through the model store, its sha256 checked
FASTDEPTH_CARD = ROOT / "models" / "fastdepth_224_nyu.yaml"  # the bundled card: uint8 NHWC in, [1, 224, 224, 1] metres out


@pytest.fixture(scope="session")
def fastdepth_onnx() -> Path:
    """The real FastDepth-224 ONNX (the model store checked its sha256; a missing file fails, never skips)."""
    return FASTDEPTH


@contextlib.contextmanager
def unwritable_folder(path: Path):
    """``path`` (an existing folder) made unwritable for this process, also when it runs as root (as CI does):
    mode 0o500, and for root the immutable attribute (``chattr +i``: root ignores mode bits, not that). Both are
    undone on exit. A machine where neither holds fails the test: a permission test must run, not skip."""
    path.chmod(0o500)
    immutable = os.geteuid() == 0
    try:
        if immutable:
            r = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True, timeout=30)
            if r.returncode != 0:
                immutable = False
                pytest.fail(f"cannot make {path} unwritable for root: chattr +i failed ({r.stderr.strip()}); the "
                            f"permission tests need a file system with the immutable attribute (ext4, xfs, btrfs)")
        if os.access(path, os.W_OK):
            pytest.fail(f"{path} is still writable for this process after chmod 0o500 and chattr +i")
        yield path
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], capture_output=True, timeout=30)
        path.chmod(0o700)
