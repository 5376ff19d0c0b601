"""MJPEG viewers for ``python -m bench serve``, in a process of their own (as browsers would be): N connections to
a browser view's ``/stream.mjpg`` that read every part as fast as it comes, and S that connect and never read.

    python bench/mjpeg_readers.py URL N [S]

Prints ``CONNECTED`` once every connection has its response header, then, when the server ends the streams (or
after --max-s), one JSON line: per reader the parts and bytes it got and the frame numbers it saw first and last,
and this process's CPU seconds. Standard library only (asyncio streams).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import socket
import sys
from urllib.parse import urlsplit


async def _open(host: str, port: int, path: str, rcvbuf: int | None = None):
    sock = socket.create_connection((host, port))
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 22)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    await writer.drain()
    status = await reader.readline()
    if b" 200 " not in status:
        raise RuntimeError(f"{path}: {status.decode(errors='replace').strip()}")
    await reader.readuntil(b"\r\n\r\n")
    return reader, writer


async def _read(reader) -> dict:
    got = {"parts": 0, "bytes": 0, "first_seq": None, "last_seq": None}
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return got
        fields = dict(line.split(b": ", 1) for line in head.split(b"\r\n") if b": " in line)
        if b"Content-Length" not in fields:  # the closing boundary
            return got
        n = int(fields[b"Content-Length"])
        try:
            await reader.readexactly(n + 2)
        except (asyncio.IncompleteReadError, ConnectionError):
            return got
        seq = int(fields.get(b"X-Frame-Seq", b"0"))
        got["parts"] += 1
        got["bytes"] += n
        got["first_seq"] = seq if got["first_seq"] is None else got["first_seq"]
        got["last_seq"] = seq


async def main_async(url: str, n: int, stalled: int, max_s: float) -> dict:
    u = urlsplit(url)
    path = "/stream.mjpg" + (f"?{u.query}" if u.query else "")
    readers = [await _open(u.hostname, u.port, path) for _ in range(n)]
    idle = [await _open(u.hostname, u.port, path, rcvbuf=4096) for _ in range(stalled)]
    sys.stdout.write("CONNECTED\n")
    sys.stdout.flush()
    try:
        got = await asyncio.wait_for(asyncio.gather(*(_read(r) for r, _ in readers)), max_s)
    finally:
        for _, w in readers + idle:
            w.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"readers": got, "stalled": stalled, "cpu_s": round(usage.ru_utime + usage.ru_stime, 3)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("url")
    ap.add_argument("n", type=int)
    ap.add_argument("stalled", type=int, nargs="?", default=0)
    ap.add_argument("--max-s", type=float, default=600.0)
    args = ap.parse_args()
    sys.stdout.write(json.dumps(asyncio.run(main_async(args.url, args.n, args.stalled, args.max_s))) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
