"""config.yaml -> validated frozen dataclasses; every promised message."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from conftest import ROOT
from stream.config import Config, all_keys, load_config, parse_set
from depthstream.errors import ConfigError


def test_defaults_file_documents_every_key():
    """config.yaml holds every key of the schema, and only those."""
    data = yaml.safe_load((ROOT / "config.yaml").read_text())

    def flat(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict):
                yield from flat(v, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}"

    assert sorted(flat(data)) == sorted(all_keys(Config))


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
        ("detect.conf=1.5", r"detect.conf: got 1.5, expected a number in \[0, 1\]"),
        ("detect.conf=abc", r"detect.conf: got 'abc', expected a number"),
        ("pipeline.layout=fast", r"pipeline.layout: got 'fast', expected serial \| parallel"),
        ("pipeline.queue_size=0", r"pipeline.queue_size: got 0, expected an integer in 1..256"),
        ("mask.blur_ksize=4", r"mask.blur_ksize: got 4, expected an odd integer >= 3"),
        ("overlay.hud=maybe", r"overlay.hud: got 'maybe', expected true or false"),
        ("overlay.depth_inset=sometimes", r"overlay.depth_inset: got 'sometimes', expected true or false or auto"),
        ("overlay.inset_fraction=0.9", r"overlay.inset_fraction: got 0.9, expected a fraction in \[0.05, 0.5\]"),
        ("overlay.timings=yes please", r"overlay.timings: got 'yes please', expected true or false"),
        ("overlay.inset_max_m=40", r"unknown config key 'overlay.inset_max_m'"),
        ("detect.conf", r"--set expects key=value"),
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
    with pytest.raises(ConfigError, match=r"is not valid YAML"):
        load_config(broken)


def test_parse_set_reads_null():
    assert parse_set("band.closer_than=null") == ("band.closer_than", None)
