"""Layered loading of a document against its schema; :func:`depthstream.schema.config.load_config` loads the
configuration with it.

Layers, later wins: the defaults file (every key), a user's file (only the keys it sets), ``--set key=value``
items (dotted keys, YAML values), then dotted overrides (the CLI's flags; None = not given). Each layer is
validated as it comes, so an error names the file or the item that holds it. Relative paths are relative to the
folder of the file that sets them; given on the command line, to the working directory. A section written as an
empty key (``band:`` with every key commented out) keeps its defaults.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml

from depthstream.errors import ConfigError

from .adapter import all_keys, fields_of, load_yaml, read_yaml_mapping, unknown_key, validate

T = TypeVar("T")


def read_config_file(path: Path) -> dict:
    return read_yaml_mapping(path, f"config file {path}", missing=f"config file not found: {path}")


def empty_sections(data: dict, schema: type) -> dict:
    """Sections written as an empty key (``band:``, YAML null) keep their defaults."""
    out = dict(data)
    for name, field in fields_of(schema).items():
        if field.section is not None and name in out:
            out[name] = {} if out[name] is None else (
                empty_sections(out[name], field.section) if isinstance(out[name], dict) else out[name])
    return out


def moved_key(key: str, moved: Mapping[str, str]) -> str | None:
    """The message for a key that is gone (``depth.ground_plane.height_m`` under ``depth.ground_plane``), with
    what replaced it, else None."""
    for old, message in moved.items():
        if key == old or key.startswith(old + "."):
            return f"{key}: {message}"
    return None


def _refuse_moved(data: dict, where: str, moved: Mapping[str, str]) -> None:
    for old in moved:
        section, _, name = old.partition(".")
        if isinstance(data.get(section), dict) and name in data[section]:
            inner = data[section][name]
            key = f"{old}.{next(iter(inner))}" if isinstance(inner, dict) and inner else old
            raise ConfigError(where + moved_key(key, moved))


def _validate(schema: type[T], data: dict, where: str, base_dir: Path, noun: str, partial: bool = False) -> T:
    return validate(schema, empty_sections(data, schema), where=where, noun=noun,
                    context={"base_dir": base_dir, "partial": partial})


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def parse_set(schema: type, item: str, noun: str, moved: Mapping[str, str] = {}) -> tuple[str, Any]:
    """``detect.conf=0.4`` -> ('detect.conf', 0.4) for a key of ``schema``; the value is read as YAML (``5e-1`` is a
    number, as in YAML 1.2). A key in ``moved`` (gone, with what replaced it) gets that message."""
    if "=" not in item:
        raise ConfigError(f"--set expects key=value (e.g. --set detect.conf=0.4), got {item!r}")
    key, raw = item.split("=", 1)
    key = key.strip()
    if moved_key(key, moved):
        raise ConfigError("--set " + moved_key(key, moved))
    if key not in all_keys(schema):
        raise ConfigError("--set: " + unknown_key(schema, key, noun))
    try:
        value = load_yaml(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {key}: cannot read value {raw!r}: {str(exc).splitlines()[0]}") from exc
    return key, value


def _nest(key: str, value: Any) -> dict:
    out: dict = value
    for part in reversed(key.split(".")):
        out = {part: out}
    return out


def _only(full: dict, given: dict) -> dict:
    """The part of ``full`` whose keys appear in ``given`` (so a user file only overrides what it sets)."""
    out = {}
    for k, v in given.items():
        out[k] = _only(full[k], v) if isinstance(v, dict) and isinstance(full.get(k), dict) else full[k]
    return out


def load_layers(schema: type[T], defaults: Path, path: Path | str | None, sets: list[str] | tuple[str, ...],
                overrides: dict[str, Any] | None, *, noun: str, moved: Mapping[str, str] = {}) -> T:
    """``defaults`` (when the file exists), then ``path``, then ``sets``, then ``overrides``, validated
    against ``schema``; ``noun`` names its keys in messages (``config key``); ``moved`` lists keys that are gone
    with what replaced them."""
    data = read_config_file(defaults) if defaults.is_file() else {}
    layered = dataclasses.asdict(_validate(schema, data, f"{defaults.name}: ", defaults.parent, noun))
    if path is not None:
        path = Path(path)
        user = empty_sections(read_config_file(path), schema)
        where = f"{path}: "
        _refuse_moved(user, where, moved)
        # The user's file on its own first, so that its errors name the file that holds them.
        _validate(schema, user, where, path.parent, noun, partial=True)
        user_cfg = _validate(schema, _merge(data, user), where, path.parent, noun, partial=True)
        layered = _merge(layered, _only(dataclasses.asdict(user_cfg), user))
    cli: dict = {}
    for item in sets:
        key, value = parse_set(schema, item, noun, moved)
        cli = _merge(cli, _nest(key, value))
    for key, value in (overrides or {}).items():
        if value is not None:
            cli = _merge(cli, _nest(key, value))
    return _validate(schema, _merge(layered, cli), "", Path.cwd(), noun)
