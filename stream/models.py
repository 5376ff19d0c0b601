"""Where the shipped models and the demo clip live, and their integrity check.

``models/MANIFEST.yaml`` lists every file the product ships with its sha256, source and licence. A
shipped file is checked when it is loaded: a corrupted or replaced model must fail loudly, not give
quietly wrong boxes.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

from depthstream.errors import EngineError
from depthstream.hashing import sha256_of

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = PROJECT_ROOT / "models"
MANIFEST = MODELS_DIR / "MANIFEST.yaml"
DEMO_CLIP = PROJECT_ROOT / "data" / "vtest_pets2009_150f.mp4"



@lru_cache(maxsize=1)
def _manifest() -> dict[Path, str]:
    entries = yaml.safe_load(MANIFEST.read_text()) or {}
    return {(PROJECT_ROOT / e["path"]).resolve(): e["sha256"] for e in entries.get("files", [])}


def verify_shipped(path: Path) -> None:
    """If ``path`` is a file the product ships, check its sha256 against the manifest.

    Files the user brings are not in the manifest and pass unchecked.
    """
    expected = _manifest().get(Path(path).resolve())
    if expected is None:
        return
    if not Path(path).is_file():
        raise EngineError(f"shipped file {path} is missing: restore it with 'git checkout -- {path}'")
    got = sha256_of(Path(path))
    if got != expected:
        resolved = Path(path).resolve()
        shown = resolved.relative_to(PROJECT_ROOT) if resolved.is_relative_to(PROJECT_ROOT) else resolved
        raise EngineError(
            f"{path} has sha256 {got[:16]}…, the shipped file has {expected[:16]}…: the file is corrupt or "
            f"was replaced; restore it with 'git checkout -- {shown}'"
        )
