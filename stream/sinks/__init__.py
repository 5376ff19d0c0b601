"""Where annotated frames and per-frame records go: H.264 MP4 (or a folder of images), JSONL, a display window.

Every sink has ``open()`` (optional: the first ``write`` opens it), ``write(...)``, an idempotent
``close()``, and is a context manager whose ``__exit__`` closes it even when an exception is on its way,
so an interrupted run leaves a playable MP4 and a JSONL file whose every line is valid. Problems with the
output path are reported as ``SinkError`` in ``open()`` (:func:`prepare_output_path`), before any frame is
encoded. The JSONL schema is in :mod:`stream.sinks.jsonl`.
"""

from .images import ImageFolderSink
from .jsonl import JsonlSink, frame_record
from .mp4 import Mp4Sink
from .paths import prepare_output_path
from .window import WindowSink

__all__ = ["Mp4Sink", "JsonlSink", "ImageFolderSink", "WindowSink", "frame_record", "prepare_output_path"]
