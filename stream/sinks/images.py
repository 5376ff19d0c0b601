"""Annotated frames as image files in a folder (``--output`` given a folder)."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from depthstream.errors import OutputPathError, SinkError

from .paths import prepare_output_path


class ImageFolderSink:
    """Write each annotated frame as an image file into a folder (``--output`` given a folder).

    ``write(image, name)``: ``name`` is the file name (an image source's own name, so ``a.png`` gives
    ``folder/a.png``); None numbers the frames ``frame_000042.jpg`` by frame index. The folder is created
    by ``open()``; files already in it are replaced only when a frame of the same name is written.
    """

    def __init__(self, folder: str | Path, ext: str = ".jpg") -> None:
        self.folder = Path(folder).expanduser()
        self.ext = ext
        self._files = 0

    @property
    def files_written(self) -> int:
        return self._files

    def open(self) -> "ImageFolderSink":
        """Check the folder (an existing file there is an error) and create it. Raises SinkError."""
        if self.folder.exists() and not self.folder.is_dir():
            raise OutputPathError(f"cannot write annotated images to {self.folder}: it is an existing file, not a folder; give a folder path or a .mp4 file")
        prepare_output_path(self.folder / "probe", "annotated images")
        if not os.access(self.folder, os.W_OK | os.X_OK):
            raise OutputPathError(f"cannot write annotated images to {self.folder}: the folder is not writable (permission denied)")
        return self

    def write(self, image_bgr: np.ndarray, name: str | None, index: int) -> Path:
        """Write one (H, W, 3) uint8 BGR image; returns its path."""
        path = self.folder / (name if name else f"frame_{index:06d}{self.ext}")
        try:
            ok = cv2.imwrite(str(path), image_bgr)
        except cv2.error as exc:
            raise SinkError(f"writing {path} failed: {str(exc).strip().splitlines()[-1]}") from exc
        if not ok:
            raise SinkError(f"writing {path} failed (disk full, or no encoder for its extension)")
        self._files += 1
        return path

    def close(self) -> None:
        return None

    def __enter__(self) -> "ImageFolderSink":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()


