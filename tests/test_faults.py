"""Nothing lost, nothing wrong under faults (issue 11), through the real CLI in real processes: a second run on the
same outputs, a full disk, SIGKILL, signals at any moment of a run (start-up included) and pressed repeatedly, a
video cut short. Outputs refused because they are an input: the bad-input catalogue (tests/test_bad_input.py)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import ROOT
from media import decodable_frames, demo_faststart_copy, mp4_facts

pytestmark = pytest.mark.slow

DEMO_FPS = 10  # the bundled clip: 150 frames at 10 fps


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "stream", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def wait_for_lines(path: Path, n: int, proc: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        if path.exists() and len(path.read_text().splitlines()) >= n:
            return
        time.sleep(0.02)
    raise AssertionError(f"{path} did not reach {n} lines (process ended with {proc.poll()})")


# -- a second writer -----------------------------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_a_second_run_on_the_same_outputs_is_refused_while_the_first_one_writes(tmp_path):
    mp4, jsonl = tmp_path / "shared.mp4", tmp_path / "shared.jsonl"
    first = start("--source", "demo", "--output", str(mp4), "--jsonl", str(jsonl), "--quiet")
    wait_for_lines(jsonl, 5, first)
    second = subprocess.run([sys.executable, "-m", "stream", "--source", "demo", "--output", str(tmp_path / "other.mp4"),
                             "--jsonl", str(jsonl), "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert second.returncode == 1, second.stderr
    assert re.fullmatch(rf"error: cannot write the JSONL to {re.escape(str(jsonl))}: another run of python -m stream "
                        rf"\(pid {first.pid}, started \d\d:\d\d:\d\d\) is writing it; wait for it to end or choose "
                        r"another path\n", second.stderr), second.stderr
    assert not (tmp_path / "other.mp4").exists()  # refused before anything was written
    assert len(lines(jsonl)) == 150 and mp4_facts(mp4).frames == 150  # the first run's outputs are whole
    # the lock went with the run that held it: the same outputs can be written again at once
    again = subprocess.run([sys.executable, "-m", "stream", "--source", "demo", "--max-frames", "3", "--output", str(mp4),
                            "--jsonl", str(jsonl), "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert len(lines(jsonl)) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared.jsonl", "shared.mp4"]  # no lock file left behind


# -- a full disk ---------------------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """An 800 KiB file system: the demo's outputs (about 1.9 MB) fill it mid-run, several MP4 fragments in."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=800k", "tmpfs", str(disk)], check=True)
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


@pytest.mark.timeout(180)
def test_a_full_disk_gives_one_error_line_exit_1_and_a_playable_mp4_of_what_fit(small_disk):
    mp4, jsonl = small_disk / "out.mp4", small_disk / "out.jsonl"
    r = subprocess.run([sys.executable, "-m", "stream", "--source", "demo", "--output", str(mp4), "--jsonl", str(jsonl),
                        "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=150)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.splitlines()) == 1, r.stderr
    assert re.fullmatch(r"error: writing .* failed: No space left on device; the disk holding .* is full: free space "
                        r"there or write the outputs elsewhere \(the MP4 and the JSONL keep the frames written before\)\n",
                        r.stderr), r.stderr
    facts = mp4_facts(mp4)
    records = lines(jsonl)  # every line is whole JSON (a line cut short by the full disk is taken back)
    assert facts.codec == "h264" and facts.frames >= 20
    assert len(records) - DEMO_FPS * 1.2 <= facts.frames <= len(records)  # all but about the last second of the JSONL


@pytest.mark.timeout(120)
def test_a_disk_already_full_gives_one_error_line_before_anything_runs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    disk = tmp_path / "full"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4k,nr_inodes=2", "tmpfs", str(disk)], check=True)
    try:
        (disk / "filler").write_bytes(b"x" * 4096)  # the last inode and every block
        r = subprocess.run([sys.executable, "-m", "stream", "--source", "demo", "--output", str(disk / "out.mp4"),
                            "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=100)
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]
    finally:
        subprocess.run(["umount", str(disk)], check=True)
    assert r.returncode == 1
    assert re.fullmatch(r"error: cannot write the MP4 to .*/out.mp4: creating its lock file .out.mp4.lock failed \(No "
                        r"space left on device\); the disk holding .*/out.mp4 is full: free space there or write the "
                        r"outputs elsewhere\n", r.stderr), r.stderr


# -- SIGKILL (or power loss) ---------------------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_sigkill_leaves_a_playable_mp4_with_all_but_about_the_last_second(tmp_path):
    mp4, jsonl = tmp_path / "killed.mp4", tmp_path / "killed.jsonl"
    proc = start("--source", "demo", "--output", str(mp4), "--jsonl", str(jsonl), "--quiet")
    wait_for_lines(jsonl, 60, proc)
    proc.kill()
    proc.communicate(timeout=30)
    written = len(lines(jsonl))
    facts = mp4_facts(mp4)
    assert facts.codec == "h264"
    assert written - DEMO_FPS * 1.2 <= facts.frames <= written, (facts.frames, written)
    assert facts.times_s[:3] == pytest.approx([0.0, 0.1, 0.2])
    # a later run may write the same outputs (the lock died with the process)
    r = subprocess.run([sys.executable, "-m", "stream", "--source", "demo", "--max-frames", "2", "--output", str(mp4),
                        "--jsonl", str(jsonl), "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


# -- signals -------------------------------------------------------------------------------------------------


def _check_interrupted(proc: subprocess.Popen, err: str, signum: int, mp4: Path, jsonl: Path) -> None:
    code = {signal.SIGINT: 130, signal.SIGTERM: 143}[signum]
    word = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated (SIGTERM)"}[signum]
    assert proc.returncode == code, err
    assert "Traceback" not in err and "error:" not in err, err
    assert err.strip().splitlines()[-1].startswith(word), err
    written = len(lines(jsonl))
    frames = mp4_facts(mp4).frames if mp4.exists() else 0
    assert frames == written, (frames, written, err)  # the MP4 and the JSONL hold the same frames


@pytest.mark.timeout(180)
def test_ctrl_c_pressed_three_times_still_leaves_an_mp4_and_jsonl_of_the_same_frames(tmp_path):
    for attempt in range(3):
        mp4, jsonl = tmp_path / f"cc{attempt}.mp4", tmp_path / f"cc{attempt}.jsonl"
        proc = start("--source", "demo", "--output", str(mp4), "--jsonl", str(jsonl))
        wait_for_lines(jsonl, 10 + 10 * attempt, proc)
        for _ in range(3):
            proc.send_signal(signal.SIGINT)
            time.sleep(0.03)
        _, err = proc.communicate(timeout=60)
        _check_interrupted(proc, err, signal.SIGINT, mp4, jsonl)
        assert 10 <= len(lines(jsonl)) < 150


def wait_for_handler(proc: subprocess.Popen, timeout_s: float = 30) -> float:
    """Wait until the process catches SIGTERM (the kernel's SigCgt mask): ``python -m stream`` installs its handler
    as its first statement, after Python's own start-up. Returns how long that took."""
    t0 = time.monotonic()
    bit = 1 << (signal.SIGTERM - 1)
    while time.monotonic() - t0 < timeout_s and proc.poll() is None:
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
        except FileNotFoundError:
            break
        caught = int(re.search(r"^SigCgt:\s*([0-9a-f]+)", status, re.M).group(1), 16)
        if caught & bit:
            return time.monotonic() - t0
        time.sleep(0.002)
    raise AssertionError("python -m stream never installed its signal handler")


# Moments after the handler is in place: the CLI's imports, the config, the source, the models, the first frames.
MOMENTS_S = (0.0, 0.03, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.3)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_at_any_moment_of_start_up_exits_130_or_143_without_a_traceback(tmp_path, signum):
    def one(i_delay):
        i, delay = i_delay
        mp4, jsonl = tmp_path / f"s{i}.mp4", tmp_path / f"s{i}.jsonl"
        proc = start("--source", "demo", "--output", str(mp4), "--jsonl", str(jsonl))
        wait_for_handler(proc)
        time.sleep(delay)
        proc.send_signal(signum)
        if i % 2:  # pressed again: a second signal while the first one is being handled
            time.sleep(0.02)
            proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
        return proc, err, mp4, jsonl

    with ThreadPoolExecutor(max_workers=2) as pool:
        for proc, err, mp4, jsonl in pool.map(one, enumerate(MOMENTS_S)):
            _check_interrupted(proc, err, signum, mp4, jsonl)


# -- a video cut short ---------------------------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_every_frame_decoded_from_a_video_cut_short_is_written(tmp_path):
    full = demo_faststart_copy(tmp_path / "full.mp4")
    cut = tmp_path / "cut.mp4"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    decodable = decodable_frames(cut)
    assert 30 < decodable < 150
    mp4, jsonl = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    r = subprocess.run([sys.executable, "-m", "stream", "--source", str(cut), "--output", str(mp4), "--jsonl", str(jsonl),
                        "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=150)
    assert r.returncode == 1
    assert re.fullmatch(rf"error: decoding .*/cut.mp4 failed at frame {decodable}: .* \(the outputs hold the "
                        rf"{decodable} frames before it\)\n", r.stderr), r.stderr
    assert [rec["index"] for rec in lines(jsonl)] == list(range(decodable))
    assert mp4_facts(mp4).frames == decodable
