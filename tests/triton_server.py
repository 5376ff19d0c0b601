"""A real Triton Inference Server on 127.0.0.1 for the tests and for trying ``--backend triton://`` by hand.

It runs the ``tritonserver`` binary that the nvidia-pytriton wheel ships (Triton 2.51, Python backend only)
from the server venv that ``make triton-env`` makes with Debian's own Python (``/usr/bin/python3 -m venv
.venv-triton``): the Python backend's stub links the system's ``libpython3.X.so``, and under another build
of the same Python version the models fail to load. Run it with that venv's Python::

    make triton-env
    .venv/bin/python -m engines triton-repo --runtime python --out /tmp/repo
    .venv-triton/bin/python tests/triton_server.py --repo /tmp/repo --grpc-port 8001

It puts the stub for this Python version into a backend folder inside the venv (once), then replaces
itself with ``tritonserver`` (same process id: a signal to it reaches the server), listening on
127.0.0.1 only, gRPC only. ``--check`` only checks that the binary, the libraries and the stub are there
(exit 0, or 3 and one line saying why), so the tests can say why they cannot run.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

MISSING = 3


def _pytriton_dir() -> Path | None:
    spec = importlib.util.find_spec("pytriton")  # located, not imported: the venv holds only what the server needs
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _layout() -> tuple[Path, Path, Path, Path] | str:
    """(tritonserver, its libraries, the stub for this Python, the python backend's folder) or why not."""
    root = _pytriton_dir()
    if root is None:
        return f"nvidia-pytriton is not installed in {sys.prefix}: run make triton-env"
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    parts = (root / "tritonserver" / "bin" / "tritonserver", root.parent / "nvidia_pytriton.libs",
             root / "tritonserver" / "python_backend_stubs" / version / "triton_python_backend_stub",
             root / "tritonserver" / "backends" / "python")
    for path in parts:
        if not path.exists():
            return f"{path} is missing (nvidia-pytriton for Python {version}): run make triton-env"
    return parts  # type: ignore[return-value]


def _backends(python_backend: Path, stub: Path) -> Path:
    """A backend folder with the Python backend and the stub for this interpreter (made once)."""
    folder = Path(sys.prefix) / "triton-backends"
    target = folder / "python"
    if not (target / "triton_python_backend_stub").is_file():
        tmp = folder / ".python.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(python_backend, tmp, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy2(stub, tmp / "triton_python_backend_stub")
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    return folder


def _check(stub: Path, env: dict) -> int:
    """0 when the stub's shared libraries (the system's libpython above all) resolve, else 3 and why."""
    try:
        out = subprocess.run(["ldd", str(stub)], capture_output=True, text=True, env=env, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        sys.stderr.write(f"cannot check the Python backend stub's libraries with ldd: {exc}\n")
        return MISSING
    missing = [line.split()[0] for line in out.stdout.splitlines() if "not found" in line]
    if out.returncode != 0 or missing:
        version = f"{sys.version_info[0]}.{sys.version_info[1]}"
        sys.stderr.write(f"the Python backend stub cannot load {', '.join(missing) or out.stderr.strip()}: "
                         f"apt-get install libpython{version} (Debian's Python {version})\n")
        return MISSING
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", help="the model repository (python -m engines triton-repo --runtime python --out DIR)")
    ap.add_argument("--grpc-port", type=int, default=8001, help="gRPC port on 127.0.0.1 (default 8001)")
    ap.add_argument("--shm-prefix", default="depthstream_triton", help="name prefix of the Python backend's /dev/shm regions")
    ap.add_argument("--check", action="store_true", help="only check that the server can be started here")
    ap.add_argument("server_args", nargs="*", metavar="-- ARG", help="more tritonserver options, after --")
    args = ap.parse_args()
    layout = _layout()
    if isinstance(layout, str):
        sys.stderr.write(layout + "\n")
        return MISSING
    server, libs, stub, python_backend = layout
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (env.get("LD_LIBRARY_PATH"), str(libs)) if p)
    env["PATH"] = os.pathsep.join((str(Path(sys.prefix) / "bin"), env.get("PATH", "")))  # the stub's numpy, onnxruntime
    if args.check:
        return _check(stub, env)
    if not args.repo or not Path(args.repo).is_dir():
        sys.stderr.write(f"--repo {args.repo!r} is not a folder: give the model repository\n")
        return 2
    backends = _backends(python_backend, stub)
    argv = [str(server), "--model-repository", str(Path(args.repo).resolve()), "--backend-directory", str(backends),
            "--grpc-address", "127.0.0.1", "--grpc-port", str(args.grpc_port), "--allow-http", "false",
            "--allow-metrics", "false", "--exit-on-error", "false", "--exit-timeout-secs", "5",
            f"--backend-config=python,shm-region-prefix-name={args.shm_prefix}",
            "--backend-config=python,shm-default-byte-size=4194304", *args.server_args]
    sys.stdout.flush()
    os.execve(str(server), argv, env)
    return 1  # not reached: execve replaces this process


if __name__ == "__main__":
    sys.exit(main())
