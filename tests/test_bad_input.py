"""The bad-input catalogue: every mistake a user can make with `python -m stream` gives one clear
`error: ...` line on stderr (no traceback) and exit code 2 (usage or config) or 1 (runtime), and no
output file that existed before the run is truncated or replaced.

Every case runs the real CLI in a subprocess; they run a few at a time (one shared fixture) to keep
the suite fast. README.md ("Mistakes and what they say") lists the same cases.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest

from stream.sources import opencv_has_gstreamer

from conftest import DATA, DEMO, ROOT, YOLOX, unwritable_folder

pytestmark = pytest.mark.slow

SENTINEL_MP4 = b"an earlier run's video - must survive\n"
SENTINEL_JSONL = b'{"an earlier run": "must survive"}\n'


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]  # "{ws}" is the workspace folder, "{port}" a closed port on 127.0.0.1
    code: int
    line: str  # regex for the one error line
    own_outputs: bool = False  # the case is about --output/--jsonl itself
    after_frames: bool = False  # fails after frames were written: the outputs then hold those frames
    skip: str | None = None
    secrets: tuple[str, ...] = ()  # must appear nowhere in stdout or stderr (credentials in the arguments)


def _camera_skip(n: int) -> str | None:
    return f"/dev/video{n} exists on this machine" if Path(f"/dev/video{n}").exists() else None


CASES = [
    # -- the source: exit 2 (it is not there, or not something we can read) -------------------------
    Case("missing-file", ("--source", "{ws}/missing.mp4"), 2, r"^error: source file not found: .*/missing.mp4 \(expected a video file"),
    Case("folder-without-images", ("--source", "{ws}/no_images"), 2, r"^error: folder .*/no_images holds no images \(looked for .bmp"),
    Case("glob-matching-nothing", ("--source", "{ws}/no_images/*.jpg"), 2, r"^error: no images match .*/no_images/\*.jpg"),
    Case("empty-source", ("--source", ""), 2, r"^error: source.uri: got '', expected a non-empty string$"),
    Case("bad-url-scheme", ("--source", "ftp://me:secret@127.0.0.1/x.mp4"), 2,
         r"^error: unsupported URL scheme in --source ftp://\*\*\*@127.0.0.1/x.mp4: expected one of rtsp, rtsps, http, https"),
    Case("camera-index-absent", ("--source", "9"), 2, r"^error: no camera 9: /dev/video9 does not exist; list the cameras with 'ls /dev/video\*'",
         skip=_camera_skip(9)),
    Case("camera-device-absent", ("--source", "/dev/video42"), 2, r"^error: no camera /dev/video42: /dev/video42 does not exist",
         skip=_camera_skip(42)),
    Case("gstreamer-without-gstreamer", ("--source", "v4l2src device=/dev/video0 ! videoconvert ! appsink"), 2,
         r"^error: --source 'v4l2src device=/dev/video0 ! videoconvert ! appsink' looks like a GStreamer pipeline, but this OpenCV has no GStreamer support",
         skip="this OpenCV has GStreamer" if opencv_has_gstreamer() else None),
    # -- the source: exit 1 (it is there but cannot be read) ---------------------------------------------
    Case("text-file-as-video", ("--source", "{ws}/notes.mp4"), 1,
         r"^error: cannot open .*/notes.mp4 as a video: Invalid data found when processing input \(not a video, or a truncated or corrupt file\)$"),
    Case("empty-file-as-video", ("--source", "{ws}/empty.mp4"), 1, r"^error: cannot open .*/empty.mp4 as a video: the file is empty \(0 bytes\)$"),
    Case("truncated-video", ("--source", "{ws}/cut.mp4"), 1, r"^error: cannot open .*/cut.mp4 as a video: .*truncated or corrupt file\)$"),
    Case("corrupt-video-mid-way", ("--source", "{ws}/corrupt.mp4", "--output", "{ws}/corrupt_out.mp4", "--jsonl", "{ws}/corrupt_out.jsonl"), 1,
         r"^error: decoding .*/corrupt.mp4 failed at frame \d+: Invalid data found when processing input \(the outputs hold the "
         r"\d+ frames before it\)$", own_outputs=True, after_frames=True),
    Case("corrupt-image-in-folder", ("--source", "{ws}/images_bad"), 1, r"^error: cannot read image .*/images_bad/b.jpg \(corrupt, or not an image\) \(the outputs hold the 1 frame "
         r"before it\)$",
         after_frames=True),
    Case("unreachable-host", ("--source", "rtsp://cam:hunter2@127.0.0.1:{port}/stream1"), 1,
         r"^error: cannot connect to rtsp://\*\*\*@127.0.0.1:\d+/stream1: connection refused \(is the server running, and is the port right\?\)$"),
    Case("unknown-host", ("--source", "rtsp://no-such-host.invalid/stream1"), 1,
         r"^error: cannot connect to rtsp://no-such-host.invalid/stream1: host 'no-such-host.invalid' not found \(DNS\); "
         r"check the host name, or give its IP address$"),
    Case("url-scheme-in-capitals", ("--source", "RTSP://127.0.0.1:{port}/stream1"), 1,
         r"^error: cannot connect to RTSP://127.0.0.1:\d+/stream1: connection refused \(is the server running"),
    # -- credentials: hidden in every form (finding 11 of issue 11) ---------------------------------------
    Case("password-with-an-at-sign", ("--source", "rtsp://admin:p@ss@127.0.0.1:{port}/stream1"), 1,
         r"^error: cannot connect to rtsp://\*\*\*@127.0.0.1:\d+/stream1: connection refused", secrets=("p@ss", "ss@", "admin")),
    Case("token-query-values", ("--source", "http://127.0.0.1:{port}/live?access_token=TOK1&api_key=KEY2&apikey=KEY3&sig=SIG4&channel=2"), 1,
         r"^error: cannot connect to http://127.0.0.1:\d+/live\?access_token=\*\*\*&api_key=\*\*\*&apikey=\*\*\*&sig=\*\*\*&channel=2: "
         r"connection refused", secrets=("TOK1", "KEY2", "KEY3", "SIG4")),
    Case("url-with-one-slash", ("--source", "rtsp:/user:secret@127.0.0.1/stream1"), 2,
         r"^error: --source rtsp:/\*\*\*@127.0.0.1/stream1: a URL needs '//' after 'rtsp:' \(did you mean "
         r"rtsp://\*\*\*@127.0.0.1/stream1\?\)$", secrets=("secret", "user:")),
    Case("gstreamer-user-pw", ("--source", "rtspsrc location=rtsp://127.0.0.1:{port}/x user-id=admin user-pw=SECRETPW ! appsink"), 2,
         r"^error: --source 'rtspsrc location=rtsp://127.0.0.1:\d+/x user-id=\*\*\* user-pw=\*\*\* ! appsink' looks like a GStreamer "
         r"pipeline, but this OpenCV has no GStreamer support", secrets=("SECRETPW", "admin"),
         skip="this OpenCV has GStreamer" if opencv_has_gstreamer() else None),
    Case("secret-in-a-bad-config-value", ("--set", "source.uri=[rtsp://viewer:hunter2@127.0.0.1/x]"), 2,
         r"^error: source.uri: got \['rtsp://\*\*\*@127.0.0.1/x'\], expected ", secrets=("hunter2", "viewer")),
    # -- sources that are not what they look like (finding 14) ----------------------------------------------
    Case("url-without-a-host", ("--source", "rtsp://"), 2,
         r"^error: --source rtsp://: the URL has no host; expected rtsp://host\[:port\]/path$"),
    Case("dev-zero-as-source", ("--source", "/dev/zero"), 2,
         r"^error: --source /dev/zero is a character device, not a video file; give a video file, a folder or glob of "
         r"images, a camera \(0 or /dev/video0\) or a URL$"),
    Case("fifo-as-source", ("--source", "{ws}/pipe.mp4"), 2,
         r"^error: --source .*/pipe.mp4 is a named pipe \(FIFO\), not a video file; give a video file, a folder or glob"),
    Case("depth-network-as-detector", ("--detector", "{ws}/depthnet/net.onnx"), 2,
         r"^error: detector sidecar .*/depthnet/net.yaml: is a depth model card \(kind: metric\), not a detector sidecar: "
         r".*/depthnet/net.onnx is a depth network; give it with --depth-model \(depth.source\), and give --detector a "
         r"YOLO-family detector \(e.g. models/yolox_nano.onnx\)$"),
    Case("camera-zero-from-a-config-file", ("--config", "{ws}/camera0.yaml"), 2,
         r"^error: no camera 0: /dev/video0 does not exist", skip=_camera_skip(0)),
    # -- models ------------------------------------------------------------------------------------------
    Case("model-file-missing", ("--set", "detect.model={ws}/nope.onnx"), 2, r"^error: detector model not found: .*/nope.onnx \(expected an ONNX file"),
    Case("onnx-not-a-detector", ("--set", "detect.model={ws}/relu.onnx"), 1, r"^error: relu.onnx is not a supported detector: its output matches no supported layout"),
    Case("onnx-unreadable", ("--set", "detect.model={ws}/garbage.onnx"), 1, r"^error: .*/garbage.onnx is not a model ONNX Runtime can load"),
    Case("depth-card-missing", ("--depth-model", "{ws}/nope.yaml"), 2, r"^error: .*nope.yaml"),
    Case("depth-card-wrong-key", ("--depth-model", "{ws}/card_bad.yaml"), 2,
         r"^error: model card .*/card_bad.yaml: unknown key 'bogus_key' \(valid keys: name, model, input"),
    # -- outputs -----------------------------------------------------------------------------------------
    Case("output-under-a-file", ("--output", "{ws}/afile/out.mp4", "--jsonl", "{ws}/keep_ok.jsonl"), 2,
         r"^error: cannot write the MP4 to .*/afile/out.mp4: .*/afile is a file, not a folder; choose another output path", own_outputs=True),
    Case("output-folder-is-a-file", ("--output", "{ws}/afile"), 2,
         r"^error: cannot write annotated images to .*/afile: it is an existing file, not a folder; give a folder path or a .mp4 file$", own_outputs=True),
    Case("jsonl-is-a-folder", ("--jsonl", "{ws}/no_images"), 2, r"^error: cannot write the JSONL to .*/no_images: it is an existing folder; give a file path",
         own_outputs=True),
    Case("output-not-mp4", ("--output", "{ws}/out.avi"), 2,
         r"^error: --output .*/out.avi: expected a file ending in .mp4 \(H.264 video\) or a folder \(annotated images\), got a '.avi' file$", own_outputs=True),
    Case("output-replaces-source-images", ("--source", "{ws}/images_ok", "--output", "{ws}/images_ok"), 2,
         r"^error: --output .*/images_ok is the folder of the source images: the annotated images would replace them", own_outputs=True),
    Case("output-folder-not-writable", ("--output", "{ws}/locked/sub/out.mp4"), 2,
         r"^error: cannot write the MP4 to .*/locked/sub/out.mp4: folder .*/locked is not writable \(permission denied\)", own_outputs=True),
    # -- outputs that are an input or each other (issue 11): refused before anything is opened --------------
    Case("output-is-the-source", ("--source", "{ws}/src.mp4", "--output", "{ws}/src.mp4"), 2,
         r"^error: --output .*/src.mp4 is the source video: writing it would destroy it; choose another path$", own_outputs=True),
    Case("jsonl-is-the-source", ("--source", "{ws}/src.mp4", "--jsonl", "{ws}/src.mp4"), 2,
         r"^error: --jsonl .*/src.mp4 is the source video: writing it would destroy it; choose another path$", own_outputs=True),
    Case("jsonl-links-to-the-source", ("--source", "{ws}/src.mp4", "--jsonl", "{ws}/link.jsonl"), 2,
         r"^error: --jsonl .*/link.jsonl is the source video \(.*/src.mp4, through a link\): writing it would destroy it; "
         r"choose another path$", own_outputs=True),
    Case("output-hard-link-to-the-source", ("--source", "{ws}/src.mp4", "--output", "{ws}/hard.mp4"), 2,
         r"^error: --output .*/hard.mp4 is the source video \(.*/src.mp4, through a link\)", own_outputs=True),
    Case("output-and-jsonl-the-same", ("--output", "{ws}/same.mp4", "--jsonl", "{ws}/same.mp4"), 2,
         r"^error: --output and --jsonl are the same file \(.*/same.mp4\): each would overwrite the other; give them "
         r"different paths$", own_outputs=True),
    Case("jsonl-is-the-config-file", ("--config", "{ws}/run.yaml", "--jsonl", "{ws}/run.yaml"), 2,
         r"^error: --jsonl .*/run.yaml is the config file: writing it would destroy it; choose another path$", own_outputs=True),
    Case("jsonl-is-the-detector", ("--detector", "{ws}/det.onnx", "--jsonl", "{ws}/det.onnx"), 2,
         r"^error: --jsonl .*/det.onnx is the detector model \(detect.model\): writing it would destroy it; choose another "
         r"path$", own_outputs=True),
    Case("jsonl-over-a-file-that-is-not-jsonl", ("--jsonl", "{ws}/notes.txt"), 2,
         r"^error: --jsonl .*/notes.txt exists and is not a JSONL file \(its first line is not a JSON object\): "
         r"refusing to replace it; remove it or choose another path$", own_outputs=True),
    Case("show-without-a-display", ("--show",), 1, r"^error: --show needs a desktop window \(Tk\): DISPLAY is not set"),
    # -- flags and config --------------------------------------------------------------------------------
    Case("closer-than-negative", ("--closer-than", "-2"), 2, r"^error: argument --closer-than: --closer-than must be a positive number of metres, got -2"),
    Case("closer-than-not-a-number", ("--closer-than", "two"), 2, r"^error: argument --closer-than: --closer-than must be a distance in metres, got 'two'"),
    Case("further-than-zero", ("--further-than", "0"), 2, r"^error: argument --further-than: --further-than must be a positive number of metres, got 0"),
    Case("thresholds-contradict", ("--further-than", "5", "--closer-than", "3"), 2, r"^error: .*further than 5 m and closer than 3 m"),
    Case("set-unknown-key", ("--set", "detect.cnf=0.4"), 2, r"^error: --set: unknown config key 'detect.cnf' \(did you mean 'detect.conf'\?\)$"),
    Case("set-bad-value", ("--set", "detect.conf=3"), 2, r"^error: detect.conf: got 3, expected a number in \[0, 1\]$"),
    Case("set-without-value", ("--set", "detect.conf"), 2, r"^error: --set expects key=value \(e.g. --set detect.conf=0.4\), got 'detect.conf'$"),
    Case("set-bad-reconnect", ("--set", "source.reconnect_attempts=-1"), 2, r"^error: source.reconnect_attempts: got -1, expected an integer in 0..10000 \(0 = do not reconnect\)$"),
    Case("set-bad-transport", ("--set", "source.rtsp_transport=http"), 2, r"^error: source.rtsp_transport: got 'http', expected tcp \| udp$"),
    Case("set-number-with-an-exponent", ("--set", "detect.conf=5e0"), 2, r"^error: detect.conf: got 5.0, expected a number in \[0, 1\]$"),
    # -- files that are not UTF-8, names too long for the file system (finding 12) --------------------------
    Case("config-not-utf8", ("--config", "{ws}/latin1.yaml"), 2,
         r"^error: config file .*/latin1.yaml: not UTF-8 text \(byte 0xe9 on line 2\); save it as UTF-8$"),
    Case("card-not-utf8", ("--depth-model", "{ws}/card_latin1.yaml"), 2,
         r"^error: model card .*/card_latin1.yaml: not UTF-8 text \(byte 0xe9 on line 1\); save it as UTF-8$"),
    Case("binary-sidecar", ("--detector", "{ws}/binary_sidecar/model.onnx"), 2,
         r"^error: detector sidecar .*/binary_sidecar/model.yaml: not UTF-8 text \(byte 0x80 on line 1\); save it as UTF-8$"),
    Case("output-name-too-long", ("--output", "{ws}/" + "a" * 300 + ".mp4"), 2,
         r"^error: output.mp4: got '.*\.\.\.a+\.mp4' \(\d+ characters\), expected a path whose every name is at most 255 bytes "
         r"\(aaa.*\.mp4 is 304\); choose a shorter name$", own_outputs=True),
    Case("jsonl-name-too-long", ("--jsonl", "{ws}/" + "j" * 300 + ".jsonl", "--output", "{ws}/keep/jsonl-name-too-long.mp4"), 2,
         r"^error: output.jsonl: got .*, expected a path whose every name is at most 255 bytes \(jjj.*\.jsonl is 306\)", own_outputs=True),
    Case("source-name-too-long", ("--source", "{ws}/" + "s" * 300 + ".mp4"), 2,
         r"^error: source.uri: got .*, expected .*every name is at most 255 bytes \(sss.*\.mp4 is 304\)"),
    Case("detector-name-too-long", ("--detector", "{ws}/" + "d" * 300 + ".onnx"), 2,
         r"^error: detect.model: got .*, expected .*every name is at most 255 bytes \(ddd.*\.onnx is 305\)"),
    # -- values without an upper bound, and documents that expand (finding 13) ------------------------------
    Case("config-too-large", ("--config", "{ws}/huge.yaml"), 2,
         r"^error: config file .*/huge.yaml: larger than 1024 KiB; expected a YAML file of a few kB \(is it the right file\?\)$"),
    Case("yaml-alias-bomb", ("--config", "{ws}/laughs.yaml"), 2,
         r"^error: .*/laughs.yaml: source.uri: got \[\[.*\.\.\..*\], expected a non-empty string"),
    Case("blur-kernel-huge", ("--set", "mask.blur_ksize=100001"), 2,
         r"^error: mask.blur_ksize: got 100001, expected an odd integer in 3..99$"),
    Case("threads-huge", ("--set", "pipeline.threads=1000"), 2,
         r"^error: pipeline.threads: got 1000, expected an integer in 0..256 \(0 = every core\)$"),
    Case("max-det-huge", ("--set", "detect.max_det=10000000"), 2,
         r"^error: detect.max_det: got 10000000, expected an integer in 1..10000$"),
    # -- values checked when the config loads (they used to pass and fail later, or never) -----------------
    Case("set-tint-too-short", ("--set", "overlay.tint_bgr=[1]"), 2,
         r"^error: overlay.tint_bgr: got \[1\], expected three integers 0..255 \(B, G, R\)$"),
    Case("set-band-negative", ("--set", "band.closer_than=-3"), 2,
         r"^error: band.closer_than: got -3, expected a positive number of metres \(at most 10000\) or null$"),
    Case("set-unknown-class", ("--set", "detect.classes=[persn]"), 2,
         r"^error: detect.classes: got \['persn'\], expected names of the detector's classes; 'persn' is not one \(did you mean 'person'\?\)$"),
    Case("set-bad-box-stat", ("--set", "depth.box_stat=mean"), 2,
         r"^error: depth.box_stat: got 'mean', expected auto \| center_mean \| median \| percentile:P \(0 <= P <= 100\) \| bottom$"),
    Case("config-section-not-a-mapping", ("--config", "{ws}/list_section.yaml"), 2,
         r"^error: .*/list_section.yaml: pipeline: got \[\], expected a mapping of keys \(layout, queue_size, policy, threads, timeout_s\)$"),
    Case("size-prior-in-serial", ("--set", "depth.source=size-prior", "--layout", "serial"), 2,
         r"^error: depth.source size-prior gives each box a distance but no depth map, and the serial layout masks the "
         r"frame by a depth map before detecting: use --layout parallel"),
    Case("set-bad-autoscale-mode", ("--set", "depth.autoscale.mode=sometimes"), 2,
         r"^error: depth.autoscale.mode: got 'sometimes', expected auto \| always \| never$"),
    Case("layout-unknown", ("--layout", "fast"), 2, r"^error: argument --layout: invalid choice: 'fast'"),
    Case("max-frames-negative", ("--max-frames", "-1"), 2, r"^error: argument --max-frames: --max-frames must be >= 0"),
    Case("config-file-missing", ("--config", "{ws}/nope_config.yaml"), 2, r"^error: config file not found: .*/nope_config.yaml$"),
    Case("config-file-not-yaml", ("--config", "{ws}/broken.yaml"), 2, r"^error: config file .*/broken.yaml: not valid YAML"),
    Case("unknown-flag", ("--bogus",), 2, r"^error: unrecognized arguments: --bogus"),
    # -- several sources in one process (README "Many cameras") ---------------------------------------------
    Case("several-sources-with-output", ("--source", "demo", "--source", "{ws}/src.mp4", "--output", "{ws}/keep/several.mp4"), 2,
         r"^error: --output names one file, for one source; with 2 --source give --output-dir DIR instead \(each source "
         r"writes DIR/NAME.mp4 and DIR/NAME.jsonl\)$", own_outputs=True),
    Case("several-sources-with-jsonl", ("--source", "demo", "--source", "{ws}/src.mp4", "--jsonl", "{ws}/keep/several.jsonl"), 2,
         r"^error: --jsonl names one file, for one source; with 2 --source give --output-dir DIR instead", own_outputs=True),
    Case("same-source-twice", ("--source", "demo", "--source", "{ws}/src.mp4", "--source", "demo", "--output-dir", "{ws}/multi"), 2,
         r"^error: --source demo is given twice: each source is read once; to run the same file twice, give a copy of it$",
         own_outputs=True),
    Case("output-dir-with-output", ("--output-dir", "{ws}/multi"), 2,
         r"^error: --output-dir and --output/--jsonl both name outputs: give --output-dir DIR alone"),
    Case("output-dir-is-a-file", ("--source", "demo", "--source", "{ws}/src.mp4", "--output-dir", "{ws}/afile"), 2,
         r"^error: --output-dir .*/afile is a file: give a folder \(it is created if missing\)$", own_outputs=True),
    Case("several-sources-with-show", ("--source", "demo", "--source", "{ws}/src.mp4", "--show", "--output-dir", "{ws}/multi"), 2,
         r"^error: --show opens one window for one source, got 2 --source", own_outputs=True),
    Case("several-sources-one-camera-profile", ("--source", "demo", "--source", "{ws}/src.mp4", "--camera", "data/vtest_pets2009.camera.yaml", "--output-dir", "{ws}/multi"), 2,
         r"^error: --camera \(camera.profile\) is one camera's profile and is never applied to another source; with 2 "
         r"--source each uses its own", own_outputs=True),
    Case("several-sources-with-serve", ("--source", "demo", "--source", "{ws}/src.mp4", "--serve", "0", "--output-dir", "{ws}/multi"), 2,
         r"^error: --serve shows one source, got 2 --source: run one process per browser view$", own_outputs=True),
]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _make_workspace(ws: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    (ws / "no_images").mkdir()
    (ws / "no_images" / "notes.txt").write_text("not an image\n")
    (ws / "notes.mp4").write_text("this is not a video\n")
    (ws / "empty.mp4").write_bytes(b"")
    data = DEMO.read_bytes()
    (ws / "cut.mp4").write_bytes(data[: len(data) // 2])  # the index (moov) is at the end: gone
    corrupt = bytearray(data)
    start = len(data) // 3
    corrupt[start:start + 20000] = np.random.default_rng(5).integers(0, 256, 20000, dtype=np.uint8).tobytes()
    (ws / "corrupt.mp4").write_bytes(bytes(corrupt))
    (ws / "images_bad").mkdir()
    shutil.copy(DATA / "messi5.jpg", ws / "images_bad" / "a.jpg")
    (ws / "images_bad" / "b.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (ws / "images_ok").mkdir()
    shutil.copy(DATA / "messi5.jpg", ws / "images_ok" / "messi5.jpg")
    (ws / "broken.yaml").write_text("detect: [unclosed\n")
    (ws / "list_section.yaml").write_text("pipeline: []\n")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 64, 64])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 64, 64])
    model = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(ws / "relu.onnx"))
    (ws / "garbage.onnx").write_bytes(b"not a protobuf at all")
    (ws / "card_bad.yaml").write_text(
        "name: x\nmodel: relu.onnx\ninput: x\noutput: y\nlayout: nchw\nsize: [64, 64]\ncolour: rgb\nkind: metric\nbogus_key: 1\n")
    (ws / "afile").write_text("a plain file\n")
    shutil.copy(DEMO, ws / "src.mp4")
    (ws / "link.jsonl").symlink_to(ws / "src.mp4")
    os.link(ws / "src.mp4", ws / "hard.mp4")
    (ws / "run.yaml").write_text("detect:\n  conf: 0.4\n")
    shutil.copy(YOLOX, ws / "det.onnx")
    (ws / "notes.txt").write_text("my notes, not a JSONL file\n")
    os.mkfifo(ws / "pipe.mp4")
    (ws / "depthnet").mkdir()
    shutil.copy(ws / "relu.onnx", ws / "depthnet" / "net.onnx")
    (ws / "depthnet" / "net.yaml").write_text(
        "name: net\nmodel: net.onnx\ninput: x\noutput: y\nlayout: nchw\nsize: [64, 64]\ncolour: rgb\nscale: 1\n"
        "mean: [0, 0, 0]\nstd: [1, 1, 1]\nkind: metric\n")
    (ws / "camera0.yaml").write_text("source:\n  uri: 0\n")
    (ws / "latin1.yaml").write_bytes("detect:\n  conf: 0.4  # caf\u00e9\n".encode("latin-1"))
    (ws / "card_latin1.yaml").write_bytes("name: caf\u00e9\n".encode("latin-1"))
    (ws / "binary_sidecar").mkdir()
    shutil.copy(ws / "relu.onnx", ws / "binary_sidecar" / "model.onnx")
    (ws / "binary_sidecar" / "model.yaml").write_bytes(bytes(range(0x80, 0x100)) * 4)
    (ws / "huge.yaml").write_text("# padding\n" * 200_000)
    # 372 bytes that expand to 10^8 strings: the value's whole repr was once the error line (580 MB)
    anchors = ["&a0 [x,x,x,x,x,x,x,x,x,x]"] + [f"&a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 8)]
    (ws / "laughs.yaml").write_text("source:\n  uri: [" + ", ".join(anchors) + "]\n")
    (ws / "locked").mkdir()  # made unwritable (also for root) by the fixture
    (ws / "keep").mkdir()


def _argv(case: Case, ws: Path, port: int) -> list[str]:
    args = [a.replace("{ws}", str(ws)).replace("{port}", str(port)) for a in case.args]
    if not case.own_outputs:
        args += ["--output", str(ws / "keep" / f"{case.id}.mp4"), "--jsonl", str(ws / "keep" / f"{case.id}.jsonl")]
    if not case.after_frames and "--max-frames" not in args:
        args += ["--max-frames", "2"]  # a check that failed to fire must not process the whole clip
    return args


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Runs every case once (three at a time) and returns id -> (CompletedProcess, workspace)."""
    ws = tmp_path_factory.mktemp("bad_input")
    _make_workspace(ws)
    port = _closed_port()
    for case in CASES:
        if not case.own_outputs:
            (ws / "keep" / f"{case.id}.mp4").write_bytes(SENTINEL_MP4)
            (ws / "keep" / f"{case.id}.jsonl").write_bytes(SENTINEL_JSONL)

    def one(case: Case):
        return case.id, subprocess.run([sys.executable, "-m", "stream", *_argv(case, ws, port)], cwd=ROOT,
                                       capture_output=True, text=True, timeout=120)

    todo = [c for c in CASES if c.skip is None]
    with unwritable_folder(ws / "locked"), ThreadPoolExecutor(max_workers=3) as pool:
        done = dict(pool.map(one, todo))
    yield done, ws


def test_the_catalogue_has_at_least_20_cases():
    assert len(CASES) >= 20 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gives_one_clear_line_and_its_exit_code(case, outcomes):
    if case.skip:
        pytest.skip(case.skip)
    done, ws = outcomes
    r = done[case.id]
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    errors = [x for x in lines if x.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], r.stderr
    if not case.after_frames:
        assert lines == errors, r.stderr  # nothing else on stderr either
    assert re.search(case.line, errors[0]), errors[0]
    assert len(errors[0]) < 1000, f"an error line of {len(errors[0])} characters"
    for secret in case.secrets:
        assert secret not in r.stderr and secret not in r.stdout, f"{secret!r} shown: {r.stderr}"
    assert r.returncode == case.code, (r.returncode, r.stderr)
    if not case.own_outputs and not case.after_frames:  # nothing already written is lost
        assert (ws / "keep" / f"{case.id}.mp4").read_bytes() == SENTINEL_MP4
        assert (ws / "keep" / f"{case.id}.jsonl").read_bytes() == SENTINEL_JSONL
    elif not case.own_outputs:  # the frames before the failure were ready: they replaced the earlier outputs
        held = int(re.search(r"the outputs hold the (\d+) frames? before it", errors[0]).group(1))
        assert len((ws / "keep" / f"{case.id}.jsonl").read_text().splitlines()) == held
        with av.open(str(ws / "keep" / f"{case.id}.mp4")) as c:
            assert sum(1 for _ in c.decode(video=0)) == held


@pytest.mark.timeout(300)
def test_a_video_corrupt_mid_way_leaves_playable_outputs_with_every_frame_before_it(outcomes):
    done, ws = outcomes
    assert done["corrupt-video-mid-way"].returncode == 1
    lines = (ws / "corrupt_out.jsonl").read_text().splitlines()
    failed_at = int(re.search(r"failed at frame (\d+)", done["corrupt-video-mid-way"].stderr).group(1))
    assert len(lines) == failed_at  # every frame decoded before the damage is written
    with av.open(str(ws / "corrupt_out.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == len(lines)


@pytest.mark.timeout(300)
def test_output_problems_create_nothing(outcomes):
    _, ws = outcomes
    assert not (ws / "keep_ok.jsonl").exists()  # the MP4 path was wrong: the JSONL was not even created
    assert sorted(p.name for p in (ws / "images_ok").iterdir()) == ["messi5.jpg"]
    assert not (ws / "out.avi").exists()


@pytest.mark.timeout(300)
def test_outputs_never_replace_an_input(outcomes):
    _, ws = outcomes
    assert (ws / "src.mp4").read_bytes() == DEMO.read_bytes()
    assert (ws / "src.mp4").samefile(ws / "hard.mp4") and (ws / "link.jsonl").resolve() == ws / "src.mp4"
    assert (ws / "run.yaml").read_text() == "detect:\n  conf: 0.4\n"
    assert (ws / "det.onnx").read_bytes() == YOLOX.read_bytes()
    assert (ws / "notes.txt").read_text() == "my notes, not a JSONL file\n"
    assert not (ws / "same.mp4").exists()
