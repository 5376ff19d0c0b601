"""The model store: every file the product or its tests use that the repository does not hold.

``models/MANIFEST.yaml`` lists each file by name with its sha256, size, licence, where it comes from and
the pinned URL that serves the very same bytes (or, where none does, how to produce it). A name is found:

1. in the user's **model cache**: ``<cache>/models/NAME``, where ``<cache>`` is ``engine.cache_dir`` from
   the config when the caller passes it, else ``$DEPTHSTREAM_CACHE``, else ``$XDG_CACHE_HOME/depthstream``,
   else ``~/.cache/depthstream`` (built TensorRT engines live beside it, in ``<cache>/trt``);
2. in the **mirror**: a read-only folder laid out like the shared assets (``$DEPTHSTREAM_MIRROR``; by default
   ``../shared/assets`` beside a checkout when that folder exists; ``DEPTHSTREAM_MIRROR=`` turns it off);
3. by a **download** from its pinned URL into the cache, with a progress bar -- only when asked
   (:meth:`ModelStore.fetch`, i.e. ``python -m export models`` / ``make models``). Nothing else downloads:
   the product and the tests only :meth:`~ModelStore.locate`, and a missing file is one error line (exit 2)
   naming the file, its URL and where to put it by hand.

Wherever a file is found, its sha256 is checked against the manifest before it is used; a file with
another sha256 is refused, naming both hashes.

The manifest also lists the files the product *ships* (the demo clip), checked the same way when used.

Where things are: in a checkout, the manifest, ``config.yaml`` and the demo clip sit at the repository's
root (:data:`PROJECT_ROOT`). An installed wheel carries the same files under ``depthstream/_project/``
(``pyproject.toml`` maps that package to the root, so there is one copy of each in the repository).

This module imports nothing of ours but the bottom layer (errors, hashing).
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from .errors import ConfigError, EngineError, ModelNotFoundError
from .hashing import sha256_of

_PACKAGE_DIR = Path(__file__).resolve().parent
_BUNDLED = _PACKAGE_DIR / "_project"
PROJECT_ROOT = _BUNDLED if (_BUNDLED / "models" / "MANIFEST.yaml").is_file() else _PACKAGE_DIR.parent
"""The repository's root in a checkout; the copy of its data files inside an installed wheel."""

MODELS_DIR = PROJECT_ROOT / "models"
MANIFEST = MODELS_DIR / "MANIFEST.yaml"
DEFAULT_CONFIG = PROJECT_ROOT / "config.yaml"
DEMO_CLIP = PROJECT_ROOT / "data" / "vtest_pets2009_150f.mp4"

CACHE_ENV = "DEPTHSTREAM_CACHE"
MIRROR_ENV = "DEPTHSTREAM_MIRROR"
FETCH_COMMAND = "python -m export models"
GROUPS = ("demo", "test")


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """The product's cache folder: ``cache_dir`` (config ``engine.cache_dir``), else ``$DEPTHSTREAM_CACHE``,
    else ``$XDG_CACHE_HOME/depthstream``, else ``~/.cache/depthstream``."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "depthstream"


def default_mirror() -> Path | None:
    """``$DEPTHSTREAM_MIRROR`` (empty: no mirror), else ``../shared/assets`` beside a checkout when it exists."""
    if MIRROR_ENV in os.environ:
        value = os.environ[MIRROR_ENV].strip()
        return Path(value).expanduser() if value else None
    beside = PROJECT_ROOT.parent / "shared" / "assets"
    return beside if PROJECT_ROOT is not _BUNDLED and beside.is_dir() else None


@dataclass(frozen=True)
class StoreFile:
    """One manifest entry. ``url`` is None where no public URL serves these bytes; ``produce`` then says
    how to make the file. ``mirror`` is its path inside a mirror folder; ``needed_by`` names the set-ups
    (``demo``, ``test``) whose ``make`` target fetches it."""

    name: str
    sha256: str
    size: int
    licence: str
    source: str
    url: str | None
    produce: str | None
    mirror: str
    needed_by: tuple[str, ...]


_HASHES: dict[tuple[str, int, int], str] = {}


def _sha256_cached(path: Path) -> str:
    """sha256 of ``path``, remembered in this process while its size and modification time stay the same."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        _HASHES[key] = sha256_of(path)
    return _HASHES[key]


def _text(where: str, raw: dict, key: str, required: bool = True) -> str | None:
    value = raw.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: '{key}' must be a non-empty string, got {value!r}")
    return " ".join(value.split())


def read_manifest(path: Path, where: str, list_key: str) -> dict:
    """A manifest YAML file that must be a mapping holding a list under ``list_key``; ConfigError (one line,
    starting with ``where``) otherwise."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{where}: file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict) or not isinstance(data.get(list_key), list):
        raise ConfigError(f"{where}: expected a mapping with a list '{list_key}'")
    return data


def load_manifest(path: Path = MANIFEST) -> tuple[dict[str, StoreFile], dict[str, str]]:
    """(name -> :class:`StoreFile`, shipped path relative to the project -> sha256) from a manifest file."""
    data = read_manifest(path, f"model manifest {path}", "files")
    files: dict[str, StoreFile] = {}
    for i, raw in enumerate(data["files"]):
        where = f"model manifest {path}, entry {raw.get('name', i) if isinstance(raw, dict) else i}"
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: must be a mapping")
        sha, size = str(raw.get("sha256", "")).lower(), raw.get("size")
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise ConfigError(f"{where}: sha256 must be 64 hex digits, got {raw.get('sha256')!r}")
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise ConfigError(f"{where}: size must be a positive number of bytes, got {size!r}")
        url, produce = _text(where, raw, "url", False), _text(where, raw, "produce", False)
        if url is None and produce is None:
            raise ConfigError(f"{where}: give the 'url' that serves the file, or 'produce' (how to make it)")
        needed = tuple(raw.get("needed_by") or ())
        if any(g not in GROUPS for g in needed):
            raise ConfigError(f"{where}: needed_by must list some of {', '.join(GROUPS)}, got {list(needed)}")
        name = _text(where, raw, "name")
        files[name] = StoreFile(name, sha, size, _text(where, raw, "licence"), _text(where, raw, "source"), url,
                                produce, _text(where, raw, "mirror", False) or name, needed)
    shipped = {str(s["path"]): str(s["sha256"]).lower() for s in data.get("shipped") or ()}
    return files, shipped


class ModelStore:
    """Finds, checks and (on request) downloads the files of a manifest. See the module docstring.

    cache_dir: the product's cache folder (config ``engine.cache_dir``; None = :func:`cache_root`'s
    default); models go to ``<cache_dir>/models``. mirror: a mirror folder, None for none; by default
    :func:`default_mirror`.
    """

    _DEFAULT = object()

    def __init__(self, manifest: str | Path = MANIFEST, *, cache_dir: str | Path | None = None,
                 mirror: str | Path | None | object = _DEFAULT) -> None:
        self.manifest = Path(manifest)
        self.files, self.shipped = load_manifest(self.manifest)
        self.cache = cache_root(cache_dir) / "models"
        self.mirror = default_mirror() if mirror is self._DEFAULT else (Path(mirror) if mirror else None)  # type: ignore[arg-type]

    # -- looking up ------------------------------------------------------------------------------
    def entry(self, name: str) -> StoreFile:
        if name not in self.files:
            raise ConfigError(f"{name!r} is not in the model manifest {self.manifest} (it lists "
                              f"{', '.join(sorted(self.files))})")
        return self.files[name]

    def names(self, group: str | None = None) -> list[str]:
        """Every name in the manifest, or those a set-up (``demo``, ``test``) needs."""
        return [n for n, f in self.files.items() if group is None or group in f.needed_by]

    def candidates(self, name: str) -> list[Path]:
        """Where ``name`` is looked for, in order: the cache, then the mirror."""
        entry = self.entry(name)
        return [self.cache / name] + ([self.mirror / entry.mirror] if self.mirror is not None else [])

    def locate(self, name: str) -> Path:
        """The checked file for ``name`` from the cache or the mirror. Never downloads.

        Raises ModelNotFoundError (exit code 2) when neither has it, EngineError when a file there has
        another sha256.
        """
        entry = self.entry(name)
        for path in self.candidates(name):
            if path.is_file():
                self.verify(path, entry)
                return path
        raise ModelNotFoundError(self._missing(entry))

    def _missing(self, entry: StoreFile) -> str:
        mirror = f"the mirror ({self.mirror})" if self.mirror is not None else f"a mirror (none set: {MIRROR_ENV})"
        head = f"{entry.name} is not in the model cache ({self.cache}) nor in {mirror}"
        if entry.url:
            return (f"{head}: run '{FETCH_COMMAND}' to download it from {entry.url}, or download it yourself and "
                    f"put it at {self.cache / entry.name}")
        return (f"{head}, and no public URL serves these bytes: {entry.produce}; put the file at "
                f"{self.cache / entry.name} (sha256 {entry.sha256})")

    def verify(self, path: Path, entry: StoreFile) -> None:
        """EngineError unless ``path`` has the entry's sha256."""
        got = _sha256_cached(path)
        if got != entry.sha256:
            raise EngineError(
                f"{path} has sha256 {got} ({path.stat().st_size} bytes), but the model manifest pins {entry.sha256} "
                f"({entry.size} bytes) for {entry.name}: the file is damaged or not the published one; delete it and "
                f"run '{FETCH_COMMAND}'")

    def resolve(self, path: str | Path) -> Path:
        """A model path as the user or a config gives it -> the file to open.

        ``models/NAME`` of the product (the manifest's own folder) with NAME in the manifest is the store's
        file: found by :meth:`locate`. Any other path is returned as it is (the caller checks it exists).
        """
        path = Path(path)
        if path.parent.resolve() == MODELS_DIR.resolve() and path.name in self.files:
            return self.locate(path.name)
        return path

    # -- fetching (explicit only) -----------------------------------------------------------------
    def fetch(self, name: str, *, timeout_s: float = 30.0, progress: bool = True) -> tuple[Path, str]:
        """The checked file for ``name``, downloaded into the cache when neither the cache nor the mirror
        has it. Returns (path, where it came from: ``cache``, ``mirror`` or ``downloaded``)."""
        entry = self.entry(name)
        try:
            path = self.locate(name)
        except ModelNotFoundError:
            if not entry.url:
                raise
        else:
            return path, "cache" if path == self.cache / name else "mirror"
        dest = self.cache / name
        download(entry.url, dest, sha256=entry.sha256, timeout_s=timeout_s, progress=progress)  # type: ignore[arg-type]
        return dest, "downloaded"

    # -- files the product ships -------------------------------------------------------------------
    def verify_shipped(self, path: str | Path) -> None:
        """If ``path`` is a file the product ships (listed under ``shipped``), check its sha256."""
        resolved = Path(path).resolve()
        for rel, sha in self.shipped.items():
            if (PROJECT_ROOT / rel).resolve() != resolved:
                continue
            if not resolved.is_file():
                raise EngineError(f"shipped file {path} is missing: the installation is incomplete ('git checkout -- {rel}' "
                                  f"in a checkout, or reinstall the package)")
            got = _sha256_cached(resolved)
            if got != sha:
                raise EngineError(f"{path} has sha256 {got}, the shipped file has {sha}: the file is damaged or was "
                                  f"replaced; restore it ('git checkout -- {rel}' in a checkout, or reinstall the package)")
            return


def download(url: str, dest: Path, *, sha256: str | None, timeout_s: float = 30.0, progress: bool = True) -> str:
    """``url`` -> ``dest`` through ``dest.part``, with a progress bar on stderr; returns the file's sha256.

    With ``sha256`` given, a file with another hash is deleted and refused (EngineError naming both).
    A failed download is a ModelNotFoundError (exit code 2) saying where to put the file by hand.
    """
    from tqdm import tqdm

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response, open(part, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress, file=sys.stderr,
                      leave=False) as bar:
                while block := response.read(1 << 20):
                    out.write(block)
                    bar.update(len(block))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        part.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc
        raise ModelNotFoundError(f"cannot download {url} ({reason}); download it yourself and put it at {dest}") from exc
    got = sha256_of(part)
    if sha256 is not None and got != sha256:
        size = part.stat().st_size
        part.unlink()
        raise EngineError(f"{url} sent a file with sha256 {got} ({size} bytes), but the model manifest pins {sha256}: "
                          f"refused (nothing was written to {dest}); the URL no longer serves the published file")
    part.replace(dest)
    return got


def resolve_model(path: str | Path, cache_dir: str | Path | None = None) -> Path:
    """:meth:`ModelStore.resolve` with the default manifest and mirror."""
    return ModelStore(cache_dir=cache_dir).resolve(path)


def locate(name: str, cache_dir: str | Path | None = None) -> Path:
    """:meth:`ModelStore.locate` with the default manifest and mirror."""
    return ModelStore(cache_dir=cache_dir).locate(name)


def verify_shipped(path: str | Path) -> None:
    """:meth:`ModelStore.verify_shipped` with the default manifest."""
    ModelStore(mirror=None).verify_shipped(path)
