"""The Triton backend's parts that need no server: ``triton://`` URLs, model names, the backend choice, and
the model repository that ``python -m engines triton-repo`` writes (config.pbtxt read back field by field).
A real server loading these repositories is in tests/test_triton.py."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from conftest import FASTDEPTH, ROOT, YOLOX
from depthstream.errors import ConfigError, EngineError
from engines.backends import EngineOptions, resolve_backend
from engines.factory import create_engine
from engines.triton import TritonEngine, TritonTarget, parse_triton_url, triton_model_name
from engines.triton_repo import RepoOptions, has_batch_dimension, read_io, write_repository


def make_batched_onnx(path, scale: float = 2.0):
    """A tiny ONNX with a dynamic batch axis: y = x * scale + 1, x float32 [batch, 4]."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    consts = [helper.make_tensor("s", TensorProto.FLOAT, [], [scale]), helper.make_tensor("b", TensorProto.FLOAT, [], [1.0])]
    nodes = [helper.make_node("Mul", ["x", "s"], ["t"]), helper.make_node("Add", ["t", "b"], ["y"])]
    graph = helper.make_graph(nodes, "affine", [x], [y], initializer=consts)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


# -- URLs and names ----------------------------------------------------------------------------------


def test_urls_give_host_port_and_the_default_timeouts():
    assert parse_triton_url("triton://gpu-host:9001") == TritonTarget("gpu-host", 9001, 10.0, 30.0)
    assert parse_triton_url("triton://gpu-host").port == 8001
    t = parse_triton_url("triton://10.0.0.5:8001?timeout_s=2.5&reconnect_s=0")
    assert (t.address, t.timeout_s, t.reconnect_s, t.url) == ("10.0.0.5:8001", 2.5, 0.0, "triton://10.0.0.5:8001")


@pytest.mark.parametrize("url, message", [
    ("triton://host:x", r"the port is not a number in 1\.\.65535: expected triton://HOST:PORT"),
    ("triton://host:0", r"the port is not a number"),
    ("triton://:8001", r"expected triton://HOST:PORT"),
    ("triton://host:8001/models", r"expected triton://HOST:PORT"),
    ("triton://host:8001?timeout=3", r"unknown option 'timeout': allowed are timeout_s, reconnect_s"),
    ("triton://host:8001?timeout_s=0", r"timeout_s='0', expected seconds in \(0, 3600\]"),
    ("triton://host:8001?reconnect_s=soon", r"reconnect_s='soon', expected seconds in \[0, 3600\]"),
])
def test_bad_urls_are_one_config_error(url, message):
    with pytest.raises(ConfigError, match=message):
        parse_triton_url(url)


def test_credentials_in_the_url_are_refused_without_echoing_them():
    with pytest.raises(ConfigError, match=r"credentials in the URL are not supported") as err:
        parse_triton_url("triton://admin:hunter2@host:8001")
    assert "hunter2" not in str(err.value) and "admin" not in str(err.value) and "***@host" in str(err.value)


def test_a_header_env_that_is_not_name_value_is_one_line(monkeypatch):
    monkeypatch.setenv("DEPTHSTREAM_TRITON_HEADER", "just-a-token")
    with pytest.raises(ConfigError, match=r"DEPTHSTREAM_TRITON_HEADER must be NAME=VALUE") as err:
        TritonEngine(YOLOX, "triton://127.0.0.1:8001")
    assert "just-a-token" not in str(err.value)


def test_model_names_come_from_the_file_name():
    assert triton_model_name("models/yolox_nano.onnx") == "yolox_nano"
    assert triton_model_name("/x/fastdepth_224_nyu.onnx") == "fastdepth_224_nyu"
    assert triton_model_name("my model.v2.onnx") == "my_model_v2"


def test_the_backend_choice_and_the_factory_take_triton_urls_without_connecting():
    choice = resolve_backend("triton://127.0.0.1:1")
    assert (choice.backend, choice.auto) == ("triton://127.0.0.1:1", False)
    engine = create_engine(YOLOX, EngineOptions("triton://127.0.0.1:1?timeout_s=1"))
    assert isinstance(engine, TritonEngine) and not engine.is_open  # nothing contacted until open()
    assert (engine.model, engine.target.address, engine.backend) == ("yolox_nano", "127.0.0.1:1", "triton://127.0.0.1:1?timeout_s=1")
    with pytest.raises(ConfigError, match=r"the port is not a number"):
        EngineOptions("triton://127.0.0.1:99999")
    with pytest.raises(EngineError, match=r"unknown backend 'triton': expected one of auto, .* or triton://HOST:PORT"):
        EngineOptions("triton")


def test_the_config_takes_a_triton_backend_and_names_the_choices_for_a_bad_one():
    from depthstream.schema.config import load_config

    assert load_config(None, ["engine.backend=triton://gpu:8001"]).engine.backend == "triton://gpu:8001"
    with pytest.raises(ConfigError, match=r"engine\.backend: got 'triton', expected auto \| .* \| trt \| triton://HOST:PORT"):
        load_config(None, ["engine.backend=triton"])


# -- the model repository -----------------------------------------------------------------------------


def _config(folder) -> str:
    return (folder / "config.pbtxt").read_text()


def test_a_fixed_batch_model_gets_max_batch_size_0_and_no_dynamic_batching(tmp_path):
    written = write_repository([YOLOX], tmp_path / "repo")
    assert [m.name for m in written] == ["yolox_nano"] and written[0].max_batch_size == 0
    text = _config(tmp_path / "repo" / "yolox_nano")
    assert 'backend: "onnxruntime"' in text and "max_batch_size: 0\n" in text
    assert "dynamic_batching" not in text.replace("no dynamic batching", "")
    assert '{ name: "images" data_type: TYPE_FP32 dims: [ 1, 3, 416, 416 ] }' in text
    assert '{ name: "output" data_type: TYPE_FP32 dims: [ 1, 3549, 85 ] }' in text
    assert "instance_group [ { kind: KIND_GPU count: 1 } ]" in text
    assert 'key: "onnx_sha256" value: { string_value: "695e750a5d5754bb' in text  # the shipped model's sha256
    assert (tmp_path / "repo" / "yolox_nano" / "1" / "model.onnx").read_bytes() == YOLOX.read_bytes()
    assert "no batch dimension" in written[0].note and "export with a dynamic first axis" in written[0].note


def test_a_model_with_a_batch_dimension_gets_dynamic_batching(tmp_path):
    onnx_path = make_batched_onnx(tmp_path / "affine.onnx")
    assert has_batch_dimension(*read_io(onnx_path))
    written = write_repository([onnx_path], tmp_path / "repo", RepoOptions(runtime="python", max_batch_size=16,
                                                                            queue_delay_us=500, threads=2))
    text = _config(tmp_path / "repo" / "affine")
    assert written[0].max_batch_size == 16 and "max_batch_size: 16\n" in text
    assert "dynamic_batching { max_queue_delay_microseconds: 500 }" in text
    assert '{ name: "x" data_type: TYPE_FP32 dims: [ 4 ] }' in text  # the batch axis is Triton's, not in dims
    assert 'backend: "python"' in text and "kind: KIND_CPU" in text
    assert 'key: "intra_op_threads" value: { string_value: "2" }' in text
    assert (tmp_path / "repo" / "affine" / "1" / "model.py").read_text().startswith('"""Triton Python-backend model')


def test_the_tensorrt_runtime_needs_a_built_plan(tmp_path):
    with pytest.raises(EngineError, match=r"--runtime tensorrt: no TensorRT engine was built from .*yolox_nano\.onnx"):
        write_repository([YOLOX], tmp_path / "repo", RepoOptions(runtime="tensorrt", cache_dir=str(tmp_path / "cache")))
    assert not (tmp_path / "repo" / "yolox_nano").exists()


def test_a_plan_built_from_the_same_onnx_is_used_by_auto(tmp_path):
    import json

    from depthstream.hashing import sha256_of
    from engines.build import engine_paths

    plan, sidecar = engine_paths(tmp_path / "cache", YOLOX, "fp16")
    plan.parent.mkdir(parents=True)
    plan.write_bytes(b"plan bytes")  # only copied: what matters is that the sidecar names these ONNX bytes
    sidecar.write_text(json.dumps({"onnx_sha256": sha256_of(YOLOX), "tensorrt": "10.3.0", "gpu": "NVIDIA L4",
                                   "precision": "fp16"}))
    written = write_repository([YOLOX], tmp_path / "repo", RepoOptions(cache_dir=str(tmp_path / "cache")))
    assert written[0].runtime == "tensorrt" and "TensorRT 10.3.0 on NVIDIA L4 (fp16)" in written[0].note
    text = _config(tmp_path / "repo" / "yolox_nano")
    assert 'platform: "tensorrt_plan"' in text and "runs only with that TensorRT on that GPU model" in text
    assert (tmp_path / "repo" / "yolox_nano" / "1" / "model.plan").read_bytes() == b"plan bytes"
    sidecar.write_text(json.dumps({"onnx_sha256": "0" * 64}))  # a plan of other bytes is not taken
    again = write_repository([YOLOX], tmp_path / "repo", RepoOptions(cache_dir=str(tmp_path / "cache"), force=True))
    assert again[0].runtime == "onnxruntime" and not (tmp_path / "repo" / "yolox_nano" / "1" / "model.plan").exists()


def test_an_existing_model_folder_is_never_replaced_without_force(tmp_path):
    write_repository([YOLOX], tmp_path / "repo")
    config = tmp_path / "repo" / "yolox_nano" / "config.pbtxt"
    config.write_text("# edited by hand\n")
    with pytest.raises(ConfigError, match=r"yolox_nano already exists: give another --out, remove it, or add --force"):
        write_repository([YOLOX], tmp_path / "repo", RepoOptions(instances=2))
    assert config.read_text() == "# edited by hand\n"
    write_repository([YOLOX], tmp_path / "repo", RepoOptions(instances=2, force=True))
    assert "count: 2" in config.read_text()
    assert sorted(p.name for p in (tmp_path / "repo").iterdir()) == ["yolox_nano"]  # no staging folder left


def test_model_lists_folders_and_bad_inputs(tmp_path):
    (tmp_path / "models").mkdir()
    make_batched_onnx(tmp_path / "models" / "b.onnx")
    make_batched_onnx(tmp_path / "models" / "a.onnx", scale=3.0)
    assert [m.name for m in write_repository([tmp_path / "models"], tmp_path / "repo")] == ["a", "b"]
    with pytest.raises(ConfigError, match=r"model not found: .*nope\.onnx"):
        write_repository([tmp_path / "nope.onnx"], tmp_path / "r2")
    with pytest.raises(ConfigError, match=r"holds no \.onnx file"):
        write_repository([tmp_path / "repo"], tmp_path / "r2")
    (tmp_path / "other").mkdir()
    make_batched_onnx(tmp_path / "other" / "a.onnx")
    with pytest.raises(ConfigError, match=r"would both be served as 'a': rename one of them"):
        write_repository([tmp_path / "models", tmp_path / "other" / "a.onnx"], tmp_path / "r2")
    with pytest.raises(ConfigError, match=r"--instances must be >= 1, got 0"):
        RepoOptions(instances=0)


def _engines_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "engines", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd or ROOT)


def test_the_cli_writes_the_products_models_by_default(tmp_path):
    r = _engines_cli("triton-repo", "--out", str(tmp_path / "repo"))
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "repo").iterdir()) == ["fastdepth_224_nyu", "yolox_nano"]
    fastdepth = _config(tmp_path / "repo" / "fastdepth_224_nyu")
    assert '{ name: "image" data_type: TYPE_UINT8 dims: [ 1, 224, 224, 3 ] }' in fastdepth
    assert ((tmp_path / "repo" / "fastdepth_224_nyu" / "1" / "model.onnx").read_bytes()
            == FASTDEPTH.read_bytes())
    assert "start it: tritonserver --model-repository" in r.stdout
    again = _engines_cli("triton-repo", "--out", str(tmp_path / "repo"))
    assert again.returncode == 2 and again.stderr.startswith("error: ") and len(again.stderr.splitlines()) == 1
    assert "already exist" in again.stderr


def test_the_cli_refuses_a_model_the_store_does_not_have(tmp_path):
    import os

    env = dict(os.environ, DEPTHSTREAM_MIRROR=str(tmp_path / "no-mirror"), DEPTHSTREAM_CACHE=str(tmp_path / "no-cache"))
    r = subprocess.run([sys.executable, "-m", "engines", "triton-repo", "--out", str(tmp_path / "repo")],
                       capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1
    assert r.stderr.startswith("error: fastdepth_224_nyu.onnx is not in the model cache ")
    assert "nor in the mirror" in r.stderr and "put the file at" in r.stderr
    assert not (tmp_path / "repo").exists()


def test_read_io_matches_onnx_runtime_for_the_shipped_models():
    ins, outs = read_io(YOLOX)
    assert {n: (s.dtype, s.shape) for n, s in ins.items()} == {"images": (np.dtype(np.float32), (1, 3, 416, 416))}
    assert not has_batch_dimension(ins, outs)
