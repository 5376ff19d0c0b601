"""A wheel that runs from any folder: built from the tracked files, installed into a fresh virtual environment,
then ``depthstream`` / ``python -m stream --source demo`` run a few frames from a folder outside the checkout.

Offline and fast: the wheel is built without build isolation (this environment's setuptools), installed with
``--no-index --no-deps``, and the new environment reuses this one's installed dependencies (numpy, OpenCV, PyAV,
ONNX Runtime, ...) through a ``.pth`` line naming their folder -- a plain path, so this environment's editable
install of the checkout is *not* picked up: the product's code and data come from the wheel alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tarfile

import pytest

from conftest import ROOT
from depthstream.store import ModelStore


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    tree = tmp / "tree"
    with tarfile.open(tmp / "tree.tar", "w") as tar:
        for name in filter(None, tracked):
            if (ROOT / name.decode()).is_file():
                tar.add(ROOT / name.decode(), arcname=name.decode())
    with tarfile.open(tmp / "tree.tar") as tar:
        tar.extractall(tree, filter="data")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                            "-w", str(tmp / "dist"), str(tree)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    wheel = next((tmp / "dist").glob("depthstream-*.whl"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    install = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--no-deps", "--no-index", "-q",
                              str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    purelib = subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (tmp / "venv" / purelib / "_depthstream_test_deps.pth").write_text("".join(p + "\n" for p in sorted(deps)))
    mirror = ModelStore().mirror  # the same store as this session: the user's cache, this mirror
    env = {**os.environ, "DEPTHSTREAM_MIRROR": str(mirror) if mirror else ""}
    env.pop("PYTHONPATH", None)
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    return venv, env, elsewhere, wheel


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_wheel_holds_the_data_it_needs(installed):
    import zipfile

    *_, wheel = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"depthstream/_project/config.yaml", "depthstream/_project/models/MANIFEST.yaml",
            "depthstream/_project/models/fastdepth_224_nyu.yaml", "depthstream/_project/data/vtest_pets2009_150f.mp4",
            "depthstream/_project/data/vtest_pets2009.camera.yaml",
            "depthstream/store.py", "stream/__main__.py", "stream/web/page.html"} <= names
    assert not any(n.endswith((".onnx", ".jpg", ".png")) for n in names)  # models and photos come through the store


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_installed_wheel_runs_the_demo_from_another_folder(installed):
    venv, env, elsewhere, _ = installed
    python = venv / "bin" / "python"
    where = subprocess.run([str(python), "-c", "import stream, depthstream.store as s; print(stream.__file__); "
                            "print(s.DEFAULT_CONFIG)"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60)
    module, config = where.stdout.split()
    assert module.startswith(str(venv)) and config.startswith(str(venv)), where.stdout  # not the checkout
    r = subprocess.run([str(venv / "bin" / "depthstream"), "--source", "demo", "--max-frames", "4", "--output", "x.mp4",
                        "--jsonl", "x.jsonl", "--quiet"], cwd=elsewhere, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in (elsewhere / "x.jsonl").read_text().splitlines()]
    assert [rec["index"] for rec in records] == [0, 1, 2, 3]
    assert sum(d["class"] == "person" for d in records[0]["detections"]) >= 3  # the walkway's pedestrians
    assert (elsewhere / "x.mp4").stat().st_size > 10_000
    r = subprocess.run([str(python), "-m", "stream", "--source", "demo", "--max-frames", "2", "--output", "y.mp4",
                        "--quiet"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and (elsewhere / "y.mp4").is_file(), r.stderr
    page = subprocess.run([str(python), "-c", "from importlib.resources import files; "
                           "print(files('stream.web').joinpath('page.html').read_text()[:15])"],
                          cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60)
    assert page.stdout.strip() == "<!doctype html>", page.stderr  # the browser view's page comes with the wheel
