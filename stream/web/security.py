"""Who may use the browser view: a token on every request when it listens beyond this machine, the Host header
when it does not, and no cross-site writes.

- **Token** (required when the listen address is not loopback): ``Authorization: Bearer TOKEN``, an
  ``X-Depthstream-Token: TOKEN`` header, or ``?token=TOKEN`` (what an ``<img>`` or a link can carry). Compared
  in constant time (:func:`hmac.compare_digest`) on every route, the page and the 404s included.
- **Host** (loopback without a token): only ``localhost``, ``127.0.0.1`` and ``[::1]`` (with the port): a web
  page elsewhere that points a name of its own at 127.0.0.1 (DNS rebinding) gets 421, not the video.
- **Origin** (every POST): a browser names the page that sends a request; one from another site (a form on a
  page elsewhere posting to 127.0.0.1) is refused with 403. Tools such as curl send no Origin and pass.
"""

from __future__ import annotations

import hmac
import json
from urllib.parse import parse_qsl, urlsplit

TOKEN_HEADER = "x-depthstream-token"
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]", "::1")


def token_of(scope) -> str | None:
    """The token a request carries (header first, then the query), or None."""
    headers = dict(scope.get("headers") or [])
    auth = headers.get(b"authorization", b"").decode("latin-1")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    if TOKEN_HEADER.encode() in headers:
        return headers[TOKEN_HEADER.encode()].decode("latin-1").strip()
    for key, value in parse_qsl(scope.get("query_string", b"").decode("latin-1")):
        if key == "token":
            return value
    return None


def token_matches(given: str | None, token: str) -> bool:
    """Constant-time comparison (on UTF-8 bytes, so any text compares without raising)."""
    return given is not None and hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8"))


def _host_name(host_header: str) -> str:
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[:host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Guard:
    """ASGI middleware: the checks above, before any route runs."""

    def __init__(self, app, *, token: str | None, loopback: bool) -> None:
        self.app = app
        self.token = token
        self.loopback_only = loopback and token is None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if self.token is not None and not token_matches(token_of(scope), self.token):
            await _refuse(send, 401, "this view needs its token: open the page as /?token=TOKEN, or send the header "
                                     "Authorization: Bearer TOKEN", {"www-authenticate": "Bearer"})
            return
        if self.loopback_only and _host_name(headers.get(b"host", b"").decode("latin-1")) not in LOOPBACK_HOSTS:
            await _refuse(send, 421, "this view listens on this machine only: open it as http://127.0.0.1:PORT/ "
                                     "(or localhost)")
            return
        if scope["method"] == "POST" and b"origin" in headers:
            origin = urlsplit(headers[b"origin"].decode("latin-1"))
            if origin.netloc.lower() != headers.get(b"host", b"").decode("latin-1").lower():
                await _refuse(send, 403, "a request from another site's page is refused: use this view's own page")
                return
        await self.app(scope, receive, send)


async def _refuse(send, status: int, message: str, extra: dict[str, str] | None = None) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
