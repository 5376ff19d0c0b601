"""The one validation layer: a pydantic schema per document, and one adapter to our error messages.

- :mod:`~depthstream.schema.config`: the configuration (``config.yaml``, ``--config``, ``--set``, flags);
  :mod:`~depthstream.schema.loading` layers those sources.
- :mod:`~depthstream.schema.card`: depth model cards.
- :mod:`~depthstream.schema.sidecar`: detector sidecars.
- :mod:`~depthstream.schema.camera`: camera profiles (:mod:`~depthstream.schema.camera_yaml` writes them with
  comments).
- :mod:`~depthstream.schema.adapter`: YAML reading and pydantic's errors -> one ``ConfigError`` line.
- :mod:`~depthstream.schema.fields`: the bounded field types the schemas share.

Types, bounds, defaults and enumerations live here only; the components receive the validated, frozen
objects and do not check them again. A new document is a schema of
``pydantic.dataclasses.dataclass(frozen=True, config=ConfigDict(extra="forbid"))`` classes built from
:mod:`~depthstream.schema.fields`, read with :func:`~depthstream.schema.adapter.read_yaml_mapping` and
checked with :func:`~depthstream.schema.adapter.validate`.
"""
