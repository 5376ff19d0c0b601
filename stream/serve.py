"""``python -m stream --serve HOST:PORT``: a run with its browser view (:mod:`stream.web`).

This module puts the two together; neither knows the other. The run (:func:`stream.app.run`) reads its band and
layout from a :class:`~stream.control.RuntimeControl` the page writes, and publishes each written frame to the
view's :class:`~stream.web.hub.FrameHub`. An upload (``POST /api/detect``) is a run of its own on the uploaded file
(:func:`detect_upload`), with its own models, on the view's one low-priority upload worker: nothing of the live
run is shared, so an upload can neither block the live pipeline nor disturb its tracks.

Safe by default: ``--serve PORT`` listens on 127.0.0.1 only; an address that is not this machine's loopback needs a
token (``--serve-token``, or ``DEPTHSTREAM_SERVE_TOKEN`` so it stays out of the process list), asked of every
request. The token is never logged or shown.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import threading
from pathlib import Path
from typing import Callable

from depthstream.errors import ConfigError, ServeError, StreamError
from depthstream.schema.config import Config, parse_listen

from . import signals
from .app import Summary, run
from .control import RuntimeControl
from .pipeline.jobs import JobWorker
from .sources import Source

log = logging.getLogger("stream.serve")

TOKEN_ENV = "DEPTHSTREAM_SERVE_TOKEN"
SHORT_TOKEN = 16  # a token shorter than this is accepted with a warning: it can be guessed


def check_token(token: str | None, loopback: bool, shown: str) -> str | None:
    """The token the view asks for (``--serve-token``, else $DEPTHSTREAM_SERVE_TOKEN); ConfigError when an address
    beyond this machine has none."""
    if token is None:
        token = os.environ.get(TOKEN_ENV) or None
    if token is not None and not token.strip():
        raise ConfigError("--serve-token is empty: give a long random text (e.g. python -c 'import secrets; "
                          "print(secrets.token_urlsafe())')")
    if token is None and not loopback:
        raise ConfigError(f"--serve {shown} listens beyond this machine: give a token every request must carry "
                          f"(--serve-token, or the environment variable {TOKEN_ENV} to keep it out of the process "
                          f"list), or listen on 127.0.0.1")
    if token is not None and len(token) < SHORT_TOKEN:
        log.warning("the --serve token has %d characters: one of %d or more is much harder to guess",
                    len(token), SHORT_TOKEN)
    return token


def detect_upload(cfg: Config, control: RuntimeControl, job) -> "DetectOutput":
    """An upload's run: ``python -m stream`` on the file with the live run's config, the band the request asked,
    the live layout, one model thread, no event delivery; results into ``job.folder / "result"``."""
    from .web.routes import DetectOutput

    result = job.folder / "result"
    if job.probe.kind == "image":  # a folder of one photo: no tracks, the photo's own name
        uri, out, annotated = str(job.input.parent), str(result) + "/", result / job.input.name
    else:
        annotated = result / f"{job.name}.mp4"
        uri, out = str(job.input), str(annotated)
    jsonl = result / f"{job.name}.jsonl"
    r = dataclasses.replace
    upload_cfg = r(cfg, source=r(cfg.source, uri=uri, max_frames=job.max_frames), band=job.band,
                   pipeline=r(cfg.pipeline, layout=control.layout(), policy="block", threads=1),
                   output=r(cfg.output, mp4=out, jsonl=str(jsonl), show=False),
                   events=r(cfg.events, on_event=None), serve=r(cfg.serve, listen=None))

    def stop_if_cancelled(done: int, total: int | None) -> None:
        if job.cancel.is_set():
            raise ServeError(f"stopped after {done} frames: the browser view is closing")

    s = run(upload_cfg, on_frame=stop_if_cancelled)
    summary = {"frames": s.frames, "seconds": round(s.wall_s, 2), "objects": s.objects, "layout": s.layout,
               "depth": {"source": s.depth_source, "kind": s.depth_kind}, "box_stat": s.box_stat,
               "tracks": s.tracks, "backend": s.backend}
    return DetectOutput(annotated=annotated, jsonl=jsonl, summary=summary)


def _url(host: str, port: int) -> str:
    return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"


def run_served(cfg: Config, token: str | None = None, *, source: Source | None = None,
               on_frame: Callable[[int, int | None], None] | None = None,
               on_listen: Callable[[str], None] | None = None, inputs: dict[str, str] | None = None) -> Summary:
    """:func:`stream.app.run` with the browser view on ``cfg.serve.listen``; ``token`` as ``--serve-token``.

    The socket is bound first (a taken port fails before the models load). With ``serve.linger`` the view stays up
    after the source ends, showing the last frame, until Ctrl-C / SIGTERM (then this returns normally).
    ``on_listen(url)`` is called once the view serves (tests, benchmarks: the port when 0 was asked).
    """
    from .web import FrameHub, ResultStore, WebServer, WebView, bind, is_loopback

    shown = cfg.serve.listen
    host, port = parse_listen(shown)
    loopback = is_loopback(host)
    token = check_token(token, loopback, shown)
    sock = bind(host, port, shown)
    control = RuntimeControl.from_config(cfg)
    hub = FrameHub()
    with contextlib.ExitStack() as stack:
        stack.callback(sock.close)
        store = ResultStore(cfg.serve.keep_results)
        stack.callback(store.close)
        worker = stack.enter_context(JobWorker("uploads", maxsize=1))
        view = WebView(hub, control, limits=cfg.serve, store=store, worker=worker, token=token, loopback=loopback,
                       detect=functools.partial(detect_upload, cfg, control))
        stack.callback(view.cancel_jobs)  # closed in reverse: the server, then running uploads, the worker, the store
        server = stack.enter_context(WebServer(view.app(), sock, before_close=view.feed.close))
        url = _url(host, server.port)
        log.info("browser view: %s%s", url, "  (every request needs the token: open it as ?token=TOKEN)" if token else "")
        if on_listen is not None:
            on_listen(url)
        try:
            summary = run(cfg, source=source, on_frame=on_frame, control=control, publish=hub.publish, inputs=inputs)
        except KeyboardInterrupt:
            hub.finish("ended", "interrupted")
            raise
        except StreamError as exc:
            hub.finish("failed", str(exc))
            raise
        hub.finish("ended", f"{summary.frames} frames, stopped by {summary.stopped_by}")
        if cfg.serve.linger:
            _linger(url, summary)
        stats = view.feed.stats
        summary.served = {"url": url, "viewers_total": stats.viewers_total, "encodes": stats.encodes,
                          "dropped_viewers": stats.dropped_viewers, "frames_sent": stats.frames_sent}
    return summary


def _linger(url: str, summary: Summary) -> None:
    log.info("the run has ended (%s); the browser view stays up with the last frame at %s: Ctrl-C stops it",
             summary.stopped_by, url)
    forever = threading.Event()
    try:
        # Under python -m stream a signal after the run is only noted (stream.signals): poll for it.
        while not forever.wait(0.2):
            if signals.received() is not None:
                break
    except KeyboardInterrupt:  # a caller without stream.signals' handler
        return
    signals.reset()  # the signal ended the lingering view; the run itself had ended normally
