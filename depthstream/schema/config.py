"""The configuration of ``python -m stream``: its schema (every key, type, bound, default and enumeration) and
how it is loaded (the layering itself: :mod:`depthstream.schema.loading`).

Layers, later wins: the project's ``config.yaml`` (every default, documented there; a test keeps it equal
to the defaults below), ``--config FILE`` (only the keys it sets), ``--set key=value`` (dotted keys,
YAML values), then the dedicated CLI flags. Relative paths in a config file are relative to that file's
folder; given on the command line, to the working directory. A section left empty (``band:`` with every
key commented out) keeps its defaults. Every problem is one :class:`~depthstream.errors.ConfigError` line
(see :mod:`depthstream.schema.adapter`).

Components receive these validated, frozen objects and do not check them again.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, Strict, ValidationInfo, field_validator, model_validator
from pydantic.dataclasses import dataclass

from depthstream.coco import COCO_CLASSES
from depthstream.errors import ConfigError
from depthstream.store import DEFAULT_CONFIG, MODELS_DIR

from . import loading
from .adapter import all_keys
from .fields import MAX_TEXT, Allowed, FilePath, Flag, OutputPath, Text, fits_file_system, integer, number

SCHEMA = ConfigDict(extra="forbid")

Seconds = number(gt=0, le=120, noun="seconds")
BackoffSeconds = number(gt=0, le=60, noun="seconds")
BackoffMaxSeconds = number(gt=0, le=300, noun="seconds")
QueueSeconds = number(gt=0, le=5, noun="seconds")
Fraction01 = number(ge=0, le=1)
BoxFraction = number(gt=0, le=1, noun="a fraction")
InsetFraction = number(ge=0.05, le=0.5, noun="a fraction")
MaxFrames = integer(ge=0, le=1_000_000_000, note="0 = the whole source")
Threads = integer(ge=0, le=256, note="0 = every core")
DepthThreads = integer(ge=0, le=256, note="0 = a share of pipeline.threads")
Attempts = integer(ge=0, le=10_000, note="0 = do not reconnect")
QueueSize = integer(ge=1, le=256)
MaxBoxes = integer(ge=1, le=10_000)
Crf = integer(ge=0, le=51, note="lower = better quality")
FarMetres = number(gt=0, le=1_000_000, noun="metres")
BandMetres = number(gt=0, le=10_000, text="a positive number of metres (at most 10000)")
OpenFraction = number(gt=0, lt=1)
Share = number(gt=0, le=1, noun="a fraction")
Gain = number(gt=0, le=1)
Factor = number(ge=1, le=100)
Window = integer(ge=2, le=100)
Accel = number(gt=0, le=100, noun="metres per second squared")
Speed = number(gt=0, le=1000, noun="metres per second")
MarginMetres = number(ge=0, le=1000, noun="metres")
ShortSeconds = number(gt=0, le=60, noun="seconds")
HoldSeconds = number(ge=0, le=60, noun="seconds")
TtcSeconds = number(gt=0, le=600, noun="seconds")
DrainSeconds = number(ge=0, le=600, noun="seconds")
EventQueue = integer(ge=1, le=10000)
Degrees90 = number(gt=-90, lt=90, noun="degrees")
Degrees180 = number(gt=0, lt=180, noun="degrees")
FocalPixels = number(gt=0, le=1_000_000, noun="pixels")
Pixels = number(ge=-1_000_000, le=1_000_000, noun="pixels")
Spread = number(gt=0, le=1, noun="a relative spread (1 sigma / value)")
Tolerance = number(gt=0, le=5, noun="a relative difference")
BorderPixels = number(ge=0, le=50, noun="pixels")
BoxErrorPixels = number(ge=0, le=20, noun="pixels")
Aspect = number(ge=1, le=5, noun="a height / width ratio")
References = number(gt=0, le=1000, noun="a number of references per frame")
Frames = integer(ge=1, le=10000, noun="a number of frames")
GrowHeight = number(ge=0, le=10, noun="metres", note="0 = the mask is not grown")
GrowFraction = number(ge=0, le=1, noun="a fraction of the object's height")
DepthEvery = integer(ge=1, le=30, noun="an integer", note="the depth network runs on every Nth frame")
DepthEveryMax = integer(ge=2, le=30)
MAX_CAMERA_INDEX = 1023
BLUR_KSIZE_MAX = 99  # a Gaussian kernel this wide already costs tens of ms a frame on a CPU; wider ones cost seconds

BOX_STAT_FORMS = "auto | center_mean | median | percentile:P (0 <= P <= 100) | bottom"


def _box_stat(text: str) -> str:
    """``auto``, ``center_mean``, ``median``, ``bottom`` or ``percentile:P`` with 0 <= P <= 100."""
    name, colon, p = text.strip().partition(":")
    if not colon and name in ("auto", "center_mean", "median", "bottom"):
        return text
    if colon and name == "percentile":
        try:
            if 0.0 <= float(p) <= 100.0:
                return text
        except ValueError:
            pass
    raise ValueError(BOX_STAT_FORMS)


BACKEND_FORMS = "auto | ort-cpu | ort-cuda | ort-trt | trt | triton://HOST:PORT"
LOCAL_BACKENDS = ("auto", "ort-cpu", "ort-cuda", "ort-trt", "trt")


def _backend(text: str) -> str:
    """One of this machine's backends, or a Triton server (``triton://...``; its URL is read by the engine)."""
    if text in LOCAL_BACKENDS or text.startswith("triton://"):
        return text
    raise ValueError(BACKEND_FORMS)


def _odd(value: int) -> int:
    if value % 2 == 0:
        raise ValueError(f"an odd integer in 3..{BLUR_KSIZE_MAX}")
    return value


def _camera_index(value: Any) -> Any:
    """``uri: 0`` in a YAML file (an integer) is camera 0, as ``--source 0`` is."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value <= MAX_CAMERA_INDEX:
            raise ValueError(f"a camera index in 0..{MAX_CAMERA_INDEX}, or a video file, a folder or glob of images, "
                             f"a URL or demo")
        return str(value)
    return value


def _source_uri(value: str) -> str:
    """A path's names must fit the file system; a URL or a GStreamer pipeline is not a path."""
    return value if "://" in value or any(c.isspace() for c in value) else fits_file_system(value)


@dataclass(frozen=True, config=SCHEMA)
class SourceConfig:
    """``source``: what to read, and how live sources are opened, read and reopened."""

    uri: Annotated[Text, BeforeValidator(_camera_index), AfterValidator(_source_uri)] = "demo"
    max_frames: MaxFrames = 0
    open_timeout_s: Seconds = 5.0  # connecting (and reading a stream's header) may take this long
    read_timeout_s: Seconds = 5.0  # no frame for this long: the feed is lost
    rtsp_transport: Literal["tcp", "udp"] = "tcp"
    reconnect_attempts: Attempts = 30  # per outage
    reconnect_backoff_s: BackoffSeconds = 0.5  # doubles after each failed attempt
    reconnect_backoff_max_s: BackoffMaxSeconds = 2.0


@dataclass(frozen=True, config=SCHEMA)
class PipelineConfig:
    """``pipeline``: the layout, its queues and the CPU threads of the models."""

    layout: Literal["serial", "parallel"] = "parallel"
    queue_size: QueueSize = 4
    policy: Literal["auto", "block", "latest"] = "auto"
    threads: Threads = 0
    timeout_s: QueueSeconds = 0.1


ClassName = Annotated[str, Strict(), Field(min_length=1, max_length=200)]
ClassId = Annotated[int, Strict(), Field(ge=0, le=9_999)]


@dataclass(frozen=True, config=SCHEMA)
class DetectConfig:
    """``detect``: the detector model and how its boxes are kept.

    ``classes`` are checked against the detector's class names when they can be known before the model
    loads: the names in its sidecar, else COCO's (and ``class0``, ``class1``, ... for a model of another
    class count).
    """

    model: FilePath = "models/yolox_nano.onnx"
    conf: Fraction01 = 0.3
    iou: Fraction01 = 0.45
    classes: Annotated[tuple[ClassName | ClassId, ...], Field(max_length=1_000),
                       Allowed("a list of class names or ids (at most 1000; e.g. [person, car]; [] = all)")] = ()
    max_det: MaxBoxes = 100

    @field_validator("classes")
    @classmethod
    def _known_classes(cls, classes: tuple, info: ValidationInfo) -> tuple:
        if not classes or (info.context or {}).get("partial") or "model" not in info.data:
            return classes
        names, sidecar = _names_known_before_loading(Path(info.data["model"]))
        for c in classes:
            if isinstance(c, int):
                if sidecar is not None and c >= len(names):
                    raise ValueError(f"class ids 0..{len(names) - 1} ({sidecar.name} names {len(names)} classes)")
                continue
            if c in names or (sidecar is None and c.startswith("class") and c[5:].isdigit()):
                continue
            close = difflib.get_close_matches(c, names, n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'?" if close else (
                f"the names are in {sidecar.name}" if sidecar is not None else "COCO's 80 names, e.g. person, car")
            raise ValueError(f"names of the detector's classes; '{c}' is not one ({hint})")
        return classes


def _names_known_before_loading(model: Path) -> tuple[tuple[str, ...], Path | None]:
    """The detector's class names as far as they are known without loading it: its sidecar's names (and
    the sidecar), else COCO's (and None). A broken sidecar is reported when the detector loads."""
    from .sidecar import find_sidecar

    try:
        card = find_sidecar(model)
    except ConfigError:
        card = None
    if card is not None and card.names:
        return card.names, card.path
    return COCO_CLASSES, None


BUNDLED_DEPTH_CARD = str(MODELS_DIR / "fastdepth_224_nyu.yaml")
"""The bundled depth network's card (FastDepth-224, NYU Depth v2: metric, indoor), through the model store."""
DEPTH_SOURCE_FORMS = "auto | ground-plane | size-prior | a model card .yaml | an .onnx with a card beside it"


@dataclass(frozen=True, config=SCHEMA)
class CameraConfig:
    """``camera``: the source's camera profile (intrinsics with their resolution, mounting, depth calibrations).

    ``profile`` null: the source's own profile when it has one (the bundled clip, by name or by its sha256),
    else none. A profile belongs to one camera: it is never applied to another source unless given here.
    """

    profile: FilePath | None = None


@dataclass(frozen=True, config=SCHEMA)
class SizePriorConfig:
    """``depth.size_prior``: distances from the typical real size of a class (:mod:`stream.depth.sizeprior`)."""

    assumed_hfov_deg: Degrees180 = 70.0
    assumed_focal_spread: Spread = 0.15
    border_margin_px: BorderPixels = 2.0
    box_error_px: BoxErrorPixels = 2.0
    person_min_aspect: Aspect = 2.0
    max_spread: Spread = 0.25
    reference_max_spread: Spread = 0.12


@dataclass(frozen=True, config=SCHEMA)
class AutoScaleConfig:
    """``depth.autoscale``: a depth network's scale fitted to the size priors' distances (:mod:`stream.depth.autoscale`)."""

    mode: Literal["auto", "always", "never"] = "auto"
    min_references: References = 2.0
    max_spread: Spread = 0.2
    half_life_frames: Frames = 30
    scene_cut: Fraction01 = 0.1


@dataclass(frozen=True, config=SCHEMA)
class CrossCheckConfig:
    """``depth.crosscheck``: whether a depth source's box distances agree with the size priors (:mod:`stream.depth.crosscheck`)."""

    window_frames: Frames = 30
    min_references: References = 1.0
    tolerance: Tolerance = 0.35


@dataclass(frozen=True, config=SCHEMA)
class DepthConfig:
    """``depth``: where metres come from and how a box gets its distance.

    ``source``: ``auto`` = the camera profile's ground plane when the profile has a mounting, else the bundled
    depth network (:data:`BUNDLED_DEPTH_CARD`); ``ground-plane`` = the camera profile's ground plane (an error
    without one); ``size-prior`` = each box's distance from its class's typical size, no map (parallel layout);
    else a depth model card (or an .onnx with its card beside it).
    """

    source: Annotated[str, Strict(), Field(min_length=1, max_length=MAX_TEXT), AfterValidator(fits_file_system),
                      Allowed(DEPTH_SOURCE_FORMS)] = "auto"
    box_stat: Annotated[str, Strict(), Field(max_length=40), AfterValidator(_box_stat), Allowed(BOX_STAT_FORMS)] = "auto"
    roi: BoxFraction = 0.4
    threads: DepthThreads = 0
    ground_max_m: FarMetres = 100.0
    every: DepthEvery | Annotated[Literal["auto"], Allowed("auto")] = 1
    every_max: DepthEveryMax = 4
    size_prior: SizePriorConfig = SizePriorConfig()
    autoscale: AutoScaleConfig = AutoScaleConfig()
    crosscheck: CrossCheckConfig = CrossCheckConfig()

    @property
    def network_card(self) -> str | None:
        """The depth network's card a run may use: the one given, the bundled one for ``auto`` (sources without
        a mounting), None for ``ground-plane`` and ``size-prior``."""
        if self.source in ("ground-plane", "size-prior"):
            return None
        return BUNDLED_DEPTH_CARD if self.source == "auto" else self.source

    @property
    def is_size_prior(self) -> bool:
        """Distances per box from the classes' typical sizes, no depth map."""
        return self.source == "size-prior"


@dataclass(frozen=True, config=SCHEMA)
class BandConfig:
    """``band``: the distances kept, in metres along the optical axis: ``further_than < d < closer_than``."""

    closer_than: BandMetres | None = None
    further_than: BandMetres | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> "BandConfig":
        if self.closer_than is not None and self.further_than is not None and not self.further_than < self.closer_than:
            raise ValueError(f"further_than {self.further_than:g} and closer_than {self.closer_than:g} leave no distance: "
                             f"the band is further than {self.further_than:g} m and closer than {self.closer_than:g} m")
        return self

    @property
    def active(self) -> bool:
        """True when at least one bound is set."""
        return self.closer_than is not None or self.further_than is not None

    def describe(self) -> str:
        """The band in words: ``closer than 2 m``, ``between 3 m and 8 m``, ``all distances``."""
        if self.closer_than is not None and self.further_than is not None:
            return f"between {self.further_than:g} m and {self.closer_than:g} m"
        if self.closer_than is not None:
            return f"closer than {self.closer_than:g} m"
        if self.further_than is not None:
            return f"further than {self.further_than:g} m"
        return "all distances"


@dataclass(frozen=True, config=SCHEMA)
class TrackConfig:
    """``track``: track ids across frames and each track's filtered distance, speed and time to contact
    (:mod:`stream.track`; what each key does: config.yaml)."""

    enabled: Flag = True
    high_conf: Fraction01 = 0.5
    iou: OpenFraction = 0.15
    lost_s: ShortSeconds = 1.0
    kalman_gain: Gain = 1.0
    window: Window = 5
    outlier_rel: Share = 0.2
    noise_rel: Share = 0.05
    unreliable_factor: Factor = 3.0
    accel_mps2: Accel = 1.0
    speed_prior_mps: Speed = 1.5
    max_speed_mps: Speed = 20.0


ON_EVENT_FORMS = "an http(s):// URL or a command line"


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError(ON_EVENT_FORMS)
    return text


@dataclass(frozen=True, config=SCHEMA)
class EventsConfig:
    """``events``: when a track's event is given, and where it is delivered (``--on-event``, :mod:`stream.track`)."""

    margin_m: MarginMetres = 0.3
    min_duration_s: HoldSeconds = 0.5
    approach_ttc_s: TtcSeconds = 3.0
    on_event: Annotated[str, Strict(), Field(max_length=MAX_TEXT), AfterValidator(_not_blank),
                        Allowed(ON_EVENT_FORMS)] | None = None
    deliver_timeout_s: ShortSeconds = 2.0
    queue_size: EventQueue = 64
    drain_s: DrainSeconds = 5.0


@dataclass(frozen=True, config=SCHEMA)
class MaskConfig:
    """``mask``: how the serial layout blanks pixels outside the band before detection.

    The band mask is first grown by the size of an object ``grow_height_m`` tall standing at the band's edge
    (its height in pixels from the camera's focal length: :func:`stream.mask.serial_mask`): ``grow_around`` of
    it in every direction, and with ground-plane depth its whole height upward (an upright object on in-band
    ground rises above it, over ground that lies farther). Defaults measured with ``python -m bench layouts-agree``.
    """

    fill: Literal["black", "grey", "blur"] = "blur"
    blur_ksize: Annotated[int, Strict(), Field(ge=3, le=BLUR_KSIZE_MAX), AfterValidator(_odd),
                          Allowed(f"an odd integer in 3..{BLUR_KSIZE_MAX}")] = 31
    grow_height_m: GrowHeight = 1.8
    grow_around: GrowFraction = 0.1


Byte = Annotated[int, Strict(), Field(ge=0, le=255)]


@dataclass(frozen=True, config=SCHEMA)
class OverlayConfig:
    """``overlay``: what is drawn on the annotated frames (:mod:`stream.overlay`).

    depth_inset: ``auto`` draws the depth inset on frames whose shorter side has at least
    ``stream.overlay.INSET_MIN_SIDE`` pixels; ``timings``: per-stage milliseconds in the HUD; ``scores``:
    the detector's score in each label.
    """

    tint_bgr: Annotated[tuple[Byte, Byte, Byte], Allowed("three integers 0..255 (B, G, R)")] = (40, 40, 160)
    tint_alpha: Fraction01 = 0.45
    depth_inset: Flag | Literal["auto"] = "auto"
    inset_fraction: InsetFraction = 0.2
    hud: Flag = True
    timings: Flag = False
    scores: Flag = False


@dataclass(frozen=True, config=SCHEMA)
class OutputConfig:
    """``output``: the annotated MP4 (or image folder), the JSONL and the window."""

    mp4: OutputPath | None = None
    jsonl: OutputPath | None = None
    show: Flag = False
    crf: Crf = 23
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"] = "veryfast"


LISTEN_FORMS = "HOST:PORT (e.g. 127.0.0.1:8080, 0.0.0.0:8080, [::1]:8080) or a PORT on 127.0.0.1; port 0 = any free one"


def parse_listen(text: str) -> tuple[str, int]:
    """``127.0.0.1:8080`` -> ('127.0.0.1', 8080); ``[::1]:8080`` -> ('::1', 8080); ``8080`` -> ('127.0.0.1', 8080).
    A missing host (``:8080``) is refused: listening on every interface must be asked for by name (0.0.0.0)."""
    text = text.strip()
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", text
    elif host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(LISTEN_FORMS + "; an IPv6 address goes in brackets")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(LISTEN_FORMS)
    return host, int(port)


def _listen(text: str) -> str:
    parse_listen(text)
    return text


@dataclass(frozen=True, config=SCHEMA)
class ServeConfig:
    """``serve``: the browser view (``--serve``, :mod:`stream.web`): where it listens and what it accepts."""

    listen: Annotated[str, Strict(), Field(min_length=1, max_length=300), AfterValidator(_listen),
                      Allowed(LISTEN_FORMS)] | None = None
    linger: Flag = True
    jpeg_quality: integer(ge=1, le=100) = 80
    video_max_fps: number(gt=0, le=240, noun="frames per second") = 30.0
    max_viewers: integer(ge=1, le=256) = 16
    viewer_timeout_s: Seconds = 10.0
    max_upload_mb: number(gt=0, le=4096, noun="megabytes") = 50.0
    max_clip_s: number(gt=0, le=600, noun="seconds") = 20.0
    max_side_px: integer(ge=16, le=16384, noun="pixels") = 8192
    keep_results: integer(ge=1, le=100) = 8


@dataclass(frozen=True, config=SCHEMA)
class EngineConfig:
    """``engine``: how the models run."""

    backend: Annotated[str, Strict(), Field(max_length=MAX_TEXT), AfterValidator(_backend), Allowed(BACKEND_FORMS)] = "auto"
    fp16: Flag = True
    cache_dir: FilePath | None = None


@dataclass(frozen=True, config=SCHEMA)
class Config:
    """The whole configuration (one section per top-level key of config.yaml)."""

    source: SourceConfig = SourceConfig()
    pipeline: PipelineConfig = PipelineConfig()
    detect: DetectConfig = DetectConfig()
    camera: CameraConfig = CameraConfig()
    depth: DepthConfig = DepthConfig()
    band: BandConfig = BandConfig()
    track: TrackConfig = TrackConfig()
    events: EventsConfig = EventsConfig()
    mask: MaskConfig = MaskConfig()
    overlay: OverlayConfig = OverlayConfig()
    output: OutputConfig = OutputConfig()
    engine: EngineConfig = EngineConfig()
    serve: ServeConfig = ServeConfig()

    @model_validator(mode="after")
    def _size_prior_layout(self) -> "Config":
        if self.depth.is_size_prior and self.pipeline.layout == "serial":
            raise ValueError("depth.source size-prior gives each box a distance but no depth map, and the serial "
                             "layout masks the frame by a depth map before detecting: use --layout parallel "
                             "(pipeline.layout: parallel), or a depth source with a map (ground-plane, a model card)")
        return self


NOUN = "config key"

MOVED = {
    "depth.ground_plane": (
        "the ground plane's camera is now a camera profile, which belongs to one camera and says the resolution its "
        "intrinsics refer to: write one (python -m stream calibrate ..., or copy data/vtest_pets2009.camera.yaml and "
        "set its intrinsics and mounting: height_m, pitch_deg) and pass --camera FILE (config camera.profile); "
        "the ground's farthest depth is depth.ground_max_m"),
}
"""Keys that are gone, with what replaced them: a user's old ``--set`` or config file gets this line."""



def config_keys() -> list[str]:
    """Every dotted key of the config, e.g. ``detect.conf``."""
    return all_keys(Config)


# -- loading (the mechanics: :mod:`depthstream.schema.loading`) ------------------------------------


def parse_set(item: str) -> tuple[str, Any]:
    """``detect.conf=0.4`` -> ('detect.conf', 0.4); the value is read as YAML."""
    return loading.parse_set(Config, item, NOUN, moved=MOVED)


def load_config(
    path: Path | str | None = None,
    sets: list[str] | tuple[str, ...] = (),
    overrides: dict[str, Any] | None = None,
) -> Config:
    """Defaults from the project's config.yaml, then ``path``, then ``--set`` items, then ``overrides``
    (dotted key -> value, from CLI flags; None = not given; paths there are relative to the working directory)."""
    return loading.load_layers(Config, DEFAULT_CONFIG, path, sets, overrides, noun=NOUN, moved=MOVED)
