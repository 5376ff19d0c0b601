"""Configuration: ``config.yaml`` -> validated, frozen dataclasses.

Layers, later wins: the project's ``config.yaml`` (every default, documented there), ``--config FILE``
(only the keys it sets), ``--set key=value`` (dotted keys, YAML values), then the dedicated CLI flags.
An unknown key names the closest valid key; a bad value names the key, the value and what is allowed.
Relative paths in a config file are relative to that file's folder.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from depthstream.errors import ConfigError
from .models import PROJECT_ROOT

DEFAULT_CONFIG = PROJECT_ROOT / "config.yaml"


def _check(fn, allowed: str):
    return {"check": fn, "allowed": allowed}


_POSITIVE = _check(lambda v: v > 0, "a number > 0")
_NONNEG = _check(lambda v: v >= 0, "a number >= 0")
_UNIT = _check(lambda v: 0 <= v <= 1, "a number in [0, 1]")
_PATH = {"path": True}


@dataclass(frozen=True)
class SourceConfig:
    uri: str = "demo"
    max_frames: int = field(default=0, metadata=_NONNEG)
    open_timeout_s: float = field(default=5.0, metadata=_check(lambda v: 0 < v <= 120, "seconds in (0, 120]"))
    read_timeout_s: float = field(default=5.0, metadata=_check(lambda v: 0 < v <= 120, "seconds in (0, 120]"))
    rtsp_transport: Literal["tcp", "udp"] = "tcp"
    reconnect_attempts: int = field(default=30, metadata=_check(lambda v: v >= 0, "an integer >= 0 (0 = do not reconnect)"))
    reconnect_backoff_s: float = field(default=0.5, metadata=_check(lambda v: 0 < v <= 60, "seconds in (0, 60]"))
    reconnect_backoff_max_s: float = field(default=2.0, metadata=_check(lambda v: 0 < v <= 300, "seconds in (0, 300]"))


@dataclass(frozen=True)
class PipelineConfig:
    layout: Literal["serial", "parallel"] = "parallel"
    queue_size: int = field(default=4, metadata=_check(lambda v: 1 <= v <= 256, "an integer in 1..256"))
    policy: Literal["auto", "block", "latest"] = "auto"
    threads: int = field(default=0, metadata=_NONNEG)
    timeout_s: float = field(default=0.1, metadata=_check(lambda v: 0 < v <= 5, "seconds in (0, 5]"))


@dataclass(frozen=True)
class DetectConfig:
    model: str = field(default="models/yolox_nano.onnx", metadata=_PATH)
    conf: float = field(default=0.3, metadata=_UNIT)
    iou: float = field(default=0.45, metadata=_UNIT)
    classes: tuple[str | int, ...] = ()
    max_det: int = field(default=100, metadata=_check(lambda v: v >= 1, "an integer >= 1"))


@dataclass(frozen=True)
class GroundPlaneConfig:
    height_m: float = field(default=7.07, metadata=_POSITIVE)
    pitch_deg: float = field(default=16.5, metadata=_check(lambda v: -90 < v < 90, "degrees in (-90, 90)"))
    vfov_deg: float | None = field(default=None, metadata=_check(lambda v: 0 < v < 180, "degrees in (0, 180)"))
    focal_px: float | None = field(default=1194.6, metadata=_POSITIVE)
    cy_px: float | None = 282.6
    max_depth_m: float = field(default=100.0, metadata=_POSITIVE)


@dataclass(frozen=True)
class DepthConfig:
    source: str = "ground-plane"
    box_stat: str = "auto"
    roi: float = field(default=0.4, metadata=_check(lambda v: 0 < v <= 1, "a fraction in (0, 1]"))
    threads: int = field(default=0, metadata=_NONNEG)
    ground_plane: GroundPlaneConfig = GroundPlaneConfig()


@dataclass(frozen=True)
class BandConfig:
    closer_than: float | None = None
    further_than: float | None = None


@dataclass(frozen=True)
class TrackConfig:
    enabled: bool = True
    high_conf: float = field(default=0.5, metadata=_UNIT)
    iou: float = field(default=0.15, metadata=_check(lambda v: 0 < v < 1, "a number in (0, 1)"))
    lost_s: float = field(default=1.0, metadata=_check(lambda v: 0 < v <= 60, "seconds in (0, 60]"))
    kalman_gain: float = field(default=1.0, metadata=_check(lambda v: 0 < v <= 1, "a number in (0, 1]"))
    window: int = field(default=5, metadata=_check(lambda v: 2 <= v <= 100, "an integer in 2..100"))
    outlier_rel: float = field(default=0.2, metadata=_check(lambda v: 0 < v <= 1, "a fraction in (0, 1]"))
    noise_rel: float = field(default=0.05, metadata=_check(lambda v: 0 < v <= 1, "a fraction in (0, 1]"))
    unreliable_factor: float = field(default=3.0, metadata=_check(lambda v: v >= 1, "a number >= 1"))
    accel_mps2: float = field(default=1.0, metadata=_POSITIVE)
    speed_prior_mps: float = field(default=1.5, metadata=_POSITIVE)
    max_speed_mps: float = field(default=20.0, metadata=_POSITIVE)


@dataclass(frozen=True)
class EventsConfig:
    margin_m: float = field(default=0.3, metadata=_NONNEG)
    min_duration_s: float = field(default=0.5, metadata=_NONNEG)
    approach_ttc_s: float = field(default=3.0, metadata=_POSITIVE)
    on_event: str | None = None
    deliver_timeout_s: float = field(default=2.0, metadata=_check(lambda v: 0 < v <= 60, "seconds in (0, 60]"))
    queue_size: int = field(default=64, metadata=_check(lambda v: 1 <= v <= 10000, "an integer in 1..10000"))
    drain_s: float = field(default=5.0, metadata=_check(lambda v: 0 <= v <= 600, "seconds in [0, 600]"))


@dataclass(frozen=True)
class MaskConfig:
    fill: Literal["black", "grey", "blur"] = "grey"
    blur_ksize: int = field(default=31, metadata=_check(lambda v: v >= 3 and v % 2 == 1, "an odd integer >= 3"))


@dataclass(frozen=True)
class OverlayConfig:
    tint_bgr: tuple[int, ...] = (40, 40, 160)
    tint_alpha: float = field(default=0.45, metadata=_UNIT)
    depth_inset: bool = True
    inset_fraction: float = field(default=0.25, metadata=_check(lambda v: 0.05 <= v <= 0.5, "a fraction in [0.05, 0.5]"))
    inset_max_m: float = field(default=40.0, metadata=_POSITIVE)
    hud: bool = True


@dataclass(frozen=True)
class EngineConfig:
    backend: str = field(default="auto", metadata=_check(
        lambda v: v in ("auto", "ort-cpu", "ort-cuda", "ort-trt", "trt") or v.startswith("triton://"),
        "auto | ort-cpu | ort-cuda | ort-trt | trt | triton://HOST:PORT"))
    fp16: bool = True
    cache_dir: str | None = field(default=None, metadata=_PATH)


@dataclass(frozen=True)
class OutputConfig:
    mp4: str | None = None
    jsonl: str | None = None
    show: bool = False
    crf: int = field(default=23, metadata=_check(lambda v: 0 <= v <= 51, "an integer in 0..51 (lower = better quality)"))
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"] = "veryfast"


@dataclass(frozen=True)
class Config:
    source: SourceConfig = SourceConfig()
    pipeline: PipelineConfig = PipelineConfig()
    detect: DetectConfig = DetectConfig()
    depth: DepthConfig = DepthConfig()
    band: BandConfig = BandConfig()
    track: TrackConfig = TrackConfig()
    events: EventsConfig = EventsConfig()
    mask: MaskConfig = MaskConfig()
    overlay: OverlayConfig = OverlayConfig()
    output: OutputConfig = OutputConfig()
    engine: EngineConfig = EngineConfig()


# -- loading -----------------------------------------------------------------------------------


def all_keys(cls=Config, prefix: str = "") -> list[str]:
    """Every dotted key of the schema, e.g. ``detect.conf``."""
    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(hints[f.name]):
            keys += all_keys(hints[f.name], key + ".")
        else:
            keys.append(key)
    return keys


def _unknown(key: str, valid: list[str], where: str) -> ConfigError:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    if not close:  # a misspelt section name: compare the last part too
        tail = key.rsplit(".", 1)[-1]
        close = [k for k in valid if difflib.get_close_matches(tail, [k.rsplit(".", 1)[-1]], n=1, cutoff=0.8)][:1]
    hint = f" (did you mean '{close[0]}'?)" if close else f" (valid keys: {', '.join(valid)})"
    return ConfigError(f"{where}unknown config key '{key}'{hint}")


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(map(str, typing.get_args(tp)))
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    return {float: "a number", int: "an integer", bool: "true or false", str: "a string"}.get(tp, str(tp))


def _coerce(value: Any, tp, key: str, where: str) -> Any:
    def bad() -> ConfigError:
        return ConfigError(f"{where}{key}: got {value!r}, expected {_type_name(tp)}")

    origin = typing.get_origin(tp)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise bad()
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key, where)
            except ConfigError:
                continue
        raise bad()
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise bad()
        item = typing.get_args(tp)[0]
        return tuple(_coerce(v, item, key, where) for v in value)
    if tp is bool:
        if not isinstance(value, bool):
            raise bad()
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad()
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise bad()
        return float(value)
    if tp is str:
        if not isinstance(value, str) or not value:
            raise bad()
        return value
    raise bad()


def _build(cls, data: dict, prefix: str, where: str, base_dir: Path):
    if not isinstance(data, dict):
        raise ConfigError(f"{where}section '{prefix.rstrip('.') or '<top>'}' must be a mapping of keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name: f for f in dataclasses.fields(cls)}
    valid = all_keys(Config)
    for k in data:
        if k not in names:
            raise _unknown(f"{prefix}{k}", valid, where)
    values = {}
    for name, f in names.items():
        key = f"{prefix}{name}"
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            values[name] = _build(tp, data.get(name) or {}, key + ".", where, base_dir) if name in data else f.default
            continue
        if name not in data:
            continue
        value = _coerce(data[name], tp, key, where)
        check = f.metadata.get("check")
        if check is not None and value is not None and not check(value):
            raise ConfigError(f"{where}{key}: got {data[name]!r}, expected {f.metadata['allowed']}")
        if f.metadata.get("path") and value is not None:
            expanded = Path(value).expanduser()  # ~ is the user's home
            value = str(expanded if expanded.is_absolute() else (base_dir / expanded).resolve())
        values[name] = value
    return cls(**values)


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections, got {type(data).__name__}")
    return data


def parse_set(item: str) -> tuple[str, Any]:
    """``detect.conf=0.4`` -> ('detect.conf', 0.4); the value is read as YAML."""
    if "=" not in item:
        raise ConfigError(f"--set expects key=value (e.g. --set detect.conf=0.4), got {item!r}")
    key, raw = item.split("=", 1)
    key = key.strip()
    if key not in all_keys(Config):
        raise _unknown(key, all_keys(Config), "--set: ")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {key}: cannot read value {raw!r}: {str(exc).splitlines()[0]}") from exc
    return key, value


def _nest(key: str, value: Any) -> dict:
    out: dict = value
    for part in reversed(key.split(".")):
        out = {part: out}
    return out


def load_config(
    path: Path | None = None,
    sets: list[str] = (),  # type: ignore[assignment]
    overrides: dict[str, Any] | None = None,
) -> Config:
    """Defaults from the project's config.yaml, then ``path``, then ``--set`` items, then ``overrides``
    (dotted key -> value, from CLI flags; paths there are relative to the working directory)."""
    data = read_yaml(DEFAULT_CONFIG) if DEFAULT_CONFIG.is_file() else {}
    cfg = _build(Config, data, "", f"{DEFAULT_CONFIG.name}: ", DEFAULT_CONFIG.parent)
    layered = dataclasses.asdict(cfg)
    if path is not None:
        path = Path(path)
        user = read_yaml(path)
        # Validate the user's file on its own first so errors name the file that holds them.
        _build(Config, user, "", f"{path}: ", path.parent)
        user_cfg = _build(Config, _merge(data, user), "", f"{path}: ", path.parent)
        layered = _merge(layered, _only(dataclasses.asdict(user_cfg), user))
    cli: dict = {}
    for item in sets:
        key, value = parse_set(item)
        cli = _merge(cli, _nest(key, value))
    for key, value in (overrides or {}).items():
        if value is not None:
            cli = _merge(cli, _nest(key, value))
    if cli:
        layered = _merge(layered, cli)
    return _build(Config, layered, "", "", Path.cwd())


def _only(full: dict, given: dict) -> dict:
    """The part of ``full`` whose keys appear in ``given`` (so a user file only overrides what it sets)."""
    out = {}
    for k, v in given.items():
        out[k] = _only(full[k], v) if isinstance(v, dict) and isinstance(full.get(k), dict) else full[k]
    return out
