"""What a benchmark ran on: CPU, GPU, driver, runtime versions, Jetson power mode, git commit, load.

Every field is filled from the machine itself; what cannot be found is ``None`` (never a guess). The
load average is read before and after a run: other processes busy on the same cores slow every stage,
and a report that hides it cannot be reproduced.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import subprocess
from pathlib import Path

from depthstream.store import PROJECT_ROOT


def _run(cmd: list[str], timeout_s: float = 5.0, cwd: Path | None = None) -> str | None:
    """stdout of ``cmd`` stripped, or None when the tool is missing, fails or hangs."""
    if shutil.which(cmd[0]) is None:
        return None
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, cwd=cwd, check=True)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError):
        return None
    return out.stdout.strip()


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (x86 'model name', ARM 'Hardware'/'Model')."""
    info = Path("/proc/cpuinfo")
    if info.is_file():
        for key in ("model name", "Hardware", "Model"):
            for line in info.read_text(errors="replace").splitlines():
                if line.startswith(key) and ":" in line:
                    return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def virtualised() -> bool | None:
    """True in a virtual machine (the CPU flag 'hypervisor'): its cores may share physical cores with
    other guests, so its timings vary more than bare metal's. None where /proc/cpuinfo is missing."""
    info = Path("/proc/cpuinfo")
    if not info.is_file():
        return None
    return any(line.startswith("flags") and " hypervisor" in line for line in info.read_text(errors="replace").splitlines())


def memory_gib() -> float | None:
    info = Path("/proc/meminfo")
    if not info.is_file():
        return None
    for line in info.read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 2**20, 1)
    return None


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask; a container may get fewer than the host has)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def gpus() -> list[dict[str, str]]:
    """One entry per NVIDIA GPU nvidia-smi lists (name, driver, memory); [] without one."""
    out = _run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"])
    if not out:
        return []
    rows = []
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3:
            rows.append({"name": parts[0], "driver": parts[1], "memory": parts[2]})
    return rows


def jetson() -> dict[str, str] | None:
    """L4T release and the nvpmodel power mode on a Jetson board, None elsewhere."""
    release = Path("/etc/nv_tegra_release")
    if not release.is_file():
        return None
    return {
        "l4t": release.read_text(errors="replace").splitlines()[0].strip(),
        "power_mode": _run(["nvpmodel", "-q"]) or "unknown (nvpmodel not found)",
    }


def git_commit() -> dict[str, object]:
    """HEAD of the product's repository and whether tracked files differ from it."""
    head = _run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT)
    status = _run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT)
    return {"commit": head, "dirty": bool(status) if status is not None else None}


def ort_info() -> dict[str, object]:
    import onnxruntime as ort

    return {"version": ort.__version__, "available_providers": list(ort.get_available_providers())}


def loadavg() -> list[float] | None:
    """1-, 5- and 15-minute load averages (runnable processes; compare with the core count)."""
    if not hasattr(os, "getloadavg"):
        return None
    return [round(x, 2) for x in os.getloadavg()]


def _first_line(path: str) -> str | None:
    try:
        with open(path, "rb") as f:  # a plain read releases the GIL while the kernel fills it
            return f.readline().decode()
    except OSError:
        return None


def machine_busy_s() -> float | None:
    """CPU seconds every process on this machine has used since boot (/proc/stat: user, nice, system,
    irq, softirq, steal), None where there is no /proc/stat. Its growth during a run minus the run's own
    CPU time is what other processes took from the same cores."""
    line = _first_line("/proc/stat")
    fields = line.split() if line else []
    if len(fields) < 9 or fields[0] != "cpu":
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def process_cpu_s() -> float:
    """CPU seconds this process (every thread) has used: /proc/self/stat's utime + stime, which the
    kernel reads while the GIL is released; ``os.times()`` where there is no /proc."""
    line = _first_line("/proc/self/stat")
    if line:
        fields = line.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    t = os.times()
    return t.user + t.system


def thread_cpu_s() -> dict[str, float]:
    """CPU seconds of each live thread of this process, by name: Python's thread name where the thread is one of
    Python's (``stream-detect``, ``MainThread``), else the kernel's (ONNX Runtime's, FFmpeg's, libx264's own
    threads), those summed per name. From /proc/<pid>/task (file reads release the GIL); {} without /proc."""
    import threading

    names = {t.native_id: t.name for t in threading.enumerate()}
    task = Path(f"/proc/{os.getpid()}/task")
    if not task.is_dir():
        return {}
    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in task.iterdir():
        line = _first_line(str(entry / "stat"))
        if not line:
            continue  # the thread ended meanwhile
        head, _, rest = line.rpartition(")")
        fields = rest.split()
        name = names.get(int(entry.name)) or f"native {head.partition('(')[2]}"
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def collect() -> dict[str, object]:
    """The environment block of every benchmark report."""
    import cv2
    import numpy

    return {
        "cpu": {"model": cpu_model(), "logical_cores": os.cpu_count(), "usable_cores": usable_cores(),
                "memory_gib": memory_gib(), "virtual_machine": virtualised()},
        "gpu": gpus() or None,
        "jetson": jetson(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "onnxruntime": ort_info(),
        "tensorrt": _version("tensorrt"),
        "pycuda": _version("pycuda"),
        "versions": {"numpy": numpy.__version__, "opencv": cv2.__version__, "av": _version("av")},
        "git": git_commit(),
    }
