"""The routes of the browser view (a Starlette application; :mod:`stream.web.server` runs it).

======================================  =========================================================================
``GET /``                               the page (``page.html``)
``GET /stream.mjpg``                    the live annotated video, MJPEG (``multipart/x-mixed-replace``)
``GET /frame.jpg``                      the newest annotated frame, one JPEG
``GET /api/state``                      run state, band, layout, depth source, objects in the band, last events
``POST /api/control``                   JSON ``{"closer_than": m|null, "further_than": m|null, "layout": ...}``
``POST /api/detect``                    multipart upload (``file``; optional ``closer_than``, ``further_than``)
``GET /api/results/{id}/{name}``        an upload's annotated image or MP4, and its JSONL
======================================  =========================================================================

Errors are JSON ``{"error": "one line"}`` with the HTTP status that fits (400 bad value, 401 token, 413 too big or
too long, 415 not an image or a video, 422 could not be processed, 503 busy or full).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import anyio
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from depthstream.errors import ConfigError, StreamError
from depthstream.redact import redact
from depthstream.schema.adapter import validate
from depthstream.schema.config import BandConfig, ServeConfig

from ..control import RuntimeControl
from ..pipeline.jobs import Busy, JobWorker
from .hub import FeedClosed, FrameHub, JpegFeed
from .security import Guard
from .state import state_json
from .uploads import Probe, ResultStore, UploadError, max_frames, probe, safe_name

log = logging.getLogger("stream.web")

PAGE_HEADERS = {
    "cache-control": "no-store",
    # The page's own script and styles only; the token in its address never leaves it in a Referer.
    "content-security-policy": "default-src 'self'; img-src 'self' blob: data:; media-src 'self'; "
                               "style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; "
                               "frame-ancestors 'none'",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
}
BOUNDARY = b"frame"
FORM_OVERHEAD = 64 * 1024  # multipart headers and the small fields around the file
CONTROL_MAX = 4096  # bytes of a POST /api/control body


@dataclass(frozen=True)
class DetectJob:
    """One upload to process: the input file (probed) in ``folder/in``, results into ``folder/result``."""

    folder: Path
    input: Path
    name: str  # the client's name for it, made safe
    probe: Probe
    band: BandConfig
    max_frames: int
    cancel: threading.Event  # set when the server closes: the job stops after the frame in hand


@dataclass(frozen=True)
class DetectOutput:
    annotated: Path  # the annotated image or MP4
    jsonl: Path  # one JSON line per frame (stream/sinks/jsonl.py)
    summary: dict  # frames, seconds, objects by class, depth source


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": redact(message)}, status_code=status, headers=headers)


class _TooLarge(Exception):
    pass


class WebView:
    """The application and what it serves: the run's frame hub and control, the uploads' worker and store."""

    def __init__(self, hub: FrameHub, control: RuntimeControl, *, limits: ServeConfig, store: ResultStore,
                 worker: JobWorker, detect: Callable[[DetectJob], DetectOutput], token: str | None,
                 loopback: bool) -> None:
        self.hub, self.control, self.limits = hub, control, limits
        self.store, self.worker, self.detect = store, worker, detect
        self.token, self.loopback = token, loopback
        self.feed = JpegFeed(hub, limits.jpeg_quality, limits.video_max_fps)
        self._jobs: set[threading.Event] = set()
        self._page = files("stream.web").joinpath("page.html").read_text(encoding="utf-8")

    def app(self) -> Guard:
        routes = [
            Route("/", self.page),
            Route("/stream.mjpg", _Mjpeg(self)),
            Route("/frame.jpg", self.frame),
            Route("/api/state", self.state),
            Route("/api/control", self.set_control, methods=["POST"]),
            Route("/api/detect", _Detect(self), methods=["POST"]),
            Route("/api/results/{job}/{name}", self.result),
        ]
        return Guard(Starlette(routes=routes, lifespan=self._lifespan), token=self.token, loopback=self.loopback)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app):
        """On the server's event loop: the feed follows the hub while the server runs."""
        self.feed.start()
        try:
            yield
        finally:
            self.feed.close()

    def cancel_jobs(self) -> None:
        """The server closes: every running upload stops after the frame in hand."""
        for cancel in list(self._jobs):
            cancel.set()

    # -- routes -----------------------------------------------------------------------------------

    async def page(self, request: Request) -> Response:
        return HTMLResponse(self._page, headers=PAGE_HEADERS)

    async def state(self, request: Request) -> Response:
        return JSONResponse(state_json(self.hub, self.control, self.feed.stats),
                            headers={"cache-control": "no-store"})

    async def frame(self, request: Request) -> Response:
        seq, newest = self.hub.newest()
        if newest is None:
            return _error(503, "no frame yet: the run is starting", {"retry-after": "1"})
        try:
            _, jpeg = await self.feed.next(seq - 1)
        except FeedClosed:
            return _error(503, "the view is shutting down")
        return Response(jpeg, media_type="image/jpeg", headers={"cache-control": "no-store"})

    async def set_control(self, request: Request) -> Response:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return _error(415, "send the change as JSON (Content-Type: application/json), e.g. {\"closer_than\": 20}")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > CONTROL_MAX:
                return _error(413, f"a change is a small JSON object (at most {CONTROL_MAX} bytes)")
        try:
            data = json.loads(body)
        except ValueError as exc:
            return _error(400, f"the body is not JSON ({exc})")
        if not isinstance(data, dict) or not data or set(data) - {"closer_than", "further_than", "layout"}:
            return _error(400, "send a JSON object with some of closer_than, further_than (metres or null) and "
                               f"layout (serial or parallel), got {json.dumps(data)[:200]}")
        try:
            settings = self.control.update(**data)
        except ConfigError as exc:
            return _error(400, str(exc))
        log.info("changed from the browser view: band %s, layout %s", settings.band.describe(), settings.layout)
        return JSONResponse({"layout": settings.layout, "closer_than": settings.band.closer_than,
                             "further_than": settings.band.further_than, "text": settings.band_text})

    async def result(self, request: Request) -> Response:
        path = self.store.path(request.path_params["job"], request.path_params["name"])
        if path is None:
            return _error(404, "no such result (older results are deleted: serve.keep_results)")
        return FileResponse(path, headers={"cache-control": "no-store", "x-content-type-options": "nosniff"})

    # -- uploads ----------------------------------------------------------------------------------

    async def run_job(self, job: DetectJob) -> DetectOutput:
        self._jobs.add(job.cancel)
        try:
            future = self.worker.submit(lambda: self.detect(job))
            return await asyncio.wrap_future(future)
        finally:
            self._jobs.discard(job.cancel)


class _Mjpeg:
    """``GET /stream.mjpg``: each viewer gets the newest frame when it is ready for one; a viewer that takes no
    data for ``serve.viewer_timeout_s`` is dropped; the run never waits for any."""

    def __init__(self, view: WebView) -> None:
        self.view = view

    async def __call__(self, scope, receive, send) -> None:
        feed, limits = self.view.feed, self.view.limits
        stats = feed.stats
        if stats.viewers >= limits.max_viewers:
            stats.refused_viewers += 1
            await _error(503, f"{stats.viewers} viewers already watch (serve.max_viewers)", {"retry-after": "5"})(
                scope, receive, send)
            return
        stats.viewers += 1
        stats.viewers_total += 1
        try:
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", b"multipart/x-mixed-replace; boundary=" + BOUNDARY),
                (b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff")]})
            async with anyio.create_task_group() as tg:
                tg.start_soon(_until_disconnect, receive, tg.cancel_scope)
                await self._stream(send)
                tg.cancel_scope.cancel()
        finally:
            stats.viewers -= 1

    async def _stream(self, send) -> None:
        feed, timeout = self.view.feed, self.view.limits.viewer_timeout_s
        seq = 0
        while True:
            try:
                seq, jpeg = await feed.next(seq)
            except FeedClosed:
                with anyio.move_on_after(1.0):
                    await send({"type": "http.response.body", "body": b"--" + BOUNDARY + b"--\r\n", "more_body": False})
                return
            part = b"--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\nX-Frame-Seq: %d\r\n\r\n%s\r\n" % (
                BOUNDARY, len(jpeg), seq, jpeg)
            with anyio.move_on_after(timeout) as waited:
                await send({"type": "http.response.body", "body": part, "more_body": True})
            if waited.cancelled_caught:
                feed.stats.dropped_viewers += 1
                log.warning("dropped a viewer that took no data for %.0f s (serve.viewer_timeout_s)", timeout)
                return
            feed.stats.frames_sent += 1


async def _until_disconnect(receive, scope: anyio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


class _Detect:
    """``POST /api/detect``: read the upload (at most ``serve.max_upload_mb``), probe it, process it on the upload
    worker, answer with its boxes, classes, scores and metres and links to the annotated result and the JSONL."""

    def __init__(self, view: WebView) -> None:
        self.view = view

    async def __call__(self, scope, receive, send) -> None:
        response = await self._respond(scope, receive)
        await response(scope, receive, send)

    async def _respond(self, scope, receive) -> Response:
        view = self.view
        limit = int(view.limits.max_upload_mb * 2 ** 20)
        request = Request(scope)
        too_big = _error(413, f"the upload is larger than {view.limits.max_upload_mb:g} MB (serve.max_upload_mb): "
                              f"send a smaller file")
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > limit + FORM_OVERHEAD:
            return too_big
        received = 0

        async def counted():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit + FORM_OVERHEAD:
                raise _TooLarge
            return message

        request = Request(scope, counted)
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            return _error(415, "send the image or video as a multipart/form-data upload in a field named 'file' "
                               "(curl -F file=@photo.jpg ...)")
        try:
            form = await request.form(max_files=1, max_fields=4, max_part_size=1024)
        except _TooLarge:
            return too_big
        except MultiPartException as exc:
            return _error(400, f"the upload is not a readable multipart form ({exc.message})")
        try:
            return await self._process(form)
        finally:
            await form.close()

    async def _process(self, form) -> Response:
        view = self.view
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            return _error(400, "the form has no file: send it in a field named 'file'")
        try:
            band = _band(form)
        except ConfigError as exc:
            return _error(400, str(exc))
        job_id, folder = view.store.new()
        try:
            job = await self._job(upload, folder, band)
            return JSONResponse(_answer(job_id, job, await view.run_job(job)))
        except UploadError as exc:
            view.store.discard(job_id)
            return _error(exc.status, str(exc))
        except Busy:
            view.store.discard(job_id)
            return _error(503, "an upload is already being processed and another waits: try again in a few seconds",
                          {"retry-after": "5"})
        except StreamError as exc:
            view.store.discard(job_id)
            return _error(422, f"{upload.filename or safe_name(upload.filename)}: {exc}")

    async def _job(self, upload: UploadFile, folder: Path, band: BandConfig) -> DetectJob:
        """The upload saved, probed and moved to ``folder/in`` under a name its content decides."""
        limits = self.view.limits
        shown = safe_name(upload.filename)
        raw = folder / "upload"
        await anyio.to_thread.run_sync(_save, upload, raw)
        if raw.stat().st_size == 0:
            raise UploadError(400, f"{upload.filename or 'the upload'} is empty")
        found = await anyio.to_thread.run_sync(probe, raw, upload.filename or shown, limits)
        src = folder / "in" / (shown + found.ext)
        src.parent.mkdir()
        raw.rename(src)
        return DetectJob(folder, src, shown, found, band, max_frames(found, limits), threading.Event())


def _band(form) -> BandConfig:
    data = {}
    for key in ("closer_than", "further_than"):
        text = str(form.get(key) or "").strip()
        if text:
            try:
                data[key] = float(text)
            except ValueError:
                raise ConfigError(f"band: {key}: got {text[:40]!r}, expected a positive number of metres") from None
    return validate(BandConfig, data, where="band: ", noun="band key")


def _save(upload: UploadFile, path: Path) -> None:
    upload.file.seek(0)
    with open(path, "wb") as f:
        shutil.copyfileobj(upload.file, f, 1 << 20)


def _answer(job_id: str, job: DetectJob, out: DetectOutput) -> dict:
    records = [json.loads(line) for line in out.jsonl.read_text(encoding="utf-8").splitlines() if line.strip()]
    base = f"/api/results/{job_id}/"
    return {
        "id": job_id,
        "kind": job.probe.kind,
        "name": job.input.name,
        "width": job.probe.width,
        "height": job.probe.height,
        "duration_s": job.probe.duration_s,
        "band": job.band.describe() if job.band.active else None,
        "frames": len(records),
        "depth": records[0]["depth"] if records else None,
        "detections": records[0]["detections"] if records and job.probe.kind == "image" else None,
        "records": records,
        "summary": out.summary,
        "annotated": base + out.annotated.name,
        "jsonl": base + out.jsonl.name,
    }
