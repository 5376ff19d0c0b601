"""The model store: cache -> mirror -> (explicit) download, the sha256 check everywhere, the one-line errors,
and the real models it serves. Downloads go to a local HTTP server on 127.0.0.1 only."""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import subprocess
import sys
import threading

import cv2
import numpy as np
import pytest

from conftest import DATA, ROOT, YOLOX
from depthstream.errors import ConfigError, EngineError, ModelNotFoundError
from depthstream.hashing import sha256_of
from depthstream.store import MODELS_DIR, ModelStore, cache_root, default_mirror, download, load_manifest
from engines.backends import EngineOptions
from export.fetch import fetch_models
from stream.detect import YoloxDetector


def closed_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the socket is: connections are refused


@pytest.fixture
def http_folder(tmp_path):
    """A folder served over HTTP on 127.0.0.1 (a thread, stopped after the test): (folder, base URL)."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="test-http", daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def _manifest(tmp_path, name: str, data: bytes, url: str | None, sha256: str | None = None):
    path = tmp_path / "MANIFEST.yaml"
    where = f"url: {url}" if url else "produce: run the converter of the test"
    path.write_text(
        "files:\n"
        f"  - name: {name}\n"
        f"    sha256: '{sha256 or hashlib.sha256(data).hexdigest()}'\n"
        f"    size: {len(data)}\n"
        "    licence: test\n"
        "    source: made by the test\n"
        f"    {where}\n"
        f"    mirror: sub/{name}\n"
        "    needed_by: [test]\n")
    return path


# -- the project's manifest and the real files ----------------------------------------------------------


def test_the_manifest_covers_the_default_models_and_the_test_photos():
    files, shipped = load_manifest()
    assert {"yolox_nano.onnx", "fastdepth_224_nyu.onnx", "fast_depth_224_int8.tflite", "dog.jpg",
            "coco_val2017_000000000139.jpg"} <= set(files)
    for f in files.values():  # a pinned raw URL at a fixed commit, or how to produce the file
        assert (f.url or "").startswith("https://raw.githubusercontent.com/") and len(f.url.split("/")[5]) == 40 \
            or (f.url is None and f.produce)
        assert f.licence and f.source
    assert files["fastdepth_224_nyu.onnx"].url is None and "tf2onnx" in files["fastdepth_224_nyu.onnx"].produce
    assert "yolox_nano.onnx" in ModelStore().names("demo")
    assert list(shipped) == ["data/vtest_pets2009_150f.mp4"]


def test_every_file_the_tests_need_is_found_and_matches_its_size():
    store = ModelStore()
    for name in store.names("test"):
        path = store.locate(name)
        assert path.stat().st_size == store.files[name].size and sha256_of(path) == store.files[name].sha256


def test_a_path_in_the_products_models_folder_is_the_stores_file(tmp_path):
    store = ModelStore()
    assert store.resolve(MODELS_DIR / "yolox_nano.onnx") == store.locate("yolox_nano.onnx") == YOLOX
    mine = tmp_path / "yolox_nano.onnx"  # the same name elsewhere is the user's own file, taken as given
    assert store.resolve(mine) == mine and store.resolve("models/other.onnx").name == "other.onnx"


# -- where files are looked for -----------------------------------------------------------------------------


def test_cache_comes_before_the_mirror_and_both_are_checked(tmp_path):
    data = b"model bytes"
    manifest = _manifest(tmp_path, "m.onnx", data, "http://127.0.0.1:1/m.onnx")
    (tmp_path / "mirror" / "sub").mkdir(parents=True)
    (tmp_path / "mirror" / "sub" / "m.onnx").write_bytes(data)
    store = ModelStore(manifest, cache_dir=tmp_path / "cache", mirror=tmp_path / "mirror")
    assert store.locate("m.onnx") == tmp_path / "mirror" / "sub" / "m.onnx"
    (tmp_path / "cache" / "models").mkdir(parents=True)
    (tmp_path / "cache" / "models" / "m.onnx").write_bytes(data)
    assert store.locate("m.onnx") == tmp_path / "cache" / "models" / "m.onnx"
    (tmp_path / "cache" / "models" / "m.onnx").write_bytes(b"model bytez")  # damaged: refused, not skipped
    expected = sha256_of(tmp_path / "mirror" / "sub" / "m.onnx")
    with pytest.raises(EngineError, match=rf"m.onnx has sha256 (?!{expected})[0-9a-f]{{64}} \(11 bytes\), but the model "
                                          rf"manifest pins {expected} \(11 bytes\) for m.onnx: the file is damaged or not "
                                          r"the published one; delete it and run 'python -m export models'"):
        store.locate("m.onnx")


def test_cache_and_mirror_come_from_the_environment_and_the_config(tmp_path, monkeypatch):
    monkeypatch.setenv("DEPTHSTREAM_CACHE", str(tmp_path / "c"))
    monkeypatch.setenv("DEPTHSTREAM_MIRROR", str(tmp_path / "m"))
    assert cache_root() == tmp_path / "c" and default_mirror() == tmp_path / "m"
    assert ModelStore().cache == tmp_path / "c" / "models"
    assert ModelStore(cache_dir=tmp_path / "cfg").cache == tmp_path / "cfg" / "models"  # engine.cache_dir wins
    monkeypatch.setenv("DEPTHSTREAM_MIRROR", "")
    assert default_mirror() is None
    monkeypatch.delenv("DEPTHSTREAM_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "depthstream"


def test_a_damaged_model_in_the_configured_cache_is_refused_by_the_detector(tmp_path):
    cache = tmp_path / "cache"
    (cache / "models").mkdir(parents=True)
    (cache / "models" / "yolox_nano.onnx").write_bytes(YOLOX.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(EngineError, match=rf"yolox_nano.onnx has sha256 [0-9a-f]{{64}} \(3660092 bytes\), but the model "
                                          rf"manifest pins {sha256_of(YOLOX)} \(3660092 bytes\)"):
        YoloxDetector.from_path(MODELS_DIR / "yolox_nano.onnx", engine=EngineOptions("ort-cpu", cache_dir=str(cache)))


def test_missing_everywhere_names_the_file_the_url_and_where_to_put_it(tmp_path):
    store = ModelStore(cache_dir=tmp_path, mirror=None)
    url = store.files["yolox_nano.onnx"].url
    with pytest.raises(ModelNotFoundError, match=rf"^yolox_nano.onnx is not in the model cache \({tmp_path}/models\) nor in "
                                                 rf"a mirror \(none set: DEPTHSTREAM_MIRROR\): run 'python -m export models' "
                                                 rf"to download it from {url}, or download it yourself and put it at "
                                                 rf"{tmp_path}/models/yolox_nano.onnx$"):
        store.locate("yolox_nano.onnx")
    with pytest.raises(ModelNotFoundError, match=r"fastdepth_224_nyu.onnx is not in .*, and no public URL serves these "
                                                 r"bytes: convert fast_depth_224_int8.tflite .*tf2onnx.*; put the file at "):
        store.fetch("fastdepth_224_nyu.onnx")  # nothing to download: the same line
    with pytest.raises(ConfigError, match=r"'nope.onnx' is not in the model manifest .* \(it lists "):
        store.locate("nope.onnx")


def test_the_cli_without_cache_or_mirror_is_one_line_and_exit_2(tmp_path):
    env = {**os.environ, "DEPTHSTREAM_CACHE": str(tmp_path / "empty"), "DEPTHSTREAM_MIRROR": ""}
    r = subprocess.run([sys.executable, "-m", "stream", "--source", "demo", "--max-frames", "2", "--output",
                        str(tmp_path / "x.mp4")], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert r.stderr.splitlines() == [r.stderr.strip()] and r.stderr.startswith(
        "error: yolox_nano.onnx is not in the model cache") and "raw.githubusercontent.com" in r.stderr
    assert not (tmp_path / "x.mp4").exists()


# -- the explicit fetch: a local HTTP server --------------------------------------------------------------


def test_fetch_downloads_into_the_cache_checks_it_then_reuses_it(tmp_path, http_folder, capsys):
    folder, base = http_folder
    data = np.random.default_rng(1).integers(0, 256, 3 << 20, dtype=np.uint8).tobytes()  # 3 MB: several blocks
    (folder / "m.onnx").write_bytes(data)
    store = ModelStore(_manifest(tmp_path, "m.onnx", data, f"{base}/m.onnx"), cache_dir=tmp_path / "c", mirror=None)
    with pytest.raises(ModelNotFoundError):
        store.locate("m.onnx")  # locate never downloads
    path, origin = store.fetch("m.onnx")
    assert (path, origin) == (tmp_path / "c" / "models" / "m.onnx", "downloaded") and path.read_bytes() == data
    assert "m.onnx" in capsys.readouterr().err  # the progress bar, on stderr
    (folder / "m.onnx").unlink()  # the server no longer has it: the cache is used
    assert store.fetch("m.onnx") == (path, "cache")
    assert fetch_models(store=store) == [f"m.onnx: cache {path} (sha256 ok)"]


def test_a_download_with_another_sha256_is_refused_naming_both(tmp_path, http_folder):
    folder, base = http_folder
    (folder / "m.onnx").write_bytes(b"not the published file")
    pinned = "0" * 64
    store = ModelStore(_manifest(tmp_path, "m.onnx", b"x" * 22, f"{base}/m.onnx", pinned), cache_dir=tmp_path / "c",
                       mirror=None)
    got = sha256_of(folder / "m.onnx")
    with pytest.raises(EngineError, match=rf"^{base}/m.onnx sent a file with sha256 {got} \(22 bytes\), but the model "
                                          rf"manifest pins {pinned}: refused \(nothing was written to .*m.onnx\)"):
        store.fetch("m.onnx")
    assert list((tmp_path / "c" / "models").iterdir()) == []


def test_offline_download_is_one_line_saying_where_to_put_the_file(tmp_path):
    dest = tmp_path / "c" / "m.onnx"
    with pytest.raises(ModelNotFoundError, match=r"^cannot download http://127\.0\.0\.1:\d+/m\.onnx \(.*refused.*\); "
                                                 rf"download it yourself and put it at {dest}$"):
        download(f"http://127.0.0.1:{closed_port()}/m.onnx", dest, sha256=None, timeout_s=5)
    assert list(dest.parent.iterdir()) == []  # no .part left


def test_export_models_cli_reports_where_each_file_is(tmp_path):
    env = {**os.environ, "DEPTHSTREAM_CACHE": str(tmp_path / "c")}
    r = subprocess.run([sys.executable, "-m", "export", "models", "--for", "test"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    store = ModelStore()
    assert r.stdout.splitlines() == [f"{n}: mirror {store.mirror / store.files[n].mirror} (sha256 ok)"
                                     for n in store.names("test")]
    env["DEPTHSTREAM_MIRROR"] = ""
    r = subprocess.run([sys.executable, "-m", "export", "models", "--only", "yolox_nano.onnx", "--timeout", "1"],
                       cwd=ROOT, env={**env, "https_proxy": f"http://127.0.0.1:{closed_port()}"},
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("error: cannot download https://raw.githubusercontent.com/")


# -- the real default depth network, through the store ------------------------------------------------------


def test_fastdepth_card_loads_through_the_store_and_gives_indoor_metres():
    from engines.ort import OrtEngine
    from depthstream.schema.card import load_card

    card = load_card(MODELS_DIR / "fastdepth_224_nyu.yaml")
    assert card.model == ModelStore().locate("fastdepth_224_nyu.onnx") and card.kind == "metric"
    image = cv2.imread(str(DATA / "basketball1.png"))  # an office, two people 1-3 m from the camera
    x = cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), card.size[::-1], interpolation=cv2.INTER_LINEAR)[None]
    with OrtEngine(card.model, threads=1) as engine:
        assert engine.inputs[card.input].dtype == np.uint8
        depth = engine.infer({card.input: x})[card.output][0, :, :, 0]
    assert depth.shape == (224, 224) and card.valid_range == (0.5, 10.0)
    assert 0.5 < float(depth.min()) and float(depth.max()) < 10.0
    assert 1.0 < float(np.median(depth)) < 4.0


def test_the_store_imports_nothing_above_the_bottom_layer():
    code = ("import sys, depthstream.store; print(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('stream', 'engines', 'export', 'bench')))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stderr
