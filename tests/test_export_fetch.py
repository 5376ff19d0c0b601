"""``python -m export weights``: the manifest, the one-line offline message (a closed port on 127.0.0.1, nothing else is
contacted), sha256 checks, and a file put in place by hand being checked and exported."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys

import pytest

from conftest import DOG, ROOT
from export.common import ExportError
from export.fetch import LOCK_NAME, fetch_and_export, list_entries, load_manifest
from depthstream.errors import ConfigError, ModelNotFoundError


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the socket is: connections are refused


def _manifest(tmp_path, url: str, sha256: str | None = None, export="[depth, --model, unet, --size, '64', '64']"):
    path = tmp_path / "weights.yaml"
    path.write_text(
        "entries:\n"
        "  - name: unet-test\n"
        "    default: true\n"
        "    licence: test\n"
        "    files:\n"
        f"      - url: {url}\n"
        "        path: unet/unet_nyu.pt\n"
        f"        sha256: {repr(sha256) if sha256 else 'null'}\n"
        "    weights: unet/unet_nyu.pt\n"
        f"    export: {export}\n")
    return path


def test_project_manifest_pins_urls_for_every_family_it_names():
    entries = {e.name: e for e in load_manifest()}
    assert {"depth-anything-v2-small", "depth-anything-v2-metric-indoor", "depth-anything-v2-metric-outdoor",
            "yolo11n", "midas-small"} <= set(entries)
    for e in entries.values():
        assert all(f.url.startswith("https://") for f in e.files)


def test_the_listing_says_which_entries_are_pinned(tmp_path):
    """One entry with every sha256, one with a file left unpinned: the listing tells them apart, word for word."""
    sha = "ab" * 32
    path = tmp_path / "weights.yaml"
    path.write_text(
        "entries:\n"
        "  - {name: full, default: true, licence: MIT, weights: a.pt, export: [depth],\n"
        f"     files: [{{url: 'https://example.org/a.pt', path: a.pt, sha256: '{sha}'}}]}}\n"
        "  - {name: half, licence: GPL, weights: b.pt, export: [depth],\n"
        f"     files: [{{url: 'https://example.org/b.pt', path: b.pt, sha256: '{sha}'}},\n"
        "             {url: 'https://example.org/b.json', path: b.json, sha256: null}]}\n")
    assert list_entries(path) == [
        "full: 1 file(s), pinned; licence MIT",
        "  https://example.org/a.pt -> a.pt",
        "half (not by default): 2 file(s), sha256 not pinned yet; licence GPL",
        "  https://example.org/b.pt -> b.pt",
        "  https://example.org/b.json -> b.json",
    ]


def test_offline_download_fails_with_one_line_saying_what_to_put_where(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/unet_nyu.pt"
    manifest = _manifest(tmp_path, url)
    with pytest.raises(ModelNotFoundError, match=r"^cannot download http://127\.0\.0\.1:\d+/unet_nyu\.pt \(.*refused.*\); "
                                                 r"download it yourself and put it at .*/dl/unet/unet_nyu\.pt$"):
        fetch_and_export(manifest, directory=tmp_path / "dl", timeout_s=5)
    assert not (tmp_path / "dl" / "unet" / "unet_nyu.pt.part").exists()


def test_cli_offline_is_one_line_and_exit_2(tmp_path):
    manifest = _manifest(tmp_path, f"http://127.0.0.1:{closed_port()}/unet_nyu.pt")
    out = subprocess.run([sys.executable, "-m", "export", "weights", "--manifest", str(manifest), "--dir",
                          str(tmp_path / "dl"), "--timeout", "5"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert len(out.stderr.splitlines()) == 1 and out.stderr.startswith("error: cannot download http://127.0.0.1:")


def _tiny_unet_checkpoint(path):
    torch = pytest.importorskip("torch")
    from export.unet import build_unet

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.save(build_unet(base=2).state_dict(), path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_file_put_in_place_by_hand_is_checked_and_exported(tmp_path):
    sha = _tiny_unet_checkpoint(tmp_path / "dl" / "unet" / "unet_nyu.pt")
    url = f"http://127.0.0.1:{closed_port()}/unet_nyu.pt"  # never contacted: the file is there
    export = f"[depth, --model, unet, --size, '64', '64', --images, '{DOG}']"
    lines = fetch_and_export(_manifest(tmp_path, url, sha, export), directory=tmp_path / "dl",
                             output_dir=tmp_path / "models")
    assert lines[0].startswith("unet-test: python -m export depth --model unet")
    assert (tmp_path / "models" / "unet-test.onnx").is_file() and (tmp_path / "models" / "unet-test.yaml").is_file()
    assert any(line.startswith("parity dog.jpg: max abs diff") for line in lines)


def test_wrong_sha256_and_unpinned_files(tmp_path):
    sha = _tiny_unet_checkpoint(tmp_path / "dl" / "unet" / "unet_nyu.pt")
    url = f"http://127.0.0.1:{closed_port()}/unet_nyu.pt"
    with pytest.raises(ExportError, match=r"unet_nyu.pt has sha256 [0-9a-f]{64}, the manifest pins 0{64}: the file is "
                                          r"not the one published at http://127.0.0.1"):
        fetch_and_export(_manifest(tmp_path, url, "0" * 64), directory=tmp_path / "dl", output_dir=tmp_path / "m")
    export = f"[depth, --model, unet, --size, '64', '64', --images, '{DOG}']"
    lines = fetch_and_export(_manifest(tmp_path, url, None, export), directory=tmp_path / "dl", output_dir=tmp_path / "m")
    assert any(line.startswith(f"UNPINNED unet/unet_nyu.pt: sha256 {sha}") for line in lines)
    assert (tmp_path / "dl" / LOCK_NAME).read_text() == f"{sha}  unet/unet_nyu.pt\n"
    (tmp_path / "dl" / "unet" / "unet_nyu.pt").write_bytes(b"replaced")
    with pytest.raises(ExportError, match=rf"but {LOCK_NAME} recorded {sha} when it was first downloaded"):
        fetch_and_export(_manifest(tmp_path, url, None, export), directory=tmp_path / "dl", output_dir=tmp_path / "m")


@pytest.mark.parametrize("text, message", [
    ("entries: 3\n", r"expected a mapping with a list 'entries'"),
    ("entries:\n  - name: x\n", r"entry 'x' misses files, weights, export"),
    ("entries:\n  - {name: x, files: [{url: u}], weights: w, export: [depth]}\n", r"each file needs url and path"),
    ("entries:\n  - {name: x, files: [{url: u, path: p, sha256: abc}], weights: w, export: [depth]}\n",
     r"sha256 of p must be 64 hex digits or null"),
])
def test_manifest_errors(tmp_path, text, message):
    path = tmp_path / "w.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_manifest(path)


def test_only_names_an_entry(tmp_path):
    with pytest.raises(ConfigError, match=r"--only nope: not in the manifest \(entries: unet-test\)"):
        fetch_and_export(_manifest(tmp_path, f"http://127.0.0.1:{closed_port()}/x"), only=["nope"], directory=tmp_path)
