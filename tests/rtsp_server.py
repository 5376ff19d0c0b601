"""A real RTSP server for the tests and for trying live feeds by hand: GStreamer's RTSP server (Debian's
``gir1.2-gst-rtsp-server-1.0``) serving an H.264 MP4 (by default the bundled clip) on 127.0.0.1.

It runs under Debian's ``/usr/bin/python3`` (``python3-gi`` is a system package, not in the venv):

    /usr/bin/python3 tests/rtsp_server.py --port 8554            # rtsp://127.0.0.1:8554/demo
    /usr/bin/python3 tests/rtsp_server.py --port 8554 --user u --password p   # needs rtsp://u:p@...

Every client gets its own session that plays the file from its start at its real rate (10 fps for the
bundled clip, 15 s), without re-encoding. On stdout it prints ``READY <port>`` once it listens. It (and
``--check``) exits with code 3 and one line on stderr when GStreamer or one of its plugins is missing, so
the tests can skip with that line as the reason.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

DEFAULT_CLIP = Path(__file__).resolve().parent.parent / "data" / "vtest_pets2009_150f.mp4"
NEEDED = ("filesrc", "qtdemux", "h264parse", "rtph264pay")
MISSING = 3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, help="TCP port on 127.0.0.1")
    ap.add_argument("--check", action="store_true", help="only check that GStreamer and its plugins are here (exit 0, or 3 and why)")
    ap.add_argument("--path", default="/demo", help="mount point (default /demo)")
    ap.add_argument("--file", default=str(DEFAULT_CLIP), help="an MP4 with H.264 video (default: the bundled clip)")
    ap.add_argument("--user", help="require this user name (basic authentication)")
    ap.add_argument("--password", help="and this password")
    args = ap.parse_args()
    try:
        import gi

        gi.require_version("Gst", "1.0")
        gi.require_version("GstRtspServer", "1.0")
        from gi.repository import GLib, Gst, GstRtspServer
    except (ImportError, ValueError) as exc:
        sys.stderr.write(f"GStreamer RTSP server not available ({exc}): apt-get install python3-gi gir1.2-gst-rtsp-server-1.0\n")
        return MISSING
    Gst.init(None)
    missing = [name for name in NEEDED if Gst.ElementFactory.find(name) is None]
    if missing:
        sys.stderr.write(f"GStreamer elements missing: {', '.join(missing)}: apt-get install gstreamer1.0-plugins-good gstreamer1.0-plugins-bad\n")
        return MISSING
    if args.check:
        return 0
    if args.port is None:
        ap.error("--port is required")
    clip = Path(args.file).resolve()
    if not clip.is_file():
        sys.stderr.write(f"no such file: {clip}\n")
        return 2

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    # h264parse config-interval=-1: SPS/PPS in front of every key frame, inside its access unit, so a client that
    # joins or rejoins decodes from the next key frame. (The same setting on rtph264pay sends them as an access unit
    # of their own with the key frame's timestamp: FFmpeg then decodes the key frame twice, the second time into
    # garbage, and every frame after it is green.)
    factory.set_launch(
        f'( filesrc location="{clip}" ! qtdemux ! h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 )'
    )
    factory.set_shared(False)
    if args.user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password or ""), token)
        server.set_auth(auth)
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_role_from_structure(Gst.Structure.new_from_string("user,media.factory.access=true,media.factory.construct=true"))
        factory.set_permissions(permissions)
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        sys.stderr.write(f"cannot listen on 127.0.0.1:{args.port} (port in use?)\n")
        return 1

    loop = GLib.MainLoop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    sys.stdout.write(f"READY {args.port}\n")
    sys.stdout.flush()
    loop.run()
    # Leave at once: a clean GStreamer teardown would wait for the clients' sessions to end.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
