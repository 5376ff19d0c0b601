"""``--backend triton://`` against a real Triton Inference Server on 127.0.0.1.

The server is the ``tritonserver`` binary of the nvidia-pytriton wheel (Triton 2.51, Python backend only),
started by tests/triton_server.py from ``.venv-triton``, a venv of Debian's own Python that ``make triton-env``
makes (``make test`` makes it first). It serves the repository that ``python -m engines triton-repo --runtime
python`` writes for the product's models (YOLOX-Nano, FastDepth-224: ONNX Runtime on the CPU inside the Python
backend), a tiny model with a batch dimension, and a broken model. One server runs for the whole session
(about 2 s to start); the tests that kill a server start their own.

Under ``make test`` (DEPTHSTREAM_TRITON_VENV set) a server that cannot start fails these tests; a plain
``pytest`` on a machine without ``.venv-triton`` skips them and says how to get it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import FASTDEPTH, ROOT, YOLOX
from depthstream.errors import EngineError
from depthstream.types import Frame
from engines.ort import OrtEngine
from engines.triton import TritonEngine
from stream.enginecheck import sample_frames
from export.batch_axis import free_batch_axis
from test_triton_repo import make_batched_onnx

SERVER = ROOT / "tests" / "triton_server.py"
REQUIRED = bool(os.environ.get("DEPTHSTREAM_TRITON_VENV"))  # set by make test
VENV = Path(os.environ.get("DEPTHSTREAM_TRITON_VENV") or ".venv-triton")
VENV = VENV if VENV.is_absolute() else ROOT / VENV
FASTDEPTH_ONNX = FASTDEPTH
START_S = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TritonServer:
    """tests/triton_server.py in its own process group (the server and its Python backend stubs), on 127.0.0.1."""

    def __init__(self, python: Path, repo: Path, port: int, log: Path) -> None:
        self.python, self.repo, self.port, self.log = python, repo, port, log
        self.options: list[str] = []  # more tritonserver options
        self.shm_prefix = f"depthstream_test_{os.getpid()}_{port}_"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"triton://127.0.0.1:{self.port}"

    def start(self) -> "TritonServer":
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                [str(self.python), str(SERVER), "--repo", str(self.repo), "--grpc-port", str(self.port),
                 "--shm-prefix", self.shm_prefix, "--", *self.options], stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            if "Started GRPCInferenceService" in self.log.read_text(errors="replace"):
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-15:])
        self.kill()
        raise RuntimeError(f"tritonserver did not start within {START_S} s:\n{tail}")

    def kill(self) -> None:
        """SIGKILL to the server and its stubs at once: a crashed server host."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)
        for region in Path("/dev/shm").glob(self.shm_prefix + "*"):
            region.unlink(missing_ok=True)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                pass
        self.kill()  # and any stub left behind


def _server_missing() -> str | None:
    python = VENV / "bin" / "python"
    if not python.exists():
        return f"no Triton server venv at {VENV}: run make triton-env (make test makes it)"
    r = subprocess.run([str(python), str(SERVER), "--check"], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        return (r.stderr.strip().splitlines() or [f"exit code {r.returncode}"])[-1]
    return None


@pytest.fixture(scope="session")
def triton_python() -> Path:
    missing = _server_missing()
    if missing:
        if REQUIRED:
            pytest.fail(f"the Triton test server cannot run: {missing}")
        pytest.skip(f"no Triton test server: {missing}")
    return VENV / "bin" / "python"


def _engines_cli(*args: str) -> None:
    r = subprocess.run([sys.executable, "-m", "engines", "triton-repo", *args], capture_output=True, text=True,
                       timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr


@pytest.fixture(scope="session")
def triton_repo(tmp_path_factory) -> Path:
    """The repository python -m engines triton-repo writes for the product's models, on the CPU, plus a tiny
    model with a batch dimension (a long queue delay, so that concurrent requests surely meet in one batch)
    and a model whose ONNX is broken (it fails to load: the server lists it as UNAVAILABLE); YOLOX-Nano with its batch
    axis freed (export/batch_axis.py) for the batches of several cameras in one call."""
    work = tmp_path_factory.mktemp("triton")
    repo = work / "repo"
    _engines_cli("--runtime", "python", "--out", str(repo))
    _engines_cli(str(make_batched_onnx(work / "affine.onnx")), "--runtime", "python", "--out", str(repo),
                 "--queue-delay-us", "300000")
    _engines_cli(str(free_batch_axis(YOLOX, work / "yolox_batched.onnx")), "--runtime", "python", "--out", str(repo),
                 "--queue-delay-us", "2000")
    broken = work / "broken.onnx"
    broken.write_bytes(YOLOX.read_bytes())
    _engines_cli(str(broken), "--runtime", "python", "--out", str(repo))
    (repo / "broken" / "1" / "model.onnx").write_bytes(b"not an onnx model")
    return repo


@pytest.fixture(scope="session")
def triton(triton_python, triton_repo, tmp_path_factory):
    server = TritonServer(triton_python, triton_repo, free_port(), tmp_path_factory.mktemp("log") / "server.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_triton(triton_python, triton_repo, tmp_path):
    """A server of this test's own, to kill."""
    server = TritonServer(triton_python, triton_repo, free_port(), tmp_path / "server.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def frames() -> list[np.ndarray]:
    return sample_frames("demo", 8)  # real frames of the bundled clip, 15 apart


def run_stream(*args: str, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stream", "--source", "demo", "--quiet", *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)


# -- the engine against the server ----------------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("model", [YOLOX, FASTDEPTH_ONNX], ids=["yolox_nano", "fastdepth_224_nyu"])
def test_inputs_and_outputs_come_from_the_servers_metadata_and_match_onnx_runtime(triton, model):
    with TritonEngine(model, triton.url) as remote, OrtEngine(model) as local:
        assert remote.inputs == local.inputs and remote.outputs == local.outputs
        assert remote.max_batch_size == 0 and remote.platform == "python"
        assert remote.providers == [f"Triton python at 127.0.0.1:{triton.port}"]


@pytest.mark.timeout(60)
def test_bad_feeds_get_the_same_messages_as_onnx_runtime(triton):
    bad = [{"images": np.zeros((1, 3, 416, 416), np.float64)}, {"images": np.zeros((1, 3, 320, 320), np.float32)},
           {"image": np.zeros((1, 3, 416, 416), np.float32)}]
    with TritonEngine(YOLOX, triton.url) as remote, OrtEngine(YOLOX) as local:
        for feeds in bad:
            with pytest.raises(EngineError) as theirs:
                local.infer(feeds)
            with pytest.raises(EngineError, match=r"yolox_nano\.onnx: (input 'images' has|feeds)") as ours:
                remote.infer(feeds)
            assert str(ours.value) == str(theirs.value)


@pytest.mark.timeout(120)
def test_yolox_detections_through_triton_equal_onnx_runtime_on_real_frames(triton, frames):
    from depthstream.schema.config import DetectConfig
    from engines.backends import EngineOptions
    from stream.detect import YoloxDetector

    remote = YoloxDetector.from_path(YOLOX, DetectConfig(conf=0.3), engine=EngineOptions(triton.url)).open()
    local = YoloxDetector.from_path(YOLOX, DetectConfig(conf=0.3)).open()
    try:
        total = 0
        for image in frames:
            (a, _), (b, _) = remote(image), local(image)
            assert len(a) == len(b) and np.array_equal(a.class_id, b.class_id)
            np.testing.assert_allclose(a.xyxy, b.xyxy, atol=0.5)  # pixels
            np.testing.assert_allclose(a.confidence, b.confidence, atol=1e-4)
            total += len(a)
        assert total >= 5 * len(frames)  # the clip is a busy walkway: real boxes were compared
    finally:
        remote.engine.close()
        local.engine.close()


def fastdepth_input(image: np.ndarray) -> np.ndarray:
    """FastDepth-224's input (assets README): RGB, the whole frame stretched to 224x224, uint8 NHWC."""
    rgb = cv2.cvtColor(cv2.resize(image, (224, 224), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(rgb[None])


@pytest.mark.timeout(120)
def test_fastdepth_depth_maps_through_triton_equal_onnx_runtime_on_real_frames(triton, frames):
    with TritonEngine(FASTDEPTH_ONNX, triton.url) as remote, OrtEngine(FASTDEPTH_ONNX) as local:
        for image in frames:
            feeds = {"image": fastdepth_input(image)}
            a, b = remote.infer(feeds)["depth"], local.infer(feeds)["depth"]
            assert a.shape == b.shape == (1, 224, 224, 1) and a.dtype == np.float32
            assert 0.3 < float(np.median(b)) < 15  # metres, a real map
            np.testing.assert_allclose(a, b, atol=1e-4)  # metres


@pytest.mark.timeout(120)
def test_the_bundled_depth_card_through_triton_equals_onnx_runtime(triton, frames):
    """The product's depth stage (the card's uint8 NHWC input, its channels-last output) on the Triton backend."""
    from conftest import FASTDEPTH_CARD
    from engines.backends import EngineOptions
    from stream.depth import open_depth_model

    with open_depth_model(FASTDEPTH_CARD, engine_options=EngineOptions(triton.url)) as remote, \
            open_depth_model(FASTDEPTH_CARD) as local:
        for image in frames[:3]:
            frame = Frame(image, 0, None, 0, "demo")
            a, b = remote(frame), local(frame)
            assert a.source == "fastdepth-224-nyu" and a.metres.shape == image.shape[:2]
            np.testing.assert_allclose(a.metres, b.metres, atol=1e-4)  # metres


@pytest.mark.timeout(60)
def test_a_batch_goes_through_one_call_and_concurrent_requests_are_batched_by_the_server(triton, tmp_path):
    onnx_path = make_batched_onnx(tmp_path / "affine.onnx")
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    with TritonEngine(onnx_path, triton.url) as engine:
        assert engine.max_batch_size == 8 and engine.inputs["x"].shape == (None, 4)
        np.testing.assert_allclose(engine.infer({"x": x})["y"], x * 2 + 1)
        with pytest.raises(EngineError, match=r"affine\.onnx: batch sizes \[9\] in one call; model 'affine' on "
                                              r"Triton takes one batch of at most 8"):
            engine.infer({"x": np.zeros((9, 4), np.float32)})
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(f"127.0.0.1:{triton.port}")
    before = client.get_inference_statistics("affine", as_json=True)["model_stats"][0]
    results: dict[int, np.ndarray] = {}
    barrier = threading.Barrier(6)

    def camera(i: int) -> None:  # six cameras, one engine each, one frame each, at the same moment
        with TritonEngine(onnx_path, triton.url) as engine:
            barrier.wait(10)
            results[i] = engine.infer({"x": np.full((1, 4), i, np.float32)})["y"]

    threads = [threading.Thread(target=camera, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    after = client.get_inference_statistics("affine", as_json=True)["model_stats"][0]
    client.close()
    assert sorted(results) == list(range(6))
    for i, y in results.items():
        np.testing.assert_allclose(y, np.full((1, 4), 2 * i + 1))
    inferences = int(after["inference_count"]) - int(before.get("inference_count", 0))
    executions = int(after["execution_count"]) - int(before.get("execution_count", 0))
    assert inferences == 6 and executions < 6  # Triton's dynamic batcher merged requests of different cameras


@pytest.mark.timeout(60)
def test_a_model_that_failed_to_load_is_one_line_with_the_servers_reason(triton, tmp_path):
    local = tmp_path / "broken.onnx"
    local.write_bytes(YOLOX.read_bytes())
    with pytest.raises(EngineError, match=r"model 'broken' on the Triton server at 127\.0\.0\.1:\d+ is UNAVAILABLE, "
                                          r"not READY \(Internal: InvalidProtobuf: .+\): see the server's log") as err:
        TritonEngine(local, triton.url).open()
    assert "\n" not in str(err.value)  # the server's reason holds a traceback: only its first line is shown


@pytest.mark.timeout(60)
def test_a_server_serving_other_bytes_under_the_models_name_is_refused(triton, tmp_path):
    impostor = tmp_path / "yolox_nano.onnx"
    impostor.write_bytes(FASTDEPTH_ONNX.read_bytes())
    with pytest.raises(EngineError, match=r"model 'yolox_nano' on the Triton server at .* was made from another ONNX "
                                          r"\(sha256 695e750a5d5754bb…\) than .*yolox_nano\.onnx here \(f7689e62ffa6a6fa…\)"):
        TritonEngine(impostor, triton.url).open()


# -- the product's CLI ------------------------------------------------------------------------------------


def _detections(jsonl: Path) -> list[list[dict]]:
    return [json.loads(line)["detections"] for line in jsonl.read_text().splitlines()]


def _same_boxes_and_metres(remote: list[list[dict]], local: list[list[dict]]) -> int:
    """Frame by frame the same classes, boxes within half a pixel, metres within 5 cm; returns the boxes compared."""
    boxes = 0
    for a, b in zip(remote, local):
        assert [d["class"] for d in a] == [d["class"] for d in b]
        for da, db in zip(a, b):
            np.testing.assert_allclose(da["box"], db["box"], atol=0.5)
            assert da["depth_m"] == pytest.approx(db["depth_m"], abs=0.05)
        boxes += len(a)
    return boxes


@pytest.mark.timeout(180)
def test_the_demo_through_triton_gives_the_boxes_and_metres_of_the_in_process_backend(triton, tmp_path):
    runs = {}
    for name, backend in (("triton", triton.url), ("ort", "ort-cpu")):
        r = run_stream("--backend", backend, "--max-frames", "20", "--jsonl", str(tmp_path / f"{name}.jsonl"))
        assert r.returncode == 0, r.stderr
        runs[name] = _detections(tmp_path / f"{name}.jsonl")
    first = json.loads((tmp_path / "triton.jsonl").read_text().splitlines()[0])
    assert first["backend"] == triton.url
    assert len(runs["triton"]) == len(runs["ort"]) == 20
    assert _same_boxes_and_metres(runs["triton"], runs["ort"]) >= 100


@pytest.mark.timeout(60)
def test_a_model_the_server_does_not_have_is_one_line(triton, tmp_path):
    other = tmp_path / "other_detector.onnx"
    other.write_bytes(YOLOX.read_bytes())
    r = run_stream("--backend", triton.url, "--detector", str(other), "--max-frames", "3")
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith(f"error: model 'other_detector' (for other_detector.onnx) is not loaded on the Triton "
                               f"server at 127.0.0.1:{triton.port} (it has: affine (READY), broken (UNAVAILABLE)")
    assert "python -m engines triton-repo" in r.stderr


@pytest.mark.timeout(60)
def test_a_server_that_is_down_is_one_line_at_once(tmp_path):
    port = free_port()  # nothing listens there
    t0 = time.monotonic()
    r = run_stream("--backend", f"triton://127.0.0.1:{port}", "--max-frames", "3", "--output", str(tmp_path / "x.mp4"))
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith(f"error: the Triton server at 127.0.0.1:{port} is not reachable (UNAVAILABLE: ")
    assert f"start it (tritonserver --model-repository REPO --grpc-port {port})" in r.stderr
    assert time.monotonic() - t0 < 30 and not (tmp_path / "x.mp4").exists()


def _start_demo(backend: str, jsonl: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "stream", "--source", "demo", "--quiet", "--backend", backend,
                             "--jsonl", str(jsonl)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def _wait_lines(jsonl: Path, proc: subprocess.Popen, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if jsonl.exists() and len(jsonl.read_text().splitlines()) >= count:
            return
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"the run wrote fewer than {count} lines: {proc.communicate(timeout=10)[1]}")


def _kill_server_mid_run(server: TritonServer, query: str, jsonl: Path, restart_after_s: float | None):
    """The demo through ``server``; the server killed (whole process group) after 10 frames, restarted after
    ``restart_after_s`` or left down. Returns (exit code, stderr, seconds from the kill to the run's end)."""
    server.start()
    proc = _start_demo(server.url + query, jsonl)
    try:
        _wait_lines(jsonl, proc, 10)
        server.kill()
        killed = time.monotonic()
        if restart_after_s is not None:
            time.sleep(restart_after_s)  # the run is now retrying against nothing
            server.start()
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, stderr, time.monotonic() - killed


@pytest.mark.timeout(180)
def test_killing_the_server_mid_run_and_restarting_it_loses_no_frame(own_triton, tmp_path):
    jsonl = tmp_path / "run.jsonl"
    code, stderr, _ = _kill_server_mid_run(own_triton, "?reconnect_s=60", jsonl, restart_after_s=2)
    assert code == 0, stderr
    assert "inference failed (UNAVAILABLE); reconnecting for up to 60 s" in stderr
    assert "is back after" in stderr
    assert [json.loads(line)["index"] for line in jsonl.read_text().splitlines()] == list(range(150))


@pytest.mark.timeout(120)
def test_a_server_that_stays_down_ends_the_run_with_one_line_within_the_bound(own_triton, tmp_path):
    jsonl = tmp_path / "run.jsonl"
    code, stderr, took = _kill_server_mid_run(own_triton, "?reconnect_s=3&timeout_s=2", jsonl, restart_after_s=None)
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert code == 1 and len(errors) == 1, stderr
    assert errors[0].startswith(f"error: the Triton server at 127.0.0.1:{own_triton.port} did not answer inference "
                                f"for model 'yolox_nano' for ")
    assert "restart it, or wait longer with --backend" in errors[0]
    assert took < 30  # 3 s of retries, plus the pipeline's stop
    assert len(jsonl.read_text().splitlines()) >= 10  # what was written stays


@pytest.mark.timeout(120)
def test_a_server_that_requires_a_header_gets_it_from_the_environment_and_never_prints_it(own_triton):
    own_triton.options = ["--grpc-restricted-protocol=inference,model-repository,metadata,health:ds-key=s3cret-value"]
    own_triton.start()
    env = {k: v for k, v in os.environ.items() if k != "DEPTHSTREAM_TRITON_HEADER"}
    without = run_stream("--backend", own_triton.url, "--max-frames", "3", env=env)
    assert without.returncode == 1 and without.stderr.count("\n") == 1, without.stderr
    assert without.stderr.startswith(f"error: the Triton server at 127.0.0.1:{own_triton.port} refused the health check")
    assert "expecting header 'triton-grpc-protocol-ds-key'" in without.stderr
    assert "set DEPTHSTREAM_TRITON_HEADER=NAME=VALUE" in without.stderr
    wrong = run_stream("--backend", own_triton.url, "--max-frames", "3",
                       env=dict(env, DEPTHSTREAM_TRITON_HEADER="triton-grpc-protocol-ds-key=guess-value"))
    assert wrong.returncode == 1 and "the header 'triton-grpc-protocol-ds-key' from DEPTHSTREAM_TRITON_HEADER was refused" in wrong.stderr
    assert "guess-value" not in wrong.stderr
    right = run_stream("--backend", own_triton.url, "--max-frames", "3", "--jsonl", "/dev/stdout",
                       env=dict(env, DEPTHSTREAM_TRITON_HEADER="triton-grpc-protocol-ds-key=s3cret-value"))
    assert right.returncode == 0, right.stderr
    assert len(right.stdout.splitlines()) == 3 and "s3cret-value" not in right.stdout + right.stderr


# -- several sources in one process through the server (issue 17, item 1; tests/test_multi.py in-process) ---------


def _copy_of_demo(tmp_path: Path) -> Path:
    import shutil

    from conftest import DEMO

    copy = tmp_path / "cam2.mp4"
    shutil.copy(DEMO, copy)
    return copy


def _start_two(backend: str, copy: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "stream", "--source", "demo", "--source", str(copy), "--quiet",
                             "--backend", backend, "--output-dir", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)


@pytest.mark.timeout(300)
def test_two_sources_through_triton_give_the_boxes_and_metres_of_the_in_process_backend(triton, tmp_path):
    copy = _copy_of_demo(tmp_path)
    for name, backend in (("triton", triton.url), ("ort", "ort-cpu")):
        r = subprocess.run([sys.executable, "-m", "stream", "--source", "demo", "--source", str(copy), "--backend",
                            backend, "--max-frames", "15", "--output-dir", str(tmp_path / name)],
                           capture_output=True, text=True, timeout=240, cwd=ROOT)
        assert r.returncode == 0, r.stderr
        assert "total: 2 sources (2 ok, 0 failed), 30 frames in " in r.stdout
    boxes = 0
    for source in ("demo", "cam2"):
        remote, local = _detections(tmp_path / "triton" / f"{source}.jsonl"), _detections(tmp_path / "ort" / f"{source}.jsonl")
        assert len(remote) == len(local) == 15
        first = json.loads((tmp_path / "triton" / f"{source}.jsonl").read_text().splitlines()[0])
        assert first["backend"] == triton.url
        boxes += _same_boxes_and_metres(remote, local)
    assert boxes >= 150


@pytest.mark.timeout(120)
def test_frames_of_several_cameras_go_to_triton_in_one_call_with_the_boxes_of_one_by_one(triton, tmp_path, frames):
    """YOLOX-Nano with a free batch axis on the server (max_batch_size 8): the shared engine sends the frames of three
    cameras as one batch; each camera gets the boxes ONNX Runtime gives the shipped model for its frame alone."""
    from depthstream.schema.config import DetectConfig
    from engines.backends import EngineOptions
    from engines.shared import EnginePool
    from stream.detect import Detector

    local_copy = free_batch_axis(YOLOX, tmp_path / "yolox_batched.onnx")  # the same bytes the server holds
    pool = EnginePool(max_wait_s=1.0)
    detectors = [Detector.from_path(local_copy, DetectConfig(), engine=EngineOptions(triton.url, pool=pool)).open()
                 for _ in range(3)]
    shared = detectors[0].engine
    assert shared.batching and shared.max_batch_size == 8
    got: dict[int, object] = {}
    barrier = threading.Barrier(3)

    def camera(i: int) -> None:
        barrier.wait(30)
        got[i] = detectors[i](frames[i])[0]

    threads = [threading.Thread(target=camera, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert shared.stats.calls == 3 and shared.stats.runs == 1  # one call to the server for three cameras
    with Detector.from_path(YOLOX, DetectConfig()) as alone:
        for i, dets in got.items():
            want, _ = alone(frames[i])
            assert np.array_equal(dets.class_id, want.class_id) and len(dets) >= 5
            np.testing.assert_allclose(dets.xyxy, want.xyxy, atol=0.5)
    for d in detectors:
        d.close()


def _kill_server_mid_two(server: TritonServer, query: str, copy: Path, out: Path,
                         restart_after_s: float | None) -> tuple[int, str]:
    """Two sources through ``server``, killed once both wrote 10 frames, restarted after ``restart_after_s`` or
    left down. Returns (exit code, stderr)."""
    server.start()
    proc = _start_two(server.url + query, copy, out)
    try:
        _wait_lines(out / "demo.jsonl", proc, 10)
        _wait_lines(out / "cam2.jsonl", proc, 10)
        server.kill()
        if restart_after_s is not None:
            time.sleep(restart_after_s)  # both pipelines now wait on the shared engine's reconnect
            server.start()
        _, stderr = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, stderr


@pytest.mark.timeout(300)
def test_killing_the_server_mid_run_with_two_sources_loses_no_frame_of_either_once_it_is_back(own_triton, tmp_path):
    copy, out = _copy_of_demo(tmp_path), tmp_path / "out"
    code, stderr = _kill_server_mid_two(own_triton, "?reconnect_s=60", copy, out, restart_after_s=2)
    assert code == 0, stderr
    assert "is back after" in stderr
    for name in ("demo", "cam2"):
        assert [json.loads(x)["index"] for x in (out / f"{name}.jsonl").read_text().splitlines()] == list(range(150))


@pytest.mark.timeout(300)
def test_a_server_that_stays_down_ends_each_source_with_one_line_and_exit_1(own_triton, tmp_path):
    copy, out = _copy_of_demo(tmp_path), tmp_path / "out"
    code, stderr = _kill_server_mid_two(own_triton, "?reconnect_s=3&timeout_s=2", copy, out, restart_after_s=None)
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert code == 1 and len(errors) == 2, stderr
    for name, error in zip(sorted(("demo", "cam2")), sorted(errors, key=lambda e: e.split()[2])):
        assert error.startswith(f"error: source {name} (") and f"the Triton server at 127.0.0.1:{own_triton.port} " \
            "did not answer inference for model" in error, stderr
    for name in ("demo", "cam2"):
        assert len((out / f"{name}.jsonl").read_text().splitlines()) >= 5  # what was written stays
