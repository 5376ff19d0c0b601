"""Commented YAML for camera profiles: every key written with a comment saying what it means and its unit.

PyYAML writes no comments, so :func:`profile_to_yaml` emits the (small, fixed-shape) document itself;
values go through ``yaml.safe_dump`` so strings are quoted when they must be. Comments are written, not
kept: a profile loaded and saved again gets these comments back, not ones a person added.
"""

from __future__ import annotations

from typing import Any

import yaml

COMMENTS = {
    "version": "profile format",
    "name": "this camera; a profile belongs to one camera and is never applied to another source",
    "scene": "indoor | outdoor | driving: what the camera films (a depth network trained for another is flagged)",
    "intrinsics": "pinhole intrinsics in pixels AT width x height; scaled to each frame's real size",
    "intrinsics.width": "the resolution the numbers below refer to",
    "intrinsics.height": "",
    "intrinsics.fx": "horizontal focal length, pixels",
    "intrinsics.fy": "vertical focal length, pixels",
    "intrinsics.hfov_deg": "horizontal field of view, degrees (instead of fx/fy; square pixels)",
    "intrinsics.vfov_deg": "vertical field of view, degrees",
    "intrinsics.dfov_deg": "diagonal field of view, degrees",
    "intrinsics.cx": "principal point, pixels (null = image centre); OpenCV's convention: top-left pixel centre = (0, 0)",
    "intrinsics.cy": "",
    "intrinsics.distortion": "OpenCV order [k1, k2, p1, p2, k3, ...]; null = none",
    "mounting": "a fixed camera above flat ground (ground-plane depth)",
    "mounting.height_m": "camera height above the ground, metres",
    "mounting.pitch_deg": "optical axis below the horizontal, degrees (positive = looking down)",
    "mounting.roll_deg": "rotation about the optical axis, degrees",
    "depth_calibrations": "per depth model: metres = scale*y + shift (1/metres for relative-inverse)",
    "source": "how this part was obtained",
    "source.method": "chessboard | datasheet | known-distance | rgbd | published | assumed | manual",
    "model": "the depth model card's name",
    "output": "metric | relative-depth | relative-inverse: what the model's output y is",
    "fit": "scale | scale-shift",
    "samples": "points/boxes (known-distance) or pixels (rgbd) the fit used",
    "residual_abs_rel": "mean |fitted - true| / true over the samples after the fit",
    "range_m": "nearest and farthest true distance in the samples: outside it the fit is an extrapolation",
}
ORDER = ("version", "name", "description", "scene", "intrinsics", "mounting", "depth_calibrations")


def _scalar(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def _comment(path: str) -> str:
    text = COMMENTS.get(path) or COMMENTS.get(path.rsplit(".", 1)[-1]) or COMMENTS.get(
        ".".join(path.split(".")[-2:]), "")
    return f"  # {text}" if text else ""


def _mapping(data: dict, path: str, indent: str, first_prefix: str = "") -> list[str]:
    lines = []
    for i, (key, value) in enumerate(data.items()):
        lead = first_prefix if i == 0 and first_prefix else indent
        sub = f"{path}.{key}" if path else key
        if isinstance(value, dict):
            lines.append(f"{lead}{key}:{_comment(sub)}")
            lines += _mapping(value, sub, indent + "  ")
        elif isinstance(value, (list, tuple)) and value and isinstance(value[0], dict):
            lines.append(f"{lead}{key}:{_comment(sub)}")
            for item in value:
                lines += _mapping(item, "", indent + "    ", first_prefix=indent + "  - ")
        else:
            lines.append(f"{lead}{key}: {_scalar(value)}{_comment(sub)}")
    return lines


def profile_to_yaml(data: dict, header: str = "") -> str:
    """``data`` (a profile as ``dataclasses.asdict`` gives it) as YAML with a comment on each key."""
    ordered = {k: data[k] for k in ORDER if k in data}
    ordered.update({k: v for k, v in data.items() if k not in ordered})
    lines = ["# depthstream camera profile: one camera's intrinsics, mounting and depth calibrations.",
             "# Checked on load (python -m stream calibrate writes it; see README, 'Camera profiles')."]
    lines += [f"# {line}" if line else "#" for line in header.splitlines()]
    lines += _mapping(ordered, "", "")
    return "\n".join(lines) + "\n"
