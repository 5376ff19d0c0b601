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

from pydantic import AfterValidator, BeforeValidator, Field, Strict, ValidationInfo, field_validator, model_validator
from pydantic.dataclasses import dataclass

from depthstream.coco import COCO_CLASSES
from depthstream.errors import ConfigError
from depthstream.store import DEFAULT_CONFIG

from . import loading
from .adapter import all_keys
from .bounds import (
    Accel, Attempts, BLUR_KSIZE_MAX, BackoffMaxSeconds, BackoffSeconds, BandMetres, Crf, DrainSeconds,
    EventQueue, Factor, Fraction01, Gain, GrowFraction, GrowHeight, HoldSeconds, InsetFraction,
    MAX_CAMERA_INDEX, MarginMetres, MaxBoxes, MaxFrames, OpenFraction, QueueSeconds, QueueSize, SCHEMA, Seconds,
    Share, ShortSeconds, Speed, Threads, TtcSeconds, Window,
)
from .depth_config import (  # noqa: F401 - the depth sections are part of the configuration's namespace
    AutoScaleConfig, BUNDLED_DEPTH_CARD, CameraConfig, CrossCheckConfig, DepthConfig, SizePriorConfig,
)
from .fields import MAX_TEXT, Allowed, FilePath, Flag, OutputPath, Text, fits_file_system, integer, number


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
