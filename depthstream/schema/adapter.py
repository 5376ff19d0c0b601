"""From a schema's validation error to the product's one-line :class:`~depthstream.errors.ConfigError`.

Every document (the config, a depth model card, a detector sidecar, a camera profile) is validated by
pydantic against a schema of frozen pydantic dataclasses, through :func:`validate`. Of pydantic's errors the
first that matters is reported, in one line, in one of these forms (``where`` names the file)::

    {where}unknown {noun} 'detect.cnf' (did you mean 'detect.conf'?)
    {where}missing required key input (required: name, model, input, ...)
    {where}detect.conf: got 1.5, expected a number in [0, 1]
    {where}intrinsics.source.method: got 'chessbord', expected chessboard | ... (did you mean 'chessboard'?)
    {where}band: further_than 5 and closer_than 3 leave no distance ...   (a check across keys)

``expected`` is the field's :class:`~depthstream.schema.fields.Allowed` text, else words derived from its
type (``serial | parallel``, ``true or false``, ``a number``), else the message of the validator that failed.
An unknown key comes first (a misspelt key is the likeliest mistake), then a missing one, then values.
A list of sections (a camera profile's ``depth_calibrations``) names its items by index:
``depth_calibrations[0].output``.

A new document needs only its schema, :func:`read_yaml_mapping` and :func:`validate`.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import reprlib
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import TypeAdapter, ValidationError

from depthstream.errors import ConfigError

from .fields import Allowed, Guess, SetByLoader

T = TypeVar("T")

_UNKNOWN = ("unexpected_keyword_argument", "extra_forbidden")
_NOT_A_MAPPING = ("dataclass_type", "dataclass_args_type", "model_type", "dict_type")
_ABSENT = object()


MAX_DOCUMENT_BYTES = 1 << 20  # a config, card, sidecar or profile is a few kB


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader reading numbers as YAML 1.2 does: ``5e-1`` and ``1e3`` are numbers (YAML 1.1, and
    so PyYAML, wants ``5.0e-1``; a user typing ``--set detect.conf=5e-1`` means 0.5)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:float"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?
                |[-+]?\.(?:inf|Inf|INF)
                |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def load_yaml(text: str) -> Any:
    """One YAML document (safe: plain data only), numbers read as YAML 1.2 does (see :class:`_Loader`)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 -- _Loader is a SafeLoader


def read_yaml_mapping(path: Path, where: str, *, missing: str | None = None) -> dict:
    """The mapping a YAML file holds (an empty file is an empty mapping); ConfigError naming ``where``
    (e.g. ``model card x.yaml``) when the file is missing, unreadable, larger than 1 MiB, not UTF-8, not YAML
    or not a mapping. ``missing`` replaces the message for a file that does not exist."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_DOCUMENT_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(missing or f"{where}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot be read ({exc.strerror or exc}); check the path and its permissions") from exc
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise ConfigError(f"{where}: larger than {MAX_DOCUMENT_BYTES // 1024} KiB; expected a YAML file of a few kB "
                          f"(is it the right file?)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{where}: not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); save it as UTF-8") from exc
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML: {str(exc).splitlines()[0]}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: must be a mapping of keys, got {type(data).__name__}")
    return data


def validate(schema: type[T], data: Any, *, where: str = "", noun: str = "key", context: dict | None = None) -> T:
    """``data`` (a mapping, e.g. read from YAML) as a validated ``schema`` instance, or ConfigError with one
    line (see the module docstring). ``where`` prefixes the message (``"model card x.yaml: "``); ``noun``
    names keys in it (``"config key"``); ``context`` reaches the validators (e.g. ``base_dir`` for paths)."""
    try:
        return _adapter(schema).validate_python(data, context=context)
    except ValidationError as exc:
        raise ConfigError(where + describe(exc, schema, data, noun)) from exc


_ADAPTERS: dict[type, TypeAdapter] = {}


def _adapter(schema: type) -> TypeAdapter:
    if schema not in _ADAPTERS:
        _ADAPTERS[schema] = TypeAdapter(schema)
    return _ADAPTERS[schema]


def describe(exc: ValidationError, schema: type, data: Any, noun: str = "key") -> str:
    """The one-line description of the error that matters most in ``exc`` (``data`` validated against ``schema``)."""
    errors = exc.errors(include_url=False)
    unknown = [e for e in errors if e["type"] in _UNKNOWN]
    if unknown:
        return unknown_key(schema, key_text(unknown[0]["loc"]), noun)
    missing = [e for e in errors if e["type"] == "missing" and _is_key(schema, e["loc"])]
    if missing:
        section = missing[0]["loc"][:-1]
        names = [str(e["loc"][-1]) for e in missing if e["loc"][:-1] == section]
        required = [f.name for f in fields_of(_section(schema, section), keys_only=True).values() if f.required]
        prefix = key_text(section) + "." if section else ""
        return (f"missing required key{'s' if len(names) > 1 else ''} {', '.join(prefix + n for n in names)} "
                f"(required: {', '.join(prefix + n for n in required)})")
    return _value_error(schema, data, errors[0])


# -- the three kinds of error ---------------------------------------------------------------------


def key_text(loc: tuple | list) -> str:
    """A location as the user writes it: ``detect.conf``, ``depth_calibrations[0].output``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _loc(key: str) -> tuple:
    """``depth_calibrations[0].output`` -> ('depth_calibrations', 0, 'output')."""
    parts: list = []
    for piece in key.split("."):
        name, *indices = re.split(r"\[(\d+)\]", piece)
        parts += [name] + [int(i) for i in indices if i]
    return tuple(parts)


def unknown_key(schema: type, key: str, noun: str = "key") -> str:
    """``unknown {noun} '{key}' (did you mean '...'?)``, or the valid keys of its section when nothing is close."""
    if len(key) > _SHOWN_CHARS:
        return f"unknown {noun} {shown(key)} (keys are short names such as detect.conf; see config.yaml)"
    *section, name = key.split(".")
    prefix = "".join(f"{p}." for p in section)
    known = _section(schema, _loc(".".join(section))) if section else schema
    if known is not None:  # a misspelt key of a known section: compare with that section's keys
        close = [prefix + k for k in difflib.get_close_matches(name, list(fields_of(known, keys_only=True)), n=1, cutoff=0.5)]
    else:  # a misspelt section: compare the whole key with the keys as deep as it, then the last parts
        valid = [k for k in all_keys(schema, sections=True) if k.count(".") == key.count(".")]
        close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5) or [
            k for k in valid if difflib.get_close_matches(name, [k.rsplit(".", 1)[-1]], n=1, cutoff=0.8)][:1]
    if close:
        return f"unknown {noun} '{key}' (did you mean '{close[0]}'?)"
    if known is None:  # name the top-level keys
        prefix, known = "", schema
    return f"unknown {noun} '{key}' (valid keys: {', '.join(prefix + k for k in fields_of(known, keys_only=True))})"


def _value_error(schema: type, data: Any, error: dict) -> str:
    path, field = _field_at(schema, error["loc"])
    key = key_text(path)
    value = _lookup(data, path)
    if field is None or field.section is not None:  # a whole section, or the document
        if error["type"] in _NOT_A_MAPPING:
            keys = ", ".join(fields_of(field.section if field else schema, keys_only=True))
            return f"{key or 'the document'}: got {shown(value)}, expected a mapping of keys ({keys})"
        message = _validator_message(error)
        return f"{key}: {message}" if key else message
    if error["type"] == "string_unicode":  # a file name in another encoding (Latin-1 on a UTF-8 system)
        expected = (f"{allowed(field)} in UTF-8 (it holds bytes that are not UTF-8: rename the file, or give the "
                    "path in UTF-8)")
    elif error["type"] in ("value_error", "assertion_error"):
        expected = _validator_message(error)
    else:
        expected = allowed(field)
    got = "" if value is _ABSENT else f"got {shown(value)}, "
    return f"{key}: {got}expected {expected}{_did_you_mean(error, value, field)}"


_SHOWN_CHARS = 80
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = _SHOWN_CHARS
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 4
_REPR.maxlevel = 2


def shown(value: Any) -> str:
    """``repr(value)`` cut to a readable size: a message shows what was given, not all of it (a YAML document of
    a few hundred bytes can expand, through its aliases, to a value whose repr is hundreds of MB)."""
    text = _REPR.repr(value)
    if len(text) > 2 * _SHOWN_CHARS:
        text = text[: 2 * _SHOWN_CHARS] + "..."
    if isinstance(value, str) and len(value) > _SHOWN_CHARS - 2:
        text += f" ({len(value)} characters)"
    return text


def _did_you_mean(error: dict, value: Any, field: SchemaField) -> str:
    """`` (did you mean 'x'?)`` for a misspelt choice of an enumeration marked :class:`Guess`, else nothing."""
    if error["type"] != "literal_error" or not isinstance(value, str) or not any(isinstance(m, Guess) for m in field.metadata):
        return ""
    choices = re.findall(r"'([^']*)'", str((error.get("ctx") or {}).get("expected", "")))
    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _validator_message(error: dict) -> str:
    ctx = error.get("ctx") or {}
    if "error" in ctx:
        return str(ctx["error"])
    return error["msg"]


# -- reading the schema ---------------------------------------------------------------------------


class SchemaField(typing.NamedTuple):
    """One field of a schema dataclass, as pydantic sees it."""

    name: str
    annotation: Any  # the type, Annotated metadata moved to ``metadata`` (pydantic's FieldInfo)
    metadata: tuple
    required: bool

    @property
    def set_by_loader(self) -> bool:
        """Filled by the loader (e.g. the card's own file), not a key of the document."""
        return any(isinstance(m, SetByLoader) for m in self.metadata)

    @property
    def section(self) -> type | None:
        """The schema dataclass this field holds (a nested section), else None."""
        return _dataclass_of(self.annotation)

    @property
    def item_section(self) -> type | None:
        """The schema dataclass each item of this field holds (a list of sections), else None."""
        return _item_dataclass_of(self.annotation)


def fields_of(schema: type | None, *, keys_only: bool = False) -> dict[str, SchemaField]:
    """The fields of a pydantic dataclass schema by name, in declaration order (empty for anything else);
    ``keys_only``: without the fields the loader fills."""
    infos = getattr(schema, "__pydantic_fields__", None) or {}
    fields = {name: SchemaField(name, info.annotation, tuple(info.metadata), info.is_required())
              for name, info in infos.items()}
    return {n: f for n, f in fields.items() if not (keys_only and f.set_by_loader)}


def allowed(field: SchemaField) -> str:
    """What ``field`` accepts, in words."""
    for item in field.metadata:
        if isinstance(item, Allowed):
            return item.text
    return type_words(field.annotation)


def type_words(tp: Any) -> str:
    """Words for a type: ``Literal['a', 'b']`` -> ``a | b``; ``float | None`` -> ``a number or null``."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        for item in tp.__metadata__:
            if isinstance(item, Allowed):
                return item.text
        return type_words(typing.get_args(tp)[0])
    if origin is Literal:
        return " | ".join(map(str, typing.get_args(tp)))
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else type_words(a) for a in typing.get_args(tp))
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {type_words(args[0])}"
        return f"a list of {len(args)} values"
    return {float: "a number", int: "an integer", bool: "true or false", str: "a string"}.get(tp, getattr(tp, "__name__", str(tp)))


def all_keys(schema: type, prefix: str = "", *, sections: bool = False) -> list[str]:
    """Every dotted leaf key of a schema (``detect.conf``), nested sections walked; with ``sections``
    the sections' own keys too (``detect``)."""
    keys: list[str] = []
    for f in fields_of(schema, keys_only=True).values():
        if f.section is not None:
            keys += [f"{prefix}{f.name}"] if sections else []
            keys += all_keys(f.section, f"{prefix}{f.name}.", sections=sections)
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


def _through(tp: Any, match) -> type | None:
    """``match(tp)``, looked for through Annotated and ``| None``."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _through(typing.get_args(tp)[0], match)
    if origin in (typing.Union, types.UnionType):
        found = [d for d in (_through(a, match) for a in typing.get_args(tp)) if d is not None]
        return found[0] if found else None
    return match(tp)


def _dataclass_of(tp: Any) -> type | None:
    """The schema dataclass a type holds (through Annotated and ``| None``), else None."""
    return _through(tp, lambda t: t if isinstance(t, type) and dataclasses.is_dataclass(t) else None)


def _items_of(tp: Any) -> type | None:
    if typing.get_origin(tp) not in (list, tuple):
        return None
    args = [a for a in typing.get_args(tp) if a is not Ellipsis]
    return _dataclass_of(args[0]) if len(args) == 1 else None


def _item_dataclass_of(tp: Any) -> type | None:
    """The schema dataclass of the items of a list or tuple type (through Annotated and ``| None``), else None."""
    return _through(tp, _items_of)


def _item(field: SchemaField, index: int) -> SchemaField:
    """Item ``index`` of a list of sections, as a field of its own."""
    return SchemaField(f"{field.name}[{index}]", field.item_section, (), True)


def _section(schema: type, section: tuple) -> type | None:
    """The schema dataclass at ``section`` (keys, and indices into lists of sections), else None."""
    if not section:
        return schema
    path, field = _field_at(schema, section)
    return field.section if field is not None and len(path) == len(section) else None


def _field_at(schema: type, loc: tuple) -> tuple[list, SchemaField | None]:
    """The path (keys and list indices) of the schema field ``loc`` points into, and that field (None: the
    document)."""
    path: list = []
    field = None
    current: type | None = schema
    for part in loc:
        if isinstance(part, int) and field is not None and field.item_section is not None and path[-1] == field.name:
            field = _item(field, part)
            path.append(part)
            current = field.section
            continue
        found = fields_of(current).get(part) if isinstance(part, str) else None
        if found is None:
            break
        field = found
        path.append(part)
        current = field.section
    return path, field


def _is_key(schema: type, loc: tuple) -> bool:
    """Does ``loc`` end at a key of a section (not at an item of a list)?"""
    return bool(loc) and isinstance(loc[-1], str) and _section(schema, loc[:-1]) is not None


def _lookup(data: Any, path: list) -> Any:
    for part in path:
        if isinstance(part, int):
            if not isinstance(data, (list, tuple)) or not -len(data) <= part < len(data):
                return _ABSENT
        elif not isinstance(data, dict) or part not in data:
            return _ABSENT
        data = data[part]
    return data
