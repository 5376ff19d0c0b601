"""Delivering event records to where the user asked (``--on-event`` / ``events.on_event``).

Plain synchronous callables, one per kind of target, each bounded by a timeout; they raise
``DeliveryError`` saying what failed. They run on the event-delivery worker (``stream.pipeline.Dispatcher``),
never on the pipeline's own threads, so a slow or dead target costs the video nothing.

- ``http://...`` or ``https://...``: one POST per event, the record as a JSON body
  (``Content-Type: application/json``); any 2xx answer is a delivery.
- anything else: a command line (split like a POSIX shell does, run without a shell), started once per event
  with the record as one JSON line on its standard input; exit status 0 is a delivery. Its output is discarded.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable, Mapping

from depthstream.errors import ConfigError, DeliveryError

from ..sources import redact

Deliver = Callable[[Mapping[str, Any]], None]


def _body(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class HttpPost:
    """POST each record as JSON to ``url``; ``timeout_s`` bounds connecting and each read."""

    def __init__(self, url: str, timeout_s: float) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.name = redact(url)

    def __call__(self, record: Mapping[str, Any]) -> None:
        request = urllib.request.Request(self.url, data=_body(record), method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:
                answer.read()
        except urllib.error.HTTPError as exc:
            raise DeliveryError(f"POST {self.name} answered HTTP {exc.code} {exc.reason}; expected a 2xx status") from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DeliveryError(f"POST {self.name} failed: {redact(str(reason)) or type(exc).__name__} (timeout {self.timeout_s:g} s)") from exc


class RunCommand:
    """Run ``argv`` once per record, the record as one JSON line on its standard input, killed after
    ``timeout_s``."""

    def __init__(self, argv: list[str], timeout_s: float) -> None:
        self.argv = argv
        self.timeout_s = timeout_s
        self.name = shlex.join(argv)

    def __call__(self, record: Mapping[str, Any]) -> None:
        try:
            done = subprocess.run(self.argv, input=_body(record) + b"\n", stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, timeout=self.timeout_s, check=False)
        except subprocess.TimeoutExpired as exc:
            raise DeliveryError(f"{self.name} did not finish within {self.timeout_s:g} s (killed)") from exc
        except OSError as exc:
            raise DeliveryError(f"{self.name} could not be started: {exc.strerror or exc}") from exc
        if done.returncode != 0:
            tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] if done.stderr else []
            raise DeliveryError(f"{self.name} exited with status {done.returncode}" + (f": {tail[0][:200]}" if tail else ""))


def delivery_target(text: str, timeout_s: float) -> HttpPost | RunCommand:
    """The callable for ``--on-event TEXT`` (``events.on_event``, not blank: the schema sees to that); a target
    that cannot work is a ConfigError now, before any frame."""
    where = f"--on-event {redact(text)!r}"
    scheme = urllib.parse.urlsplit(text.strip()).scheme.lower()
    if scheme in ("http", "https"):
        parts = urllib.parse.urlsplit(text.strip())
        if not parts.hostname:
            raise ConfigError(f"{where}: the URL has no host; expected e.g. http://127.0.0.1:8080/events")
        return HttpPost(text.strip(), timeout_s)
    try:
        argv = shlex.split(text)
    except ValueError as exc:
        raise ConfigError(f"{where}: cannot split it into a command line ({exc}); quote it like a shell would") from exc
    program = argv[0]
    found = shutil.which(program) or (shutil.which(str(Path(program).expanduser())) if "/" in program else None)
    if found is None:
        raise ConfigError(f"{where}: no executable command {program!r} (not on PATH, or not an executable file); "
                          f"give an http(s):// URL or a command that reads one JSON event on its standard input")
    return RunCommand([found, *argv[1:]], timeout_s)
