"""The product's one error hierarchy.

Every error is a ``StreamError`` and also the builtin it resembles, so callers can catch either.
Messages say what failed, what was received, what was expected and how to fix it. The CLI prints
``error: <message>`` on one line and exits with ``exit_code`` (2 usage/config, 1 runtime).
"""

from __future__ import annotations

from typing import Callable


class StreamError(Exception):
    """Base of every error the product raises on purpose."""

    exit_code = 1


class ConfigError(StreamError, ValueError):
    """A bad flag, config key or config value (exit code 2)."""

    exit_code = 2


class SourceError(StreamError, IOError):
    """A video source could not be opened or read."""


class SourceNotFoundError(SourceError, FileNotFoundError):
    """The source the user named does not exist (a usage error: exit code 2)."""

    exit_code = 2


class EngineError(StreamError, RuntimeError):
    """A model file or an inference backend is missing, wrong or failed."""


class DepthError(StreamError, ValueError):
    """Depth is asked for in a unit the depth source cannot give (e.g. metres from an uncalibrated model)."""

    exit_code = 2


class ModelNotFoundError(EngineError, FileNotFoundError):
    """A model file the user named does not exist (a usage error: exit code 2, like a missing source)."""

    exit_code = 2


class SinkError(StreamError, IOError):
    """An output (MP4, JSONL, window) could not be written."""


class OutputPathError(SinkError):
    """An output path that cannot be used (a folder where a file is needed, under a file, not
    writable): a usage error, found before the first frame (exit code 2)."""

    exit_code = 2


class DeliveryError(StreamError, OSError):
    """An event could not be delivered to the user's command or HTTP endpoint (``--on-event``); counted and
    logged, never a reason to stop the pipeline."""


class ServeError(StreamError, OSError):
    """The browser view (``--serve``) could not listen or start (a port in use, an address not of this machine)."""


class PipelineError(StreamError, RuntimeError):
    """A worker of the pipeline failed; the original exception is chained as ``__cause__``."""


def guarded_main(body: Callable[[], int]) -> int:
    """Run a command-line entry point's body the way every ``python -m ...`` of the product does:
    a ``StreamError`` becomes one ``error: <message>`` line on stderr (credentials redacted) and its exit code, Ctrl-C exits 130."""
    import sys

    from .redact import redact

    try:
        return body()
    except StreamError as exc:
        sys.stderr.write(f"error: {redact(exc)}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
