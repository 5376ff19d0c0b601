"""The two explicit fetch commands; nothing here runs at import, in the product or in the tests' default paths.

- ``python -m export models`` (``make models``): the model store's files (``models/MANIFEST.yaml``: the
  product's models and the test photos), each found in the cache or the mirror or downloaded into the cache,
  sha256 checked (:func:`fetch_models`).
- ``python -m export weights``: the public checkpoints of ``export/weights.yaml``, downloaded (through the
  store's downloader), checked, then exported to ONNX with ``python -m export``'s own commands
  (:func:`fetch_and_export`; needs the ``export`` extra).

Offline, the first missing file stops the command with one line saying which URL to download and where to put
it (exit 2); a file put there by hand is checked and used the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from depthstream.errors import ConfigError
from depthstream.store import GROUPS, PROJECT_ROOT, ModelStore, read_manifest
from depthstream.store import download as store_download

from .common import ExportError, sha256_of

MANIFEST = Path(__file__).with_name("weights.yaml")
DEFAULT_DIR = PROJECT_ROOT / "models" / "weights"
LOCK_NAME = "SHA256SUMS"


@dataclass(frozen=True)
class WeightFile:
    url: str
    path: str
    sha256: str | None


@dataclass(frozen=True)
class Entry:
    name: str
    default: bool
    licence: str
    files: tuple[WeightFile, ...]
    weights: str
    export: tuple[str, ...]


def load_manifest(path: Path | None = None) -> list[Entry]:
    path = Path(path) if path else MANIFEST
    where = f"weights manifest {path}"
    data = read_manifest(path, where, "entries")
    entries = []
    for i, raw in enumerate(data["entries"]):
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: entry {i} must be a mapping")
        missing = [k for k in ("name", "files", "weights", "export") if k not in raw]
        if missing:
            raise ConfigError(f"{where}: entry {raw.get('name', i)!r} misses {', '.join(missing)}")
        files = []
        for f in raw["files"]:
            if not isinstance(f, dict) or not {"url", "path"} <= set(f):
                raise ConfigError(f"{where}: entry {raw['name']!r}: each file needs url and path, got {f!r}")
            sha = f.get("sha256")
            if sha is not None and (not isinstance(sha, str) or len(sha) != 64):
                raise ConfigError(f"{where}: entry {raw['name']!r}: sha256 of {f['path']} must be 64 hex digits or null")
            files.append(WeightFile(str(f["url"]), str(f["path"]), sha.lower() if sha else None))
        entries.append(Entry(str(raw["name"]), bool(raw.get("default", False)), str(raw.get("licence", "")),
                             tuple(files), str(raw["weights"]), tuple(str(a) for a in raw["export"])))
    return entries


def list_entries(manifest: Path | None = None) -> list[str]:
    lines = []
    for e in load_manifest(manifest):
        pinned = "pinned" if all(f.sha256 for f in e.files) else "sha256 not pinned yet"
        lines.append(f"{e.name}{'' if e.default else ' (not by default)'}: {len(e.files)} file(s), {pinned}; "
                     f"licence {e.licence}")
        lines += [f"  {f.url} -> {f.path}" for f in e.files]
    return lines


def _read_lock(directory: Path) -> dict[str, str]:
    lock = directory / LOCK_NAME
    if not lock.is_file():
        return {}
    out = {}
    for line in lock.read_text().splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2:
            out[parts[1].strip()] = parts[0]
    return out


def _write_lock(directory: Path, lock: dict[str, str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / LOCK_NAME).write_text("".join(f"{sha}  {path}\n" for path, sha in sorted(lock.items())))


def fetch_models(group: str | None = None, *, only: Sequence[str] | None = None, timeout_s: float = 30.0,
                 store: ModelStore | None = None) -> list[str]:
    """Make the model store's files available (``only`` these names, else those ``group`` needs, else all
    that any set-up needs); returns one line per file saying where it is and where it came from."""
    store = store or ModelStore()
    if group is not None and group not in GROUPS:
        raise ConfigError(f"--for {group}: expected one of {', '.join(GROUPS)}")
    if only:
        names = [store.entry(n).name for n in only]
    else:
        names = [n for n in store.names(group) if group is not None or store.files[n].needed_by]
    lines = []
    for name in names:
        path, origin = store.fetch(name, timeout_s=timeout_s)
        lines.append(f"{name}: {origin} {path} (sha256 ok)")
    return lines


def list_models(store: ModelStore | None = None) -> list[str]:
    store = store or ModelStore()
    lines = [f"cache: {store.cache}", f"mirror: {store.mirror or 'none (set DEPTHSTREAM_MIRROR)'}"]
    for f in store.files.values():
        where = f.url or "no public URL: " + f.produce  # type: ignore[operator]
        lines.append(f"{f.name} ({f.size} bytes, {f.licence}; needed by {', '.join(f.needed_by) or 'nothing by default'}): "
                     f"{where}")
    return lines


def _check(f: WeightFile, dest: Path, lock: dict[str, str], notes: list[str]) -> None:
    got = sha256_of(dest)
    if f.sha256 is not None:
        if got != f.sha256:
            raise ExportError(f"{dest} has sha256 {got}, the manifest pins {f.sha256}: the file is not the one "
                              f"published at {f.url}; delete it and run 'python -m export weights' again")
        return
    known = lock.get(f.path)
    if known is None:
        lock[f.path] = got
        notes.append(f"UNPINNED {f.path}: sha256 {got} (recorded in {LOCK_NAME}; compare it with the one {f.url} "
                     f"shows and pin it in export/weights.yaml)")
    elif known != got:
        raise ExportError(f"{dest} has sha256 {got}, but {LOCK_NAME} recorded {known} when it was first downloaded; "
                          f"delete it and run 'python -m export weights' again")


def fetch_and_export(manifest: Path | None = None, *, only: Sequence[str] | None = None,
                     directory: Path | None = None, timeout_s: float = 30.0,
                     output_dir: Path | None = None) -> list[str]:
    """Download, check and export the default entries (or ``only`` these); returns the report lines."""
    entries = load_manifest(manifest)
    names = [e.name for e in entries]
    if only:
        unknown = [n for n in only if n not in names]
        if unknown:
            raise ConfigError(f"--only {', '.join(unknown)}: not in the manifest (entries: {', '.join(names)})")
        chosen = [e for e in entries if e.name in only]
    else:
        chosen = [e for e in entries if e.default]
    directory = Path(directory) if directory else DEFAULT_DIR
    output_dir = Path(output_dir) if output_dir else PROJECT_ROOT / "models"
    lock = _read_lock(directory)
    lines: list[str] = []
    for entry in chosen:
        for f in entry.files:
            dest = directory / f.path
            if not dest.is_file():
                store_download(f.url, dest, sha256=f.sha256, timeout_s=timeout_s)
                lines.append(f"downloaded {f.url} -> {dest}")
            _check(f, dest, lock, lines)
        _write_lock(directory, lock)
        lines += export_entry(entry, directory, output_dir)
    return lines


def export_entry(entry: Entry, directory: Path, output_dir: Path) -> list[str]:
    """Run the entry's ``python -m export`` command on the downloaded weights."""
    from .cli import build_parser, run_depth, run_detector

    argv = [*entry.export, "--weights", str(directory / entry.weights), "--output",
            str(output_dir / f"{entry.name}.onnx")]
    args = build_parser().parse_args(argv)
    run = run_depth if args.command == "depth" else run_detector
    return [f"{entry.name}: python -m export {' '.join(argv)}"] + run(args)
