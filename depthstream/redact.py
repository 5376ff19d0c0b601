"""Credentials kept out of everything the product shows: :func:`redact` is the one function every message,
log line, JSONL ``source`` field and summary goes through.

It hides, in any text (a URL, a GStreamer pipeline, a message that holds them):

- the user and password of a URL, up to the *last* ``@`` of the word: ``rtsp://admin:p@ss@host/x`` ->
  ``rtsp://***@host/x`` (FFmpeg logs in with the password ``p@ss``, so a redaction that stops at the first
  ``@`` shows half of it). Also when ``//`` is mistyped (``rtsp:/user:pw@host``, ``rtsp:user:pw@host``) or
  the scheme is left out (``user:pw@host``);
- query values whose name says they are secret: ``?token=``, ``access_token=``, ``api_key=``, ``apikey=``,
  ``sig=``, ``signature=``, ``password=``, ``user=``, ``auth=``, ... -> ``?token=***``;
- GStreamer properties that hold credentials: ``user-id=``, ``user-pw=``, ``proxy-id=``, ``proxy-pw=``,
  ``password=``, ``passphrase=``, ``token=``, ``secret-access-key=``, ... -> ``user-pw=***``.

It errs on the side of hiding: an ``@`` later in a URL's path hides its host too. Applying it twice gives
the same text.
"""

from __future__ import annotations

import logging
import re

# Names (of query parameters) that hold a secret, by what they contain.
_SECRET_WORDS = r"pass|pwd|secret|token|key|sig|auth|cred|session|cookie|user|login"
_VALUE = r"""(?:"[^"]*"|'[^']*'|[^\s&;#"'!,)]*)"""
_QUERY = re.compile(rf"(?i)([?&;][\w.~%-]*(?:{_SECRET_WORDS})[\w.~%-]*=){_VALUE}")
# GStreamer element properties (``name=value`` after a space) that hold credentials.
_PROPERTY = re.compile(
    rf"(?i)((?:^|(?<=\s))(?:(?:user|proxy)-(?:id|pw)|[\w-]*(?:password|passwd|passphrase|secret|token|api-?key|access-key))"
    rf"\s*=\s*){_VALUE}")
# ``scheme:`` (any number of slashes) ... ``@``: everything up to the last ``@`` of the word is user information.
_USERINFO = re.compile(r"(?<![\w+.-])([a-zA-Z][\w+.-]*:)(/*)([^\s\"'<>]*)@")
KNOWN_SCHEMES = frozenset({"rtsp", "rtsps", "rtspt", "http", "https", "rtmp", "rtmps", "udp", "tcp", "srt", "rtp",
                           "ftp", "sftp", "triton", "grpc", "ws", "wss", "mms", "hls"})


def _userinfo(match: re.Match) -> str:
    scheme, slashes = match.group(1), match.group(2)
    if slashes or scheme[:-1].lower() in KNOWN_SCHEMES:
        return f"{scheme}{slashes}***@"
    return "***@"  # ``user:password@host``: the "scheme" is the user name


def redact(text: object) -> str:
    """``text`` with every credential replaced by ``***`` (see the module docstring for the forms)."""
    out = _USERINFO.sub(_userinfo, str(text))
    out = _QUERY.sub(r"\1***", out)
    return _PROPERTY.sub(r"\1***", out)


class RedactingFilter(logging.Filter):
    """A logging filter that passes every record through :func:`redact` (installed on the CLI's handlers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True
