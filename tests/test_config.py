"""config.yaml -> validated frozen dataclasses (the schema in depthstream.schema.config); every promised message."""

from __future__ import annotations

import dataclasses
import re

import pytest
import yaml

from conftest import ROOT
from depthstream.errors import ConfigError
from depthstream.schema.config import Config, config_keys, load_config, parse_set


def test_defaults_file_documents_every_key():
    """config.yaml holds every key of the schema, and only those."""
    data = yaml.safe_load((ROOT / "config.yaml").read_text())

    def flat(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict):
                yield from flat(v, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}"

    assert sorted(flat(data)) == sorted(config_keys())


def test_defaults_file_holds_the_schema_defaults():
    """Every value in config.yaml is the schema's default (and the other way round), so the documented
    defaults are the ones a component gets when it is built without a config."""
    data = yaml.safe_load((ROOT / "config.yaml").read_text())
    schema = dataclasses.asdict(Config())

    def lists(v):
        return [lists(x) for x in v] if isinstance(v, (list, tuple)) else v

    for section, values in schema.items():
        for key, default in values.items():
            if isinstance(default, dict):
                for sub, value in default.items():
                    assert data[section][key][sub] == lists(value), f"{section}.{key}.{sub}"
            else:
                assert data[section][key] == lists(default), f"{section}.{key}"


def test_defaults_load_and_are_frozen():
    cfg = load_config()
    assert cfg.pipeline.layout in ("serial", "parallel")
    assert cfg.detect.model.endswith("models/yolox_nano.onnx")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.detect.conf = 0.9  # type: ignore[misc]


def test_set_overrides_and_parses_yaml_values():
    cfg = load_config(sets=["detect.conf=0.4", "detect.classes=[person, car]", "overlay.hud=false"])
    assert cfg.detect.conf == 0.4
    assert cfg.detect.classes == ("person", "car")
    assert cfg.overlay.hud is False
    assert load_config().overlay.depth_inset == "auto"
    assert load_config(sets=["overlay.depth_inset=true", "overlay.timings=true"]).overlay.depth_inset is True


def test_flags_override_set():
    cfg = load_config(sets=["pipeline.layout=serial"], overrides={"pipeline.layout": "parallel", "band.closer_than": 2.0})
    assert cfg.pipeline.layout == "parallel" and cfg.band.closer_than == 2.0


def test_user_config_only_overrides_what_it_sets(tmp_path):
    user = tmp_path / "my.yaml"
    user.write_text("detect:\n  conf: 0.6\n  model: mine.onnx\n")
    cfg = load_config(user)
    assert cfg.detect.conf == 0.6
    assert cfg.detect.iou == load_config().detect.iou
    assert cfg.detect.model == str((tmp_path / "mine.onnx").resolve())  # relative to the file


@pytest.mark.parametrize(
    "item, message",
    [
        ("detect.cnf=0.4", r"unknown config key 'detect.cnf' \(did you mean 'detect.conf'\?\)"),
        ("dtect.conf=0.4", r"unknown config key 'dtect.conf' \(did you mean 'detect.conf'\?\)"),
        ("detect.zzzzzz=1", r"unknown config key 'detect.zzzzzz' \(valid keys: detect.model, detect.conf, detect.iou, "
                            r"detect.classes, detect.max_det\)$"),
        ("zzz.qqq=1", r"unknown config key 'zzz.qqq' \(valid keys: source, pipeline, detect, camera, depth, band, track, events, "
                      r"mask, overlay, output, engine, serve\)$"),
        ("detect.conf=1.5", r"detect.conf: got 1.5, expected a number in \[0, 1\]"),
        ("detect.conf=abc", r"detect.conf: got 'abc', expected a number in \[0, 1\]"),
        ("pipeline.layout=fast", r"pipeline.layout: got 'fast', expected serial \| parallel"),
        ("pipeline.queue_size=0", r"pipeline.queue_size: got 0, expected an integer in 1..256"),
        ("mask.blur_ksize=4", r"mask.blur_ksize: got 4, expected an odd integer in 3..99"),
        ("overlay.hud=maybe", r"overlay.hud: got 'maybe', expected true or false"),
        ("overlay.depth_inset=sometimes", r"overlay.depth_inset: got 'sometimes', expected true or false or auto"),
        ("overlay.timings=yes please", r"overlay.timings: got 'yes please', expected true or false"),
        ("overlay.inset_max_m=40", r"unknown config key 'overlay.inset_max_m'"),
        ("detect.conf", r"--set expects key=value"),
        ("overlay.tint_bgr=[1]", r"^overlay.tint_bgr: got \[1\], expected three integers 0..255 \(B, G, R\)$"),
        ("band.closer_than=-3", r"^band.closer_than: got -3, expected a positive number of metres \(at most 10000\) or null$"),
        ("detect.classes=[persn]", r"^detect.classes: got \['persn'\], expected names of the detector's classes; 'persn' is "
                                   r"not one \(did you mean 'person'\?\)$"),
        ("detect.classes=[person, -1]", r"^detect.classes: got \['person', -1\], expected a list of class names or ids"),
        ("detect.max_det=0", r"^detect.max_det: got 0, expected an integer in 1..10000$"),
        ("output.crf=52", r"^output.crf: got 52, expected an integer in 0..51 \(lower = better quality\)$"),
        ("source.uri=-1", r"^source.uri: got -1, expected a camera index in 0..1023, or a video file, a folder or glob of "
                          r"images, a URL or demo$"),
        ("depth.every=0", r"^depth.every: got 0, expected an integer in 1..30 \(the depth network runs on every Nth frame\) "
                          r"or auto$"),
        ("depth.every=sometimes", r"^depth.every: got 'sometimes', expected an integer in 1..30 .* or auto$"),
        ("depth.every_max=1", r"^depth.every_max: got 1, expected an integer in 2..30$"),
        ("depth.source=''", r"^depth.source: got '', expected auto \| ground-plane \| size-prior \| a model card .yaml \| an .onnx with a card "
                             r"beside it$"),
    ],
)
def test_bad_set_items(item, message):
    with pytest.raises(ConfigError, match=message):
        load_config(sets=[item])


def test_unknown_key_in_user_file_names_the_file(tmp_path):
    user = tmp_path / "bad.yaml"
    user.write_text("detect:\n  confidence: 0.4\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown config key 'detect.confidence' \(did you mean 'detect.conf'\?\)"):
        load_config(user)


def test_bad_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"config file not found: .*nope.yaml"):
        load_config(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("detect: [unclosed\n")
    with pytest.raises(ConfigError, match=r"config file .*broken.yaml: not valid YAML: while parsing"):
        load_config(broken)


def test_a_camera_index_is_a_number_in_yaml_and_a_source(tmp_path):
    user = tmp_path / "camera.yaml"
    user.write_text("source:\n  uri: 0\n")
    assert load_config(user).source.uri == "0"
    assert load_config(sets=["source.uri=2"]).source.uri == "2"


def test_numbers_with_an_exponent_are_numbers(tmp_path):
    """YAML 1.1 (PyYAML) reads 5e-1 as a string; a user means 0.5, on the command line and in a file."""
    assert load_config(sets=["detect.conf=5e-1"]).detect.conf == 0.5
    user = tmp_path / "exp.yaml"
    user.write_text("detect:\n  iou: 45e-2\nsource:\n  read_timeout_s: 1E1\n")
    cfg = load_config(user)
    assert cfg.detect.iou == 0.45 and cfg.source.read_timeout_s == 10.0


def test_parse_set_reads_null():
    assert parse_set("band.closer_than=null") == ("band.closer_than", None)


def test_classes_known_to_the_detector_pass(tmp_path):
    assert load_config(sets=["detect.classes=[person, car, 2]"]).detect.classes == ("person", "car", 2)
    # A model with a sidecar: its names, not COCO's.
    (tmp_path / "m.onnx").write_bytes(b"")
    (tmp_path / "m.yaml").write_text("task: detect\nlayout: ultralytics\nnames: [cat, dog]\n")
    assert load_config(sets=["detect.classes=[dog, 0]"], overrides={"detect.model": str(tmp_path / "m.onnx")}).detect.classes == ("dog", 0)
    with pytest.raises(ConfigError, match=r"^detect.classes: got \['person'\], expected names of the detector's classes; "
                                          r"'person' is not one \(the names are in m.yaml\)$"):
        load_config(sets=["detect.classes=[person]"], overrides={"detect.model": str(tmp_path / "m.onnx")})
    with pytest.raises(ConfigError, match=r"^detect.classes: got \[2\], expected class ids 0..1 \(m.yaml names 2 classes\)$"):
        load_config(sets=["detect.classes=[2]"], overrides={"detect.model": str(tmp_path / "m.onnx")})


def test_a_section_must_be_a_mapping_and_an_empty_one_keeps_its_defaults(tmp_path):
    user = tmp_path / "list.yaml"
    user.write_text("pipeline: []\n")
    with pytest.raises(ConfigError, match=r"list.yaml: pipeline: got \[\], expected a mapping of keys \(layout, queue_size, "
                                          r"policy, threads, timeout_s\)$"):
        load_config(user)
    empty = tmp_path / "empty.yaml"
    empty.write_text("pipeline:\nband:\n")
    assert load_config(empty).pipeline == load_config().pipeline


def test_cross_checks_name_the_file_that_breaks_them(tmp_path):
    user = tmp_path / "band.yaml"
    user.write_text("band:\n  further_than: 5\n")
    assert load_config(user, sets=["band.closer_than=8"]).band.describe() == "between 5 m and 8 m"
    with pytest.raises(ConfigError, match=r"band: further_than 5 and closer_than 3 leave no distance"):
        load_config(user, sets=["band.closer_than=3"])
    user.write_text("band:\n  further_than: 5\n  closer_than: 3\n")
    with pytest.raises(ConfigError, match=r"band.yaml: band: further_than 5 and closer_than 3 leave no distance"):
        load_config(user)


# Values no key of the config may accept: every number, string and list has bounds on both sides (issue 11: a
# pipeline.threads of 1000 and a mask.blur_ksize of 100001 were taken, and ran).
ABSURD = [10**12, -(10**12), 1e12, -1e12, "x" * 5000, ["x"] * 100_000]


@pytest.mark.parametrize("key", config_keys())
def test_no_config_key_accepts_an_absurd_value(key):
    for value in ABSURD:
        with pytest.raises(ConfigError, match=rf"^{re.escape(key)}: got .*, expected ") as info:
            load_config(overrides={key: value})
        assert len(str(info.value)) < 600, str(info.value)
