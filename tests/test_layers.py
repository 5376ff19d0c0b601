"""The import rules in .importlinter, checked with import-linter: depthstream <- engines <- stream <- commands
(export, bench), no import circle inside a package, and the track stage and the browser view importing nothing of the
run that composes them. A forbidden import fails the suite (and so CI)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

PACKAGES = ("depthstream", "engines", "stream", "export", "bench")
LINT = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True))"


def lint(folder: Path) -> subprocess.CompletedProcess:
    """import-linter on the packages in ``folder`` with the project's contract file (nothing is imported:
    it reads the source)."""
    return subprocess.run([sys.executable, "-c", LINT], cwd=folder, capture_output=True, text=True, timeout=120)


@pytest.mark.timeout(120)
def test_imports_follow_the_layers_and_form_no_circles():
    r = lint(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Contracts: 4 kept, 0 broken." in r.stdout


def _copy(tmp_path: Path) -> Path:
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    return tmp_path


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("module", "line", "expected"), [
    ("engines/base.py", "import stream.overlay", "engines is not allowed to import stream"),
    ("depthstream/types.py", "from engines.base import Engine", "depthstream is not allowed to import engines"),
    ("stream/mask.py", "import export.common", "stream is not allowed to import export"),
    ("engines/backends.py", "from . import ort", "No cycles are allowed in engines"),
    ("stream/track/events.py", "import stream.pipeline", "stream.track is not allowed to import stream.pipeline"),
    ("stream/web/state.py", "import stream.app", "stream.web is not allowed to import stream.app"),
])
def test_a_forbidden_import_breaks_the_contract(tmp_path, module, line, expected):
    copy = _copy(tmp_path)
    with open(copy / module, "a", encoding="utf-8") as f:
        f.write(f"\n{line}\n")
    r = lint(copy)
    assert r.returncode == 1 and expected in r.stdout, r.stdout + r.stderr
