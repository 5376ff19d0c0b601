"""The browser view's server thread: uvicorn running the application on its own event loop, in one thread.

This module and :mod:`stream.pipeline` are the only places of the product that start threads. The socket is bound
in the caller's thread before anything else (:func:`bind`), so a taken port or a wrong address is an error before
the models load; the thread then serves it. ``close()`` ends every live video stream, asks uvicorn to stop
(``should_exit``), and joins the thread; a server still busy after the grace period is forced (``force_exit``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import threading
from collections.abc import Callable

import uvicorn

from depthstream.errors import ServeError

log = logging.getLogger("stream.web")

START_TIMEOUT_S = 10.0
SEND_BUFFER = 128 * 1024  # bytes (the kernel doubles it): about two 768x576 JPEGs
CLOSE_GRACE_S = 3.0


def is_loopback(host: str) -> bool:
    """True when ``host`` names this machine only: every address it resolves to is a loopback one."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


def bind(host: str, port: int, shown: str) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``shown``: the address as the user gave it, for messages)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ServeError(f"--serve {shown}: cannot resolve '{host}' ({exc.strerror}); give an address of this "
                         f"machine, e.g. 127.0.0.1:8080") from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Connections accepted on it inherit this send buffer (Linux): what a viewer has not read yet stays a
        # frame or two, not the megabytes the kernel would allow, so a slow viewer sees the newest frame.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        hint = ("stop what uses it, or give another port (port 0 picks a free one)" if exc.errno == 98 else
                "give an address of this machine (127.0.0.1, 0.0.0.0 or one of its interfaces' addresses)")
        raise ServeError(f"--serve {shown}: cannot listen there: {exc.strerror or exc}; {hint}") from exc
    return sock


class _QuietUvicorn(logging.Filter):
    """uvicorn's line for a response left unfinished is ours to tell: a viewer dropped for taking no data."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing response" not in record.getMessage()


class WebServer:
    """Serves ``app`` on ``sock`` from one thread; a context manager (start / close)."""

    def __init__(self, app, sock: socket.socket, *, before_close: Callable[[], None] | None = None) -> None:
        self.sock = sock
        self.address = sock.getsockname()
        config = uvicorn.Config(app, log_config=None, log_level="warning", access_log=False, lifespan="on",
                                timeout_graceful_shutdown=CLOSE_GRACE_S, server_header=False)
        self._server = uvicorn.Server(config)
        self._before_close = before_close
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        for name in ("uvicorn", "uvicorn.error"):
            logging.getLogger(name).setLevel(logging.WARNING)
        logging.getLogger("uvicorn.error").addFilter(_QuietUvicorn())

    @property
    def port(self) -> int:
        return int(self.address[1])

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # noqa: BLE001 - reported by start() or close() in the caller's thread
            self._error = exc

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._server.serve(sockets=[self.sock])

    def start(self) -> "WebServer":
        self._thread = threading.Thread(target=self._run, name="stream-web")
        self._thread.start()
        waited = 0.0
        while not self._server.started and self._thread.is_alive() and waited < START_TIMEOUT_S:
            self._thread.join(0.02)
            waited += 0.02
        if not self._server.started:
            self.close()
            raise ServeError(f"the browser view did not start on {self.address[0]}:{self.port}"
                             + (f": {type(self._error).__name__}: {self._error}" if self._error else
                                f" within {START_TIMEOUT_S:.0f} s"))
        return self

    def close(self) -> None:
        """End the live streams, stop the server, join its thread (forced after the grace period)."""
        thread, loop = self._thread, self._loop
        if thread is None:
            return
        if self._before_close is not None and loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._before_close)
            except RuntimeError:  # the loop has just closed: nothing left to end
                pass
        self._server.should_exit = True
        thread.join(CLOSE_GRACE_S + 2.0)
        if thread.is_alive():
            self._server.force_exit = True
            thread.join(5.0)
        if thread.is_alive():
            log.warning("the browser view's thread is still running after close")
        self._thread = None
        self.sock.close()

    def __enter__(self) -> "WebServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
