"""Benchmarks: statistics, report schema, Markdown / plot, the runs' fields, depth metrics, CLI errors.

These test what the benchmarks compute and write, never how fast anything is.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from onnx import TensorProto, helper

from bench import pipeline_report as prpt
from bench import report as rpt
from bench.__main__ import main
from bench.depth_bench import bench_depth, find_pairs, read_depth_png
from bench.depth_every import bench_depth_every, compare, depth_every_markdown
from bench.models_bench import bench_models, skip_reason
from bench.pipeline_bench import GROUND_PLANE, Workload, bench_pipeline, default_workloads, network_workload
from bench.pipeline_targets import limits, service_ms, targets
from bench.pipeline_runs import LoopSource, RunResult, _dropped_after_warmup, finalise
from bench.stats import ratio, steady_fps, summarise
from depthstream.schema.camera import load_profile
from stream.depth import GroundPlaneDepth
from stream.depth.select import BUNDLED_PROFILE
from depthstream.errors import ConfigError, DepthError

from conftest import DATA, YOLOX

# -- statistics ------------------------------------------------------------------------------------


def test_summarise_percentiles_interpolate_linearly_between_ranks():
    s = summarise(range(1, 101))  # 1..100: rank (n - 1) * q / 100
    assert s.p50 == pytest.approx(50.5) and s.p95 == pytest.approx(95.05) and s.p99 == pytest.approx(99.01)
    assert summarise([3.0, 1.0, 2.0]).p50 == 2.0  # order does not matter
    assert summarise([7.0]).p99 == 7.0


def test_summarise_fields():
    s = summarise([4.0, 1.0, 3.0, 2.0])
    assert (s.n, s.mean, s.min, s.max, s.p50) == (4, 2.5, 1.0, 4.0, 2.5)
    assert s.p95 == pytest.approx(3.85) and s.p99 == pytest.approx(3.97)
    assert set(s.as_dict()) == {"n", "mean", "p50", "p95", "p99", "min", "max"}
    with pytest.raises(ValueError, match="empty"):
        summarise([])


def test_steady_fps_counts_frames_after_warmup():
    stamps = [0.0, 1.0, 1.1, 1.2, 1.3, 1.4]  # a slow first frame, then 10 fps
    assert steady_fps(stamps, 2) == pytest.approx(4 / 0.4)  # window opens at the 2nd result
    assert steady_fps(stamps, 0) == pytest.approx(5 / 1.4)
    with pytest.raises(ValueError, match="warm-up"):
        steady_fps(stamps, 6)
    with pytest.raises(ValueError, match="increase"):
        steady_fps([1.0, 1.0], 0)


def test_ratio():
    assert ratio(9.0, 10.0) == pytest.approx(0.9)
    assert ratio(1.0, 0.0) is None and ratio(None, 1.0) is None


def test_dropped_after_warmup_counts_index_gaps():
    assert _dropped_after_warmup([0, 1, 2, 5, 6, 9], 2) == 4  # from index 1: 3, 4, 7, 8 never came out
    assert _dropped_after_warmup([0, 1, 2, 3], 1) == 0
    assert _dropped_after_warmup([0], 1) == 0


def test_finalise_merges_repeats():
    a = RunResult({"mode": "x"}, 10.0, 1.5, 0.1, {"detect": [1.0, 2.0]}, {"latency_ms": [10.0, 20.0]}, 1)
    b = RunResult({"mode": "x"}, 30.0, 1.7, 0.3, {"detect": [3.0, 4.0]}, {"latency_ms": [30.0, 40.0]}, 2)
    c = RunResult({"mode": "x"}, 20.0, 1.6, None, {"detect": [5.0]}, {"latency_ms": [50.0]}, 0)
    out = finalise([a, b, c])
    assert out["fps"] == 20.0 and out["fps_repeats"] == [10.0, 30.0, 20.0]
    assert out["cpu_cores_busy"] == 1.6 and out["other_processes_cores_busy"] == 0.3
    assert out["frames"] == 5 and out["dropped"] == 3 and out["repeats"] == 3
    assert out["stages"]["detect"]["p50"] == 3.0 and out["stages"]["detect"]["n"] == 5
    assert out["latency_ms"]["max"] == 50.0


def test_limits_from_serial_stage_times():
    stat = lambda p50: {"p50": p50}  # noqa: E731
    serial_live = {"stages": {"depth": stat(10.0), "mask": stat(1.0), "fill": stat(2.0), "detect": stat(12.0)},
                   "latency_ms": stat(40.0)}
    layouts = {"serial": {"throughput": {"fps": 50.0, "cpu_cores_busy": 1.0, "other_processes_cores_busy": 0.5},
                          "live": serial_live},
               "parallel": {"throughput": {"fps": 60.0, "cpu_cores_busy": 2.0, "other_processes_cores_busy": None},
                            "live": serial_live}}
    lim = limits({"cpu_cores_busy": 1.0}, layouts, cores=2)
    # 40 - fill 2 - (depth + mask 11) - detect 12 + max(11, 12) = 27
    assert lim["parallel_latency_p50_ideal_ms"] == pytest.approx(27.0)
    assert lim["parallel_over_serial_latency_limit"] == pytest.approx(27 / 40, abs=1e-3)
    assert lim["side_by_side_slowdown"] == {"depth": 1.0, "detect": 1.0}
    assert lim["parallel_latency_p50_with_slowdown_ms"] == pytest.approx(27.0)
    serial, parallel = lim["throughput"]["serial"], lim["throughput"]["parallel"]
    # 1 core busy at 50 FPS: 20 ms of CPU a frame; 2 cores allow 100 FPS; half of it used; other processes
    # took 0.5 core, so the layout used 1 of the 1.5 cores left to it
    assert (serial["cpu_ms_per_frame"], serial["fps_at_full_cores"], serial["share_of_cores_limit"]) == (20.0, 100.0, 0.5)
    assert serial["share_of_free_cores"] == pytest.approx(0.667)
    assert (parallel["fps_at_full_cores"], parallel["share_of_cores_limit"], parallel["share_of_free_cores"]) == (60.0, 1.0, None)


def test_targets_are_ratios_of_the_runs_figures():
    stat = lambda p50, p99=None: {"p50": p50, "p99": p99 if p99 is not None else p50}  # noqa: E731
    stages = {"decode": stat(3.0), "depth": stat(10.0), "mask": stat(1.0), "detect": stat(12.0), "box_depth": stat(1.0),
              "track": stat(0.5), "overlay": stat(2.0), "encode": stat(5.5)}
    layouts = {
        "serial": {"throughput": {"fps": 40.0, "cpu_cores_busy": 1.9, "other_processes_cores_busy": 0.0},
                   "live": {"stages": {**stages, "fill": stat(4.0)}, "latency_ms": stat(40.0, 70.0)}},
        "parallel": {"throughput": {"fps": 42.0, "cpu_cores_busy": 1.7, "other_processes_cores_busy": 0.0},
                     "live": {"stages": stages, "latency_ms": stat(30.0, 60.0)}},
    }
    # serial: 3 + 11 + 4 + 12 + 9 = 39 ms a frame when it never waits; parallel: 3 + max(11, 12) + 9 = 24 ms
    assert service_ms("serial", layouts["serial"]["live"]["stages"]) == pytest.approx(39.0)
    assert service_ms("parallel", stages) == pytest.approx(24.0)
    t = targets({"fps": 41.0}, layouts, limits({"cpu_cores_busy": 1.0}, layouts, cores=2))
    assert t["slower_layout_over_bare"] == {"value": pytest.approx(40 / 41, abs=1e-3), "target": ">= 0.95", "met": True,
                                            "slower": "serial"}
    lat = t["parallel_latency_p50_over_serial"]
    assert (lat["value"], lat["fps_ratio"], lat["met"]) == (0.75, 1.05, True)
    assert t["share_of_cores_limit"]["serial"]["met"] and not t["share_of_cores_limit"]["parallel"]["met"]  # 0.95, 0.85
    ages = t["age_p99_over_service"]
    assert ages["serial"]["value"] == pytest.approx(70 / 39, abs=1e-3) and ages["serial"]["met"]
    assert ages["parallel"]["value"] == 2.5 and not ages["parallel"]["met"]
    # a lower latency at a lower FPS does not meet the latency target
    layouts["parallel"]["throughput"]["fps"] = 39.0
    assert not targets({"fps": 41.0}, layouts, limits({"cpu_cores_busy": 1.0}, layouts, 2))[
        "parallel_latency_p50_over_serial"]["met"]


# -- the loop source -------------------------------------------------------------------------------


def test_loop_source_replays_and_numbers_frames(tmp_path):
    for i, name in enumerate(("a.jpg", "b.jpg")):
        cv2.imwrite(str(tmp_path / name), np.full((16, 24, 3), i * 100, np.uint8))
    with LoopSource(str(tmp_path), 5) as src:
        frames = [src.read() for _ in range(6)]
    assert [f.index for f in frames[:5]] == [0, 1, 2, 3, 4] and frames[5] is None
    assert [int(f.image[0, 0, 0]) for f in frames[:5]] == [0, 100, 0, 100, 0]
    assert src.loops == 2 and sorted(src.decode_ms) == [0, 1, 2, 3, 4]
    assert not src.live and src.frame_count == 5


@pytest.mark.timeout(60)
def test_a_paced_frame_is_captured_at_its_tick_not_when_the_decoder_got_its_packet():
    # the demo's H.264 decoder holds frames for a few packets; paced at 20 fps those packets came ticks earlier
    with LoopSource("demo", 12, pace_fps=20) as src:
        ages_ms = []
        while (f := src.read()) is not None:
            ages_ms.append((time.monotonic_ns() - f.captured_ns) / 1e6)
    assert max(ages_ms) < 25, ages_ms  # under one tick (50 ms): only the hand-out itself


@pytest.mark.timeout(10)
def test_loop_source_paced_is_live_and_waits_for_its_ticks(tmp_path):
    cv2.imwrite(str(tmp_path / "a.jpg"), np.zeros((8, 8, 3), np.uint8))
    with LoopSource(str(tmp_path), 4, pace_fps=50) as src:
        t0 = time.perf_counter()
        while src.read() is not None:
            pass
        assert time.perf_counter() - t0 >= 3 / 50 * 0.95  # frame 3 is due 60 ms after frame 0
    assert src.live
    with pytest.raises(ConfigError, match="pace"):
        LoopSource(str(tmp_path), 4, pace_fps=0)


# -- a real run of a few frames produces every field ------------------------------------------------

NET = 32


def _tiny_depth_card(folder: Path) -> Path:
    """A normalized depth 'network' (mean over channels) and its card."""
    node = helper.make_node("ReduceMean", ["x"], ["depth"], axes=[1], keepdims=1)
    graph = helper.make_graph([node], "tiny_depth",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, NET, NET])],
                              [helper.make_tensor_value_info("depth", TensorProto.FLOAT, [1, 1, NET, NET])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    (folder / "tiny.onnx").write_bytes(model.SerializeToString())
    card = folder / "tiny.yaml"
    card.write_text("name: tiny\nmodel: tiny.onnx\ninput: x\noutput: depth\nlayout: nchw\noutput_layout: nchw\n"
                    "size: [32, 32]\ncolour: rgb\nscale: 0.00392156862745098\nmean: [0, 0, 0]\nstd: [1, 1, 1]\n"
                    "domain: any\nkind: normalized\nmax_depth_m: 10\n")
    return card


@pytest.fixture(scope="module")
def pipeline_report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench")
    card = _tiny_depth_card(folder)
    workloads = [GROUND_PLANE, Workload("tiny", str(card), "a one-node depth network", untrained=True)]
    results = bench_pipeline(source="demo", layouts=["serial", "parallel"], frames=3, warmup=1, workloads=workloads,
                             pace=25.0, repeat=1, config=None, sets=[], closer_than=30.0)
    report = rpt.new_report("pipeline", ["pipeline", "--frames", "3"], results,
                            {"weights": rpt.UNTRAINED_NOTE}, [0.5, 0.4, 0.3])
    return report, folder


@pytest.mark.timeout(120)
def test_pipeline_run_has_every_field(pipeline_report):
    report, _ = pipeline_report
    rpt.validate(report)  # every field of the schema
    for w in report["workloads"]:
        assert w["bare"]["frames"] == 3 and w["bare"]["fps"] > 0
        for name in ("serial", "parallel"):
            tp, live = w["layouts"][name]["throughput"], w["layouts"][name]["live"]
            assert tp["policy"] == "block" and live["policy"] == "latest" and live["pace_fps"] == 25.0
            assert tp["frames"] == 3 and "encode" not in tp["stages"] and "encode" in live["stages"]
            assert isinstance(tp["threads_cpu_ms_per_frame"], dict)  # 3 frames: often under the clock's tick
            assert all(math.isfinite(v) for v in live["latency_ms"].values())
        assert set(w["ratios"]["overhead"]) == {"serial", "parallel"}
        assert set(w["ratios"]["parallel_over_serial"]) == {"fps", "latency_p50", "latency_p95"}
        assert "fill" in w["layouts"]["serial"]["live"]["stages"]
        assert "fill" not in w["layouts"]["parallel"]["live"]["stages"]
        assert set(w["targets"]) == {"slower_layout_over_bare", "parallel_latency_p50_over_serial",
                                     "share_of_cores_limit", "age_p99_over_service"}
        assert set(w["targets"]["age_p99_over_service"]) == {"serial", "parallel"}
        live = w["layouts"]["parallel"]["live"]
        assert live["devices"]["detect"] == {"device": "cpu", "ran_on": "CPUExecutionProvider"}
        assert live["devices"]["encode"]["device"] == "cpu" and "encode" not in w["layouts"]["parallel"]["throughput"]["devices"]
    tiny = report["workloads"][1]
    assert tiny["bare"]["devices"]["depth"] == {"device": "cpu", "ran_on": "CPUExecutionProvider"}
    assert report["workloads"][0]["bare"]["devices"]["depth"]["ran_on"].startswith("numpy (ground plane")
    assert tiny["depth"]["input_size"] == [NET, NET]
    assert tiny["bare"]["providers"]["depth"] == ["CPUExecutionProvider"]
    assert tiny["bare"]["threads"]["depth"] >= 1 and tiny["bare"]["threads"]["detect"] >= 1
    env = report["env"]
    assert env["cpu"]["usable_cores"] >= 1 and env["onnxruntime"]["version"]
    assert env["loadavg_before"] == [0.5, 0.4, 0.3]
    json.dumps(report, allow_nan=False)  # strict JSON


@pytest.mark.timeout(120)
def test_pipeline_markdown_and_json(pipeline_report, tmp_path):
    report, _ = pipeline_report
    md = prpt.pipeline_markdown(report)
    assert "| ground-plane | bare loop |" in md and "| tiny | parallel |" in md
    assert "Targets, tiny" in md and "| slower layout FPS / bare decode -> depth -> detect loop FPS |" in md
    assert "| live frame age p99 / per-frame service time, parallel |" in md and "**end to end**" in md
    assert "- ran on: decode cpu (FFmpeg software decoder (PyAV)); depth cpu (CPUExecutionProvider); detect cpu" in md
    assert rpt.UNTRAINED_NOTE in md
    quiet = json.loads(json.dumps(report))
    for w in quiet["workloads"]:
        for run in [w["bare"]] + [r for layout in w["layouts"].values() for r in layout.values()]:
            run["other_processes_cores_busy"] = 0.0
    assert "Warning: other processes" not in prpt.pipeline_markdown(quiet)
    quiet["workloads"][0]["layouts"]["serial"]["live"]["other_processes_cores_busy"] = 1.2
    assert prpt.max_other_load(quiet) == 1.2
    assert "Warning: other processes kept up to 1.20 cores busy" in prpt.pipeline_markdown(quiet)
    path = rpt.write_json(report, tmp_path / "r" / "pipeline.json")
    assert json.loads(path.read_text())["schema"] == rpt.SCHEMA


@pytest.mark.timeout(120)
def test_pipeline_plot_is_a_png(pipeline_report, tmp_path):
    pytest.importorskip("matplotlib")
    report, _ = pipeline_report
    path = prpt.pipeline_plot(report, tmp_path / "p.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_validate_names_the_missing_field(pipeline_report):
    report, _ = pipeline_report
    broken = json.loads(json.dumps(report))
    del broken["workloads"][0]["layouts"]["parallel"]["live"]["latency_ms"]["p99"]
    with pytest.raises(ValueError, match=r"workloads\[0\]\.layouts\.parallel\.live\.latency_ms\.p99"):
        rpt.validate(broken)
    del broken["env"]["git"]
    with pytest.raises(ValueError, match=r"report misses env\.git"):
        rpt.validate(broken)
    with pytest.raises(ValueError, match="kind"):
        rpt.validate({"kind": "nope"})


def test_default_workloads_are_the_bundled_network_then_the_ground_plane(tmp_path):
    workloads, skipped = default_workloads()
    assert [w.name for w in workloads] == ["fastdepth-224-nyu", "ground-plane"] and skipped == []
    assert workloads[0].depth_source.endswith("models/fastdepth_224_nyu.yaml") and "default" in workloads[0].note
    card = _tiny_depth_card(tmp_path)
    workloads, _ = default_workloads(str(card))
    assert [w.name for w in workloads] == ["tiny", "ground-plane"]
    with pytest.raises(ConfigError, match=r"depth model card nope.yaml not found"):
        network_workload("nope.yaml")


def test_pipeline_argument_errors():
    with pytest.raises(ConfigError, match="unknown layout"):
        bench_pipeline(source="demo", layouts=["diagonal"], frames=3, warmup=1, workloads=[GROUND_PLANE],
                       pace=None, repeat=1, config=None, sets=[], closer_than=None)
    with pytest.raises(ConfigError, match="--repeat"):
        bench_pipeline(source="demo", layouts=["serial"], frames=3, warmup=1, workloads=[GROUND_PLANE],
                       pace=None, repeat=0, config=None, sets=[], closer_than=None)


# -- models ----------------------------------------------------------------------------------------


def test_skip_reasons():
    assert "FP16 is a TensorRT build option" in skip_reason("ort-cpu", "fp16")
    assert skip_reason("ort-cpu", "fp32") is None
    with pytest.raises(ConfigError, match="unknown backend"):
        skip_reason("cuda", "fp32")


@pytest.mark.timeout(60)
def test_models_bench_rows(tmp_path):
    results = bench_models(models=[YOLOX], backends=["ort-cpu", "trt"], precisions=["fp32", "fp16"],
                           threads=[1], iterations=3, warmup=1)
    rows = {(r["backend"], r["precision"]): r for r in results["rows"]}
    ok = rows[("ort-cpu", "fp32")]
    assert ok["status"] == "ok" and ok["threads"] == 1 and ok["latency_ms"]["n"] == 3
    assert ok["input_shapes"] == {"images": [1, 3, 416, 416]} and ok["throughput_fps"] > 0
    assert rows[("ort-cpu", "fp16")]["status"] == "skipped"
    assert rows[("ort-cpu", "fp16")]["reason"].startswith("ort-cpu runs the ONNX as exported (FP32)")
    import importlib.util

    for key in (("trt", "fp32"), ("trt", "fp16")):
        if importlib.util.find_spec("tensorrt") is None:  # this machine: the row says why, it does not fail
            assert rows[key]["status"] == "skipped" and rows[key]["reason"].startswith("--backend trt needs TensorRT, "
                                                                                      "which is not installed here")
        else:
            assert rows[key]["status"] == "ok", rows[key].get("reason")
    report = rpt.new_report("models", ["models"], results, {"clock": "x"}, None)
    rpt.validate(report)
    broken = json.loads(json.dumps(report))
    del broken["rows"][0]["latency_ms"]
    with pytest.raises(ValueError, match=r"rows\[0\]\.latency_ms"):
        rpt.validate(broken)
    assert "| yolox_nano.onnx | ort-cpu | fp32 | 1 |" in rpt.models_markdown(report)


# -- depth accuracy --------------------------------------------------------------------------------


# (the protocol's metrics, crops, alignment and cap: tests/test_depth_metrics.py)


def _write_pairs(folder: Path, layout: str, n: int = 2, size=(48, 64)) -> None:
    """Synthetic RGB-D pairs whose depth is the demo camera's ground plane (mm, 16-bit)."""
    h, w = size
    gp = GroundPlaneDepth(load_profile(BUNDLED_PROFILE), 60)  # its intrinsics scaled from 768x576 to the pairs' size
    mm = np.nan_to_num(gp.depth_for_size(h, w).metres * 1000, nan=0).round().astype(np.uint16)
    for i in range(n):
        rgb = np.random.default_rng(i).integers(0, 255, (h, w, 3), dtype=np.uint8)
        if layout == "folders":
            (folder / "rgb").mkdir(exist_ok=True), (folder / "depth").mkdir(exist_ok=True)
            cv2.imwrite(str(folder / "rgb" / f"{i:03d}.png"), rgb)
            cv2.imwrite(str(folder / "depth" / f"{i:03d}.png"), mm)
        else:
            cv2.imwrite(str(folder / f"{i:03d}_rgb.jpg"), rgb)
            cv2.imwrite(str(folder / f"{i:03d}_depth.png"), mm)


@pytest.mark.parametrize("layout", ["folders", "side-by-side"])
def test_find_pairs_layouts(tmp_path, layout):
    _write_pairs(tmp_path, layout)
    pairs = find_pairs(tmp_path)
    assert [name for name, _, _ in pairs] == ["000", "001"]
    depth = read_depth_png(pairs[0][2], 1000)
    assert depth.dtype == np.float32 and np.isnan(depth[0, 0])  # sky: 0 in the PNG = no depth


def test_depth_data_errors(tmp_path):
    with pytest.raises(ConfigError, match="not a folder"):
        find_pairs(tmp_path / "missing")
    with pytest.raises(ConfigError, match="no RGB-D pairs"):
        find_pairs(tmp_path)
    cv2.imwrite(str(tmp_path / "a_rgb.png"), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ConfigError, match="has no depth map"):
        find_pairs(tmp_path)
    cv2.imwrite(str(tmp_path / "a_depth.png"), np.zeros((4, 4), np.uint8))
    with pytest.raises(ConfigError, match="16-bit one-channel"):
        read_depth_png(tmp_path / "a_depth.png", 1000)


def test_depth_bench_on_synthetic_pairs(tmp_path):
    _write_pairs(tmp_path, "folders")
    sets = ["depth.source=ground-plane", f"camera.profile={BUNDLED_PROFILE}"]  # scaled to the pairs' 48x64
    results, timing = bench_depth(data=tmp_path, depth_model=None, depth_scale=1000.0, align="auto", max_depth=80,
                                  config=None, sets=sets)
    m = results["metrics"]
    assert m["abs_rel"] < 1e-3 and m["delta_1"] == 1.0 and m["rmse_m"] < 0.01  # mm rounding only
    assert m["seed_equal_share"] > 0.99
    assert results["pairs"] == 2 and results["alignment"].startswith("none")
    report = rpt.new_report("depth", ["depth", "--data", str(tmp_path)], results, timing, None)
    rpt.validate(report)
    assert "| | AbsRel | SqRel | RMSE (m) | RMSE log | log10 | δ1 | δ2 | δ3 |" in rpt.depth_markdown(report)


def test_depth_bench_relative_model_needs_alignment(tmp_path):
    _write_pairs(tmp_path, "folders", n=1)
    card = _tiny_depth_card(tmp_path)
    card.write_text(card.read_text().replace("kind: normalized\nmax_depth_m: 10\n", "kind: relative-inverse\n"))
    with pytest.raises(DepthError, match="use --align lstsq or median"):
        bench_depth(data=tmp_path, depth_model=str(card), depth_scale=1000.0, align="none", max_depth=80)
    results, _ = bench_depth(data=tmp_path, depth_model=str(card), depth_scale=1000.0, align="auto", max_depth=80)
    assert "inverse depth" in results["alignment"] and math.isfinite(results["metrics"]["abs_rel"])


# -- CLI -------------------------------------------------------------------------------------------


def test_cli_usage_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as info:
        main(["pipeline", "--frames", "1"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: argument --frames: --frames must be >= 2") and err.count("\n") == 1
    assert main(["depth", "--data", str(DATA / "missing"), "--max-depth", "10"]) == 2
    assert capsys.readouterr().err.startswith("error: --data")
    assert main(["pipeline", "--depth", "ground-plane", "--depth-model", "models/fastdepth_224_nyu.yaml"]) == 2
    assert capsys.readouterr().err == ("error: give --depth (the workloads) or --depth-model (the network of the "
                                       "default workloads), not both\n")


def test_cli_depth_writes_json_and_markdown(tmp_path, capsys):
    (tmp_path / "d").mkdir()
    _write_pairs(tmp_path / "d", "side-by-side")
    out = tmp_path / "out"
    code = main(["depth", "--data", str(tmp_path / "d"), "--out", str(out), "--max-depth", "80",
                 "--set", "depth.source=ground-plane", "--set", f"camera.profile={BUNDLED_PROFILE}"])
    assert code == 0
    report = json.loads((out / "depth.json").read_text())
    rpt.validate(report)
    assert report["command"].startswith("python -m bench depth --data ")
    assert (out / "depth.md").is_file() and f"wrote {out / 'depth.json'}" in capsys.readouterr().out


# -- depth at its own rate -------------------------------------------------------------------------


def _box(xyxy, depth_m, filtered=None):
    return {"box": xyxy, "depth_m": depth_m, "depth_filtered_m": filtered}


def test_depth_every_compares_each_box_with_the_every_frame_runs():
    base = {0: (0, [_box([0, 0, 1, 1], 10.0, 10.0)]), 1: (0, [_box([0, 0, 1, 1], 10.0, 10.0), _box([2, 2, 3, 3], 4.0)]),
            2: (0, [_box([5, 5, 6, 6], 2.0)])}
    other = {0: (0, [_box([0, 0, 1, 1], 10.0, 10.0)]), 1: (1, [_box([0, 0, 1, 1], 11.0, 10.2), _box([2, 2, 3, 3], 3.0)]),
             2: (1, [_box([5, 5, 7, 6], 2.0)])}
    out = compare(base, other)
    assert out["frames_with_other_boxes"] == 1  # frame 2's box differs: left out, and said
    assert out["raw"]["boxes"] == 3 and out["raw_reused_maps"]["boxes"] == 2
    assert out["raw_reused_maps"]["median"] == pytest.approx(0.175)  # 10 % and 25 %
    assert out["shown_reused_maps"]["median"] == pytest.approx((0.02 + 0.25) / 2)  # filtered 10.2 vs 10; raw 3 vs 4
    assert out["raw"]["median"] == pytest.approx(0.1)


@pytest.mark.timeout(300)
def test_depth_every_bench_runs_each_rate(tmp_path):
    card = _tiny_depth_card(tmp_path)
    results = bench_depth_every(source="demo", every=[1, 3], depth_model=str(card), frames=6, warmup=2, repeat=1,
                                live_fps=30.0, config=None, sets=[], live_s=1.0, distance_frames=12)
    assert set(results["rates"]) == {"1", "3"} and results["rates"]["1"]["fps_gain"] == 1.0
    d = results["rates"]["3"]["distance"]
    assert d["frames_with_other_boxes"] == 0 and d["raw"]["boxes"] > d["raw_reused_maps"]["boxes"] > 0
    assert results["rates"]["1"]["distance"] is None
    assert set(results["live"]) == {"1", "auto"}
    assert results["live"]["1"]["depth_rate"]["frames_at"] == {"1": results["live"]["1"]["depth_rate"]["runs"]}
    assert results["live"]["auto"]["depth_rate"]["setting"].startswith("auto (live")
    report = rpt.new_report("depth-every", ["depth-every"], results, {"x": "y"}, None)
    rpt.validate(report)
    md = depth_every_markdown(report, [])
    assert "| 3 |" in md and "| auto |" in md
    with pytest.raises(ConfigError, match="--every must include 1"):
        bench_depth_every(source="demo", every=[2], depth_model=str(card), frames=6, warmup=2, repeat=1, live_fps=30.0,
                          config=None, sets=[])


@pytest.mark.timeout(300)
def test_fixed_costs_times_every_step_of_the_product(tmp_path, capsys):
    assert main(["fixed-costs", "--frames", "3", "--rounds", "2", "--presets", "ultrafast", "veryfast",
                 "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "fixed-costs.json").read_text())
    steps = report["steps"]
    assert set(steps) == {"decode", "detect_pre", "detect_post", "depth_pre", "depth_post", "mask", "serial_mask", "fill",
                          "box_depth", "overlay", "encode:ultrafast", "encode:veryfast"}
    assert all(len(s["rounds"]) == 2 and s["cpu_ms_per_frame"] >= 0 for s in steps.values())
    # a slower preset writes a smaller file at the same quality
    assert steps["encode:veryfast"]["kb_per_frame"] < steps["encode:ultrafast"]["kb_per_frame"]
    assert report["settings"]["depth_source"].endswith("fastdepth_224_nyu.yaml")
    assert "| encode:veryfast (" in (tmp_path / "fixed-costs.md").read_text()


@pytest.mark.timeout(300)
def test_live_age_reports_each_window_against_the_service_time(tmp_path):
    assert main(["live-age", "--fps", "20", "--minutes", "0.05", "--window", "1", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "live-age.json").read_text())
    o, windows = report["overall"], report["windows"]
    assert report["settings"]["frames"] == 60 and len(windows) == 3
    assert sum(w["processed"] + w["dropped"] for w in windows) == 60 == o["processed"] + o["dropped"]
    assert 0 < o["service_ms"] and o["age_p50_ms"] <= o["age_p99_ms"]
    assert o["age_p99_over_service"] == pytest.approx(o["age_p99_ms"] / o["service_ms"], rel=0.02)
    assert o["met"] == (o["age_p99_over_service"] <= 2.0) and o["p99_slope_ms_per_min"] is not None
    assert report["settings"]["devices"]["depth"]["ran_on"] == "CPUExecutionProvider"
    assert "| from s | processed |" in (tmp_path / "live-age.md").read_text()


@pytest.mark.timeout(30)
def test_thread_cpu_names_python_threads_and_counts_their_cpu():
    from bench.env import process_cpu_s, thread_cpu_s

    import threading

    done = threading.Event()

    def spin():
        t0 = time.thread_time()
        while time.thread_time() - t0 < 0.2:  # 0.2 s of this thread's own CPU
            pass
        done.wait(10)

    t = threading.Thread(target=spin, name="bench-spinner")
    t.start()
    try:
        while t.is_alive() and thread_cpu_s().get("bench-spinner", 0.0) < 0.15:
            time.sleep(0.05)
        cpu = thread_cpu_s()
    finally:
        done.set()
        t.join()
    assert 0.15 <= cpu["bench-spinner"] <= process_cpu_s() and "MainThread" in cpu
