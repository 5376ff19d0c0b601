"""``python -m bench tracks`` and ``python -m bench contact-sheet``: how steady a run's per-track distances are,
and pictures to count identity switches by eye.

``tracks`` reads the JSONL of a ``python -m stream`` run (``--jsonl``). For every track it takes each pair of
consecutive frames (frame indices n and n + 1) in which the track's box has a raw distance, and counts the pairs
whose distance changed by more than ``threshold`` (10 %) of the earlier one: with the raw per-frame distance
(``depth_m``, before) and with the track's filtered distance (``depth_filtered_m``, after). It reports the share
over all pairs of all tracks and per track, and lists the run's event records.

``contact-sheet`` draws the boxes of frames of that JSONL on the frames of the same source, each with its track
id in a colour of its own, as a grid of frames per PNG: a person whose number changes between two neighbouring
cells is an identity switch.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from depthstream.errors import ConfigError


@dataclass
class TrackSeries:
    frames: list[int] = field(default_factory=list)
    raw: list[float] = field(default_factory=list)
    filtered: list[float] = field(default_factory=list)
    cls: str = ""


def read_jsonl(path: Path) -> tuple[list[dict], list[dict]]:
    """(frame records, event records) of a run's JSONL."""
    if not path.is_file():
        raise ConfigError(f"JSONL {path} not found: give the --jsonl file of a python -m stream run")
    frames, events = [], []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path} line {n} is not JSON ({exc.msg}); expected the JSONL of python -m stream") from exc
        frames.append(rec)
        events += rec.get("events") or []
    return frames, events


def series_by_track(frames: list[dict]) -> dict[int, TrackSeries]:
    out: dict[int, TrackSeries] = {}
    for rec in frames:
        for det in rec["detections"]:
            tid = det.get("track_id")
            if tid is None:
                continue
            s = out.setdefault(tid, TrackSeries(cls=det.get("class", "")))
            s.frames.append(rec["index"])
            s.raw.append(math.nan if det["depth_m"] is None else det["depth_m"])
            s.filtered.append(math.nan if det.get("depth_filtered_m") is None else det["depth_filtered_m"])
    return out


def jumps(series: dict[int, TrackSeries], threshold: float = 0.10) -> dict:
    """Pairs of consecutive frames per track, and how many changed by more than ``threshold``, raw and filtered."""
    per_track = {}
    total = raw_jumps = filt_jumps = 0
    for tid, s in sorted(series.items()):
        f, r, q = np.array(s.frames), np.array(s.raw), np.array(s.filtered)
        pair = (np.diff(f) == 1) & np.isfinite(r[:-1]) & np.isfinite(r[1:]) & (r[:-1] > 0) & np.isfinite(q[:-1]) & np.isfinite(q[1:])
        n = int(pair.sum())
        if not n:
            continue
        rj = int((np.abs(np.diff(r))[pair] > threshold * r[:-1][pair]).sum())
        qj = int((np.abs(np.diff(q))[pair] > threshold * q[:-1][pair]).sum())
        per_track[tid] = {"class": s.cls, "frames": len(f), "pairs": n, "raw_jumps": rj, "filtered_jumps": qj}
        total, raw_jumps, filt_jumps = total + n, raw_jumps + rj, filt_jumps + qj
    return {"threshold": threshold, "tracks": len(per_track), "pairs": total, "raw_jumps": raw_jumps,
            "filtered_jumps": filt_jumps, "raw_share": raw_jumps / total if total else None,
            "filtered_share": filt_jumps / total if total else None, "per_track": per_track}


def tracks_markdown(path: Path, stats: dict, events: list[dict]) -> str:
    pct = lambda v: "n/a" if v is None else f"{100 * v:.2f} %"  # noqa: E731
    lines = [f"# Track distances: {path}", "",
             f"{stats['tracks']} tracks, {stats['pairs']} pairs of consecutive frames with a distance.",
             f"Changes above {100 * stats['threshold']:g} % between consecutive frames: raw (depth_m) "
             f"{stats['raw_jumps']} = {pct(stats['raw_share'])}; filtered (depth_filtered_m) "
             f"{stats['filtered_jumps']} = {pct(stats['filtered_share'])}.", "",
             "| track | class | frames | pairs | raw > 10 % | filtered > 10 % |", "|---|---|---|---|---|---|"]
    for tid, t in stats["per_track"].items():
        lines.append(f"| {tid} | {t['class']} | {t['frames']} | {t['pairs']} | {t['raw_jumps']} | {t['filtered_jumps']} |")
    lines += ["", f"## Events ({len(events)})", ""]
    if events:
        lines += ["| frame | event | track | class | filtered m | speed m/s | ttc s |", "|---|---|---|---|---|---|---|"]
        for e in events:
            kind = e["event"] + (f" ({e['reason']})" if e.get("reason") else "")
            lines.append(f"| {e['index']} | {kind} | {e['track_id']} | {e['class']} | {e['depth_m']} | {e['speed_mps']} | {e['ttc_s']} |")
    return "\n".join(lines)


def _colour(track_id: int) -> tuple[int, int, int]:
    from stream.overlay import class_colour

    return class_colour(track_id * 7 + 3)


def contact_sheets(source: str, jsonl: Path, out: Path, start: int, count: int, cols: int, rows: int, scale: float,
                   crop: tuple[int, int, int, int] | None = None) -> list[Path]:
    """PNG grids of frames ``start`` .. ``start + count - 1`` with every box's track id; returns the paths.
    ``crop``: (x1, y1, x2, y2) frame pixels to show instead of the whole frame (to look closer at a crowd)."""
    from stream.sources import open_source

    frames, _ = read_jsonl(jsonl)
    by_index = {rec["index"]: rec for rec in frames}
    wanted = range(start, start + count)
    cells: list[np.ndarray] = []
    with open_source(source) as src:
        while True:
            frame = src.read()
            if frame is None or frame.index >= wanted.stop:
                break
            if frame.index in wanted:
                cells.append(_cell(frame.image, frame.index, by_index.get(frame.index), scale, crop))
    if not cells:
        raise ConfigError(f"{source} has no frames {start}..{start + count - 1}")
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    per_sheet = cols * rows
    for k in range(0, len(cells), per_sheet):
        chunk = cells[k:k + per_sheet]
        h, w = chunk[0].shape[:2]
        sheet = np.full((rows * h, cols * w, 3), 255, np.uint8)
        for j, cell in enumerate(chunk):
            y, x = divmod(j, cols)
            sheet[y * h:(y + 1) * h, x * w:(x + 1) * w] = cell
        first = start + k
        path = out / f"sheet_{first:04d}-{first + len(chunk) - 1:04d}.png"
        cv2.imwrite(str(path), sheet)
        paths.append(path)
    return paths


def _cell(image: np.ndarray, index: int, rec: dict | None, scale: float, crop: tuple[int, int, int, int] | None) -> np.ndarray:
    ox, oy = 0, 0
    if crop is not None:
        ox, oy = crop[0], crop[1]
        image = image[crop[1]:crop[3], crop[0]:crop[2]]
    img = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    for det in (rec or {}).get("detections", []):
        bx1, by1, bx2, by2 = det["box"]
        x1, y1, x2, y2 = (int(round(v * scale)) for v in (bx1 - ox, by1 - oy, bx2 - ox, by2 - oy))
        tid = det.get("track_id")
        colour = _colour(tid) if tid is not None else (128, 128, 128)
        cv2.rectangle(img, (x1, y1), (x2, y2), colour, 2)
        text = str(tid) if tid is not None else "-"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.6, 2)
        ty = max(th + 2, y1 - 3)
        cv2.rectangle(img, (x1, ty - th - 2), (x1 + tw + 2, ty + base - 1), colour, cv2.FILLED)
        cv2.putText(img, text, (x1 + 1, ty - 1), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 2, cv2.LINE_AA)
    cv2.rectangle(img, (0, 0), (70, 22), (0, 0, 0), cv2.FILLED)
    cv2.putText(img, f"#{index}", (3, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    cv2.rectangle(img, (0, 0), (img.shape[1] - 1, img.shape[0] - 1), (255, 255, 255), 1)
    return img
