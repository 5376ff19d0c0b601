"""``python -m bench size-prior``: how far the size priors can be trusted, measured on real frames.

Three parts, each a table in the report (:mod:`bench.sizeprior_report`) and a panel of the plot:

1. **agreement** -- on the bundled clip, every box's size-prior distance against the ground plane's (the clip's
   published calibration, ``bottom`` statistic), per class: the median absolute relative difference and the
   median signed one (the bias), for the reference boxes, for every box that got a distance, and for the boxes
   whose height is shortened (the guards' ``bound``: guarded, and with the height prior alone); once with the
   clip's camera profile and once with the assumed field of view (what a source without a profile gets).
2. **autoscale** -- depth sources whose metres are deliberately rescaled run through the product's
   :class:`~stream.depth.scaled.ScaledNetworkDepth` and :class:`~stream.depth.sizing.SizeStage`: the ground
   plane's metres / 3 (a metric output; the fit must find 3) and 1 / (3 x metres) (an inverse-depth output, fitted
   with a shift; the fit must find 3 and 0), and FastDepth-224's metres x 1, x 3 and inverted. Per source: the
   final scale and spread, its error against the known scale (for FastDepth, against its own x 1 fit), the frames
   until the fit is calibrated and until it stays within 5 % of its final value, and the persons' median
   absolute relative difference from the ground plane before and after scaling.
3. **crosscheck** -- the verdict on the clip for FastDepth (indoor network, street scene) and the ground plane,
   and for FastDepth on single photos (indoor, street, a room without people).

Detections: YOLOX-Nano through the model store, ``detect.conf`` 0.3. Everything else is the product's defaults
(``config.yaml``) unless ``--set`` says otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np

from depthstream.coco import COCO_CLASSES
from depthstream.schema.camera import load_profile
from depthstream.schema.card import load_card
from depthstream.schema.config import BUNDLED_DEPTH_CARD, Config, DetectConfig
from depthstream.store import locate
from depthstream.types import DepthMap, Frame
from stream.boxdepth import assign_box_depth
from stream.depth import GroundPlaneDepth, OnnxDepth
from stream.depth.geometry import place
from stream.depth.scaled import ScaledNetworkDepth
from stream.depth.priors import prior_for
from stream.depth.sizeprior import SizePriorRanger, height_distance
from stream.depth.sizing import SizeStage
from stream.detect import YoloxDetector

DEMO = Path(__file__).resolve().parent.parent / "data" / "vtest_pets2009_150f.mp4"
DEMO_PROFILE = DEMO.parent / "vtest_pets2009.camera.yaml"
PHOTOS = {  # name -> what it shows (the store's names; the basketball photo is committed in tests/data)
    "basketball2.png": "indoor: two people in an office",
    "coco_val2017_000000000139.jpg": "indoor: a living room, one person",
    "coco_val2017_000000000632.jpg": "indoor: a bedroom, nobody",
    "coco_val2017_000000003934.jpg": "indoor: people standing, a child, a couch",
    "coco_val2017_000000001532.jpg": "street: cars at 7-30 m",
    "dog.jpg": "outdoor: a bicycle, a car, a truck",
}
CONVERGED = 0.05  # a fit has converged once it stays within 5 % of its final value


class RescaledOutput:
    """A depth source's metres deliberately rescaled, shaped like a network for :class:`ScaledNetworkDepth`:
    ``output = factor * metres`` (a metric output) or ``1 / (factor * metres)`` (an inverse-depth output with no
    calibration). ``current`` is the frame's metres, set before each call."""

    def __init__(self, name: str, factor: float, inverse: bool) -> None:
        self.factor, self.inverse = factor, inverse
        self.card = SimpleNamespace(relative=inverse, calibration=None, kind="relative-inverse" if inverse else "metric")
        self.source, self.kind, self.engine = name, "metric", None
        self.current: np.ndarray | None = None

    def open(self) -> None:
        """Nothing to load: the metres come from the source it rescales."""

    def close(self) -> None:
        """Nothing to free."""

    def raw_output(self, frame: Frame):
        """The rescaled metres, already at the frame's size (placed as a stretch onto itself)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            y = self.factor * self.current
            out = (1.0 / y if self.inverse else y).astype(np.float32)
        return out, place(out.shape, out.shape, "stretch")

    def to_metres(self, raw: np.ndarray) -> np.ndarray:
        out = np.array(raw, np.float32)
        with np.errstate(invalid="ignore"):
            out[~(out > 0)] = np.nan
        return out


@dataclass
class Variant:
    """One rescaled source in the autoscale part; ``truth``: the scale the fit must find (None: unknown)."""

    name: str
    base: str  # "ground-plane" or "fastdepth"
    factor: float
    inverse: bool
    mode: str
    truth: float | None
    stat: str
    fits: list[dict] = field(default_factory=list)
    reference_outputs: list[float] = field(default_factory=list)
    errors_before: list[float] = field(default_factory=list)
    errors_after: list[float] = field(default_factory=list)
    verdict: dict | None = None


def _variants() -> list[Variant]:
    return [
        Variant("ground plane / 3", "ground-plane", 1 / 3, False, "always", 3.0, "bottom"),
        Variant("ground plane, inverse 1/(3 m)", "ground-plane", 3.0, True, "auto", 3.0, "bottom"),
        Variant("fastdepth x 1", "fastdepth", 1.0, False, "auto", None, "center_mean"),
        Variant("fastdepth x 3", "fastdepth", 3.0, False, "always", None, "center_mean"),
        Variant("fastdepth, inverse 1/(3 m)", "fastdepth", 3.0, True, "auto", None, "center_mean"),
    ]


def _demo_frames(limit: int):
    import av

    with av.open(str(DEMO)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i >= limit:
                return
            yield i, f.to_ndarray(format="bgr24")


def _stage(cfg: Config, mode: str, network, names, profile, stat: str) -> tuple[ScaledNetworkDepth, SizeStage]:
    import dataclasses

    depth_cfg = dataclasses.replace(cfg.depth, autoscale=dataclasses.replace(cfg.depth.autoscale, mode=mode))
    wrapped = ScaledNetworkDepth(network)
    return wrapped, SizeStage(depth_cfg, wrapped, names, profile=profile, box_stat=stat, roi=cfg.depth.roi)


def _rel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ok = np.isfinite(a) & np.isfinite(b) & (b > 0)
    return (a[ok] - b[ok]) / b[ok]


def bench_size_prior(cfg: Config, frames: int = 150, photos: bool = True) -> dict:
    """Every part's results (module docstring) as plain JSON values."""
    profile = load_profile(DEMO_PROFILE)
    names = COCO_CLASSES
    rangers = {"profile": SizePriorRanger(cfg.depth.size_prior, names, profile),
               "assumed": SizePriorRanger(cfg.depth.size_prior, names, None)}
    ground = GroundPlaneDepth(profile, cfg.depth.ground_max_m)
    agreement: dict[str, list] = {k: [] for k in rangers}
    variants = _variants()
    stages = {}
    for v in variants:
        net = RescaledOutput(v.name, v.factor, v.inverse)
        stages[v.name] = (net, *_stage(cfg, v.mode, net, names, profile, v.stat))
    gp_stage = SizeStage(cfg.depth, ground, names, profile=profile, box_stat="bottom", roi=cfg.depth.roi)
    detect = DetectConfig(conf=0.3)
    with YoloxDetector.from_path(locate("yolox_nano.onnx"), detect) as det, \
            OnnxDepth(load_card(BUNDLED_DEPTH_CARD)) as fast:
        for i, image in _demo_frames(frames):
            frame = Frame(image, i, None, 0, "demo")
            dets, _ = det(image)
            gp_map = ground(frame)
            gp_m = assign_box_depth(dets, gp_map, "bottom").depth_m.astype(float)
            for key, ranger in rangers.items():
                r = ranger(dets, frame.width, frame.height)
                alone = [_height_alone(names[c], box, r.geometry) for c, box in zip(dets.class_id, dets.xyxy)]
                agreement[key] += [(names[c], bool(ref), float(d), float(g), str(b), h) for c, ref, d, g, b, h in
                                   zip(dets.class_id, r.reference, r.distance_m, gp_m, r.basis, alone)]
            gp_stage(frame, gp_map, dets)
            fd_map = fast(frame).metres
            for v in variants:
                net, wrapped, stage = stages[v.name]
                net.current = gp_map.metres if v.base == "ground-plane" else fd_map
                dm, boxed = stage(frame, wrapped(frame), dets)
                scaling, _, ranges = stage.last
                fit = scaling.fit
                v.fits.append({"fit": fit, "scale": fit.scale, "shift": fit.shift, "spread": fit.spread,
                               "calibrated": fit.calibrated, "applied": scaling.applied})
                output = DepthMap(dm.output, "output", "metric")
                v.reference_outputs += list(assign_box_depth(dets, output, v.stat).depth_m[ranges.reference])
                persons = dets.class_id == names.index("person")
                before = assign_box_depth(dets, DepthMap(net.to_metres(net.raw_output(frame)[0]), "x", "metric"),
                                          v.stat).depth_m if not v.inverse else np.full(len(dets), np.nan)
                v.errors_before += list(np.abs(_rel(before[persons].astype(float), gp_m[persons])))
                v.errors_after += list(np.abs(_rel(boxed.depth_m[persons].astype(float), gp_m[persons])))
                if stage.last[1] is not None:
                    v.verdict = stage.last[1].details()
        photo_rows = _photos(cfg, fast, det, names) if photos else []
    fd1 = next(v for v in variants if v.name == "fastdepth x 1")
    return {
        "settings": {"frames": frames, "detect_conf": detect.conf, "size_prior": _asdict(cfg.depth.size_prior),
                     "autoscale": _asdict(cfg.depth.autoscale), "crosscheck": _asdict(cfg.depth.crosscheck),
                     "profile": str(DEMO_PROFILE.name)},
        "agreement": {key: _agreement(rows) for key, rows in agreement.items()},
        "agreement_points": [[c, ref, d, g] for c, ref, d, g, _, _ in agreement["profile"]
                             if math.isfinite(d) and math.isfinite(g)],
        "autoscale": [_autoscale_row(v, fd1) for v in variants],
        "scale_curves": {v.name: _probe_curve(v, fd1) for v in variants},
        "crosscheck": [{"scene": "bundled clip (street, camera 7 m up)", "source": "fastdepth-224-nyu", **fd1.verdict},
                       {"scene": "bundled clip (street, camera 7 m up)", "source": "ground-plane",
                        **gp_stage.last[1].details()}] + photo_rows,
    }


def _asdict(section) -> dict:
    import dataclasses

    return dataclasses.asdict(section)


def _height_alone(cls: str, box: np.ndarray, geo) -> float:
    """The distance the class's height prior alone gives a box, whatever its shape (what the guards replace)."""
    prior = prior_for(cls)
    if prior is None or prior.height is None:
        return math.nan
    return height_distance(prior.height.metres, float(box[1]), float(box[3]), geo)


def _agreement(rows: list) -> list[dict]:
    """Per class: the reference boxes, every box with a distance, and the boxes whose height is shortened (basis
    ``bound``) -- with the guarded distance, and with the height alone."""
    out = []
    groups = (("references", lambda r: r[1], 2), ("every distance", lambda r: True, 2),
              ("shortened boxes, guarded (bound)", lambda r: r[4] == "bound", 2),
              ("shortened boxes, height alone", lambda r: r[4] == "bound", 5))
    for cls in sorted({r[0] for r in rows}):
        for label, keep, column in groups:
            sel = [r for r in rows if r[0] == cls and keep(r)]
            d = np.array([r[column] for r in sel], float)
            g = np.array([r[3] for r in sel], float)
            rel = _rel(d, g)
            if rel.size:
                out.append({"class": cls, "boxes": label, "n": int(rel.size),
                            "median_abs_rel": float(np.median(np.abs(rel))), "median_rel": float(np.median(rel)),
                            "p90_abs_rel": float(np.percentile(np.abs(rel), 90))})
    return out


def _probe(v: Variant) -> float:
    """The output value at which fits are compared: the median output at the run's reference boxes."""
    values = np.asarray(v.reference_outputs, float)
    return float(np.nanmedian(values)) if np.isfinite(values).any() else math.nan


def _metres_at(fit, y: float) -> float:
    return float(fit.apply(np.array([y], np.float32))[0])


def _target_metres(v: Variant, reference: Variant, y: float) -> tuple[float | None, str]:
    """The metres a perfect fit gives at output ``y``, and what they are known from. Ground plane: its metres
    were turned into the output by a known factor. FastDepth x k: the x 1 fit's metres at the same FastDepth
    metres (a fit that follows the output's scale exactly). FastDepth inverse: unknown."""
    if v.truth is not None:
        return (1.0 / (v.factor * y) if v.inverse else y / v.factor), "known scale"
    if not v.inverse and v is not reference:
        return _metres_at(reference.fits[-1]["fit"], y / v.factor), "fastdepth x 1's fit"
    return None, "-"


def _probe_curve(v: Variant, reference: Variant) -> list[float | None]:
    """Per frame, the metres the fit gives at the probe output over the target's (or the final fit's)."""
    y = _probe(v)
    target, _ = _target_metres(v, reference, y)
    final = _metres_at(v.fits[-1]["fit"], y)
    ref = target if target is not None else final
    return [_metres_at(f["fit"], y) / ref if f["calibrated"] else None for f in v.fits]


def _autoscale_row(v: Variant, reference: Variant) -> dict:
    """The final fit; its error in metres at the probe output; when it was calibrated and converged."""
    fits = v.fits
    final = fits[-1]
    y = _probe(v)
    at = [_metres_at(f["fit"], y) if f["calibrated"] else math.nan for f in fits]
    target, against = _target_metres(v, reference, y)
    error = at[-1] / target - 1.0 if target is not None and math.isfinite(at[-1]) else None
    calibrated_at = next((i + 1 for i, f in enumerate(fits) if f["calibrated"]), None)
    off = [i for i, m in enumerate(at) if not (math.isfinite(m) and abs(m / at[-1] - 1.0) <= CONVERGED)]
    converged_at = (off[-1] + 2 if off else 1) if math.isfinite(at[-1]) else None
    return {"source": v.name, "output": "inverse depth" if v.inverse else "metres x factor", "mode": v.mode,
            "scale": _num(final["scale"]), "shift": _num(final["shift"]), "spread": _num(final["spread"]),
            "calibrated": final["calibrated"], "applied": final["applied"], "probe_output": _num(y),
            "probe_metres": _num(at[-1]), "target_metres": _num(target), "against": against, "error": _num(error),
            "frames_to_calibrated": calibrated_at, "frames_to_converged": converged_at,
            "person_median_abs_rel_before": _med(v.errors_before), "person_median_abs_rel_after": _med(v.errors_after)}


def _num(x) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def _med(values: list[float]) -> float | None:
    return float(np.median(values)) if values else None


def _photos(cfg: Config, fast: OnnxDepth, det: YoloxDetector, names) -> list[dict]:
    rows = []
    for name, scene in PHOTOS.items():
        path = Path(__file__).resolve().parent.parent / "tests" / "data" / name if name.endswith(".png") else locate(name)
        image = cv2.imread(str(path))
        frame = Frame(image, 0, None, 0, name)
        dets, _ = det(image)
        metres = fast(frame).metres
        out = {"scene": f"{name} ({scene})", "source": "fastdepth-224-nyu"}
        for label, inverse in (("metric", False), ("inverse", True)):
            net = RescaledOutput("fastdepth-224-nyu", 3.0 if inverse else 1.0, inverse)
            net.current = metres
            wrapped, stage = _stage(cfg, "auto", net, names, None, "center_mean")
            stage(frame, wrapped(frame), dets)
            scaling, verdict, ranges = stage.last
            if label == "metric":
                out.update(verdict.details())
                out["focal"] = ranges.geometry.describe()
            else:
                out["inverse_scale_state"] = "calibrated" if scaling.fit.calibrated else "uncalibrated"
        rows.append(out)
    return rows
