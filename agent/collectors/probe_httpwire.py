"""HTTP/1.1 framing for the http prober: write one request, read one response.

``build_request`` writes a request that closes its connection
(``Connection: close``); ``read_response`` reads a response framed by
Content-Length, chunked transfer coding or the connection's end, skipping
interim (1xx) responses, counting the body (decoded when asked: gzip,
deflate) and keeping it only when a check needs it. Failures are the probe's:
``ProbeFailed`` naming what was malformed.
"""

from __future__ import annotations

import asyncio
import base64
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from agent.collectors.probe_base import ProbeFailed

MAX_HEADER_BYTES = 1 << 20
_CHUNK = 65536
_FRAMING = frozenset({"Connection", "Content-Length", "Transfer-Encoding"})


@dataclass
class Response:
    """The parts of a response the checks read; ``body`` only when asked to keep it.

    ``content_length`` is -1 without a Content-Length header (Go's convention);
    ``first_byte`` and ``done`` are ``time.perf_counter()`` readings.
    """

    version: str
    status: int
    headers: list[tuple[str, str]]
    content_length: int
    body_length: int
    body: bytes
    first_byte: float
    done: float
    tls: bool = False

    def header(self, name: str) -> list[str]:
        key = name.lower()
        return [v for k, v in self.headers if k.lower() == key]


def build_request(
    method: str,
    url: str,
    body: str | None,
    headers: Mapping[str, str],
    *,
    accept_encoding: str = "",
    user_agent: str,
) -> bytes:
    """The request bytes; ``headers`` win over ours except framing (``Host`` too)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    userinfo, _, hostport = netloc.rpartition("@")
    out: dict[str, str] = {"Host": hostport, "User-Agent": user_agent}
    if userinfo:  # as Go's client: credentials in the URL become Basic authentication
        user, _, password = userinfo.partition(":")
        token = f"{unquote(user)}:{unquote(password)}".encode()
        out["Authorization"] = "Basic " + base64.b64encode(token).decode()
    if accept_encoding:
        out["Accept-Encoding"] = accept_encoding
    for key, value in headers.items():
        canonical = "-".join(p.capitalize() for p in key.split("-"))
        if canonical not in _FRAMING:  # framing stays ours
            out[canonical] = value
    payload = (body or "").encode()
    if body is not None or method in ("POST", "PUT", "PATCH"):
        out["Content-Length"] = str(len(payload))
    out["Connection"] = "close"
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in out.items())
    return head.encode("latin-1", "replace") + b"\r\n" + payload


async def read_response(
    reader: asyncio.StreamReader, method: str, *, keep_body: bool, decode: str, limit: int
) -> Response:
    """The response to a ``method`` request; ``decode`` a Content-Encoding to undo ("": none),
    ``limit`` the most body bytes read (0: no limit)."""
    first_byte = 0.0
    while True:
        line = await reader.readline()
        first_byte = first_byte or time.perf_counter()
        if not line:
            raise ProbeFailed("cannot read response: connection closed before a status line")
        status_parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        if len(status_parts) < 2 or not status_parts[0].startswith("HTTP/"):
            raise ProbeFailed(f"cannot read response: malformed status line {line[:80]!r}")
        version = status_parts[0]
        try:
            status = int(status_parts[1])
        except ValueError as exc:
            raise ProbeFailed(f"cannot read response: malformed status line {line[:80]!r}") from exc
        headers = await _read_headers(reader)
        if 100 <= status < 200 and status != 101:
            continue  # interim response (100 Continue, 103 Early Hints): the real one follows
        break
    declared = next((v for k, v in headers if k.lower() == "content-length"), None)
    chunked = any(k.lower() == "transfer-encoding" and "chunked" in v.lower() for k, v in headers)
    content_length = -1
    if declared is not None and not chunked:
        try:
            content_length = int(declared)
        except ValueError as exc:
            raise ProbeFailed(f"cannot read response: bad Content-Length {declared!r}") from exc
    no_body = method == "HEAD" or status in (204, 304) or 100 <= status < 200
    encoding = next((v.strip().lower() for k, v in headers if k.lower() == "content-encoding"), "")
    sink = _BodySink(limit, keep_body, encoding if decode else "")
    if not no_body:
        await _read_body(reader, sink, chunked=chunked, content_length=content_length)
    sink.finish()
    return Response(
        version,
        status,
        headers,
        content_length,
        sink.length,
        sink.body(),
        first_byte,
        time.perf_counter(),
    )


async def _read_body(
    reader: asyncio.StreamReader, sink: _BodySink, *, chunked: bool, content_length: int
) -> None:
    if chunked:
        await _read_chunked(reader, sink)
    elif content_length >= 0:
        remaining = content_length
        while remaining:
            data = await reader.read(min(remaining, _CHUNK))
            if not data:
                raise ProbeFailed("cannot read response: body shorter than Content-Length")
            sink.feed(data)
            remaining -= len(data)
    else:
        while data := await reader.read(_CHUNK):
            sink.feed(data)


async def _read_headers(reader: asyncio.StreamReader) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    total = 0
    while True:
        line = await reader.readline()
        total += len(line)
        if total > MAX_HEADER_BYTES:
            raise ProbeFailed("cannot read response: headers larger than 1 MiB")
        if line in (b"\r\n", b"\n", b""):
            return headers
        name, sep, value = line.decode("latin-1").partition(":")
        if sep:
            headers.append((name.strip(), value.strip()))


async def _read_chunked(reader: asyncio.StreamReader, sink: _BodySink) -> None:
    while True:
        line = await reader.readline()
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError as exc:
            raise ProbeFailed(f"cannot read response: bad chunk size {line[:40]!r}") from exc
        if size == 0:
            await _read_headers(reader)  # trailers
            return
        while size:
            data = await reader.read(min(size, _CHUNK))
            if not data:
                raise ProbeFailed("cannot read response: connection closed inside a chunk")
            sink.feed(data)
            size -= len(data)
        await reader.readexactly(2)


class _BodySink:
    """Counts (decoded) body bytes and keeps them when a regex needs them."""

    def __init__(self, limit: int, keep: bool, encoding: str) -> None:
        self.limit = limit
        self.keep = keep
        self.length = 0
        self.raw = 0
        self._parts: list[bytes] = []
        self._decoder: zlib._Decompress | None = None
        if encoding == "gzip":
            self._decoder = zlib.decompressobj(wbits=31)
        elif encoding == "deflate":
            self._decoder = zlib.decompressobj()

    def feed(self, data: bytes) -> None:
        self.raw += len(data)
        if self.limit and self.raw > self.limit:
            raise ProbeFailed(f"cannot read response: body larger than {self.limit} bytes")
        if self._decoder is not None:
            try:
                data = self._decoder.decompress(data)
            except zlib.error as exc:
                raise ProbeFailed(f"cannot decode response body: {exc}") from exc
        self._take(data)

    def finish(self) -> None:
        if self._decoder is not None:
            self._take(self._decoder.flush())

    def _take(self, data: bytes) -> None:
        self.length += len(data)
        if self.keep:
            self._parts.append(data)

    def body(self) -> bytes:
        return b"".join(self._parts)
