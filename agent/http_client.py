"""A tiny HTTP/1.1 client on asyncio streams, for the agent's scrapes and probes.

The agent installs no HTTP library (httpx and aiohttp are server-side
dependencies), and what it needs is small: one request per connection
(``Connection: close``), a bounded body, optional TLS, optional gzip, and the
time spent in each phase (what blackbox_exporter reports as
``probe_http_duration_seconds{phase}``). ``request`` is that, and no more:

- **No timeout of its own.** Callers bound a request with
  ``async with asyncio.timeout(...)``; cancellation closes the connection.
- **No redirects, cookies, proxies or keep-alive.** A 3xx is returned as is.
- **Bounded memory.** The body (after gzip decoding) is at most
  ``max_body_bytes``; headers at most ``MAX_HEADER_BYTES``. Larger raises
  ``BodyTooLarge``.
- **Phases** (seconds, ``Response.phases``): ``resolve`` (getaddrinfo),
  ``connect`` (TCP), ``tls`` (handshake; 0 for http), ``processing`` (request
  sent to first response byte), ``transfer`` (rest of the response).

Exceptions (all raised from the underlying error with ``raise ... from``)::

    HTTPClientError           any failure of one request
    ├── ConnectError          the name does not resolve, TCP or TLS fails
    ├── ProtocolError         the response is not HTTP/1.x as we understand it
    └── BodyTooLarge          the body (or header block) exceeds its limit

A status code of 4xx or 5xx is not an error here: the caller decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

MAX_HEADER_BYTES = 64 * 1024
"""Largest status line plus header block accepted."""
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
_READ_CHUNK = 64 * 1024


class HTTPClientError(Exception):
    """One request failed; the message reads "cannot <verb> <url>: <reason>"."""


class ConnectError(HTTPClientError):
    """Resolving, connecting or the TLS handshake failed."""


class ProtocolError(HTTPClientError):
    """The peer's response is not valid HTTP/1.x (or is cut short)."""


class BodyTooLarge(HTTPClientError):
    """The response body or header block is larger than allowed."""


@dataclass(slots=True)
class TLSInfo:
    """What the TLS handshake established, captured before the connection closes."""

    version: str | None
    cipher: str | None
    peer_cert: dict[str, object] | None
    """``SSLSocket.getpeercert()``: empty when the context does not verify."""
    peer_cert_der: bytes | None
    """The leaf certificate in DER form (also available when not verified)."""


@dataclass(slots=True)
class Response:
    """A complete response. Header names are lower-case; repeated headers are joined by ", "."""

    status: int
    reason: str
    http_version: str
    headers: dict[str, str]
    body: bytes
    phases: dict[str, float] = field(default_factory=dict)
    tls: TLSInfo | None = None
    peer: tuple[str, int] | None = None
    """The address connected to (IP, port)."""


@dataclass(frozen=True, slots=True)
class Target:
    """The parts of an http(s) URL that a request needs."""

    scheme: str
    host: str
    port: int
    path: str
    """Path plus query string, as sent in the request line."""

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def hostport(self) -> str:
        """``host:port`` with the scheme's default port filled in (Prometheus' ``instance``)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_url(url: str) -> Target:
    """Split an http(s) URL; ``ValueError`` says what is wrong with it."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"cannot use URL {url!r}: scheme must be http or https")
    if not parts.hostname:
        raise ValueError(f"cannot use URL {url!r}: no host")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"cannot use URL {url!r}: {exc}") from exc
    if port is None:
        port = 443 if scheme == "https" else 80
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme, parts.hostname, port, path)


async def request(
    method: str,
    url: str | Target,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    accept_gzip: bool = False,
) -> Response:
    """Send one request and read the whole response; see the module docstring.

    ``ssl_context`` is used for https (default: ``ssl.create_default_context()``);
    ``server_hostname`` overrides the name sent in SNI and verified.
    With ``accept_gzip`` the request says ``Accept-Encoding: gzip`` and a
    gzip-encoded body is decoded (the limit applies to the decoded size).
    """
    target = parse_url(url) if isinstance(url, str) else url
    shown = url if isinstance(url, str) else f"{target.scheme}://{target.hostport}{target.path}"
    perf = time.perf_counter
    phases = dict.fromkeys(("resolve", "connect", "tls", "processing", "transfer"), 0.0)
    start = perf()
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(
            target.host, target.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except OSError as exc:
        raise ConnectError(f"cannot resolve {target.host}: {exc.strerror or exc}") from exc
    mark = perf()
    phases["resolve"] = mark - start
    reader, writer, peer = await _connect(infos, target)
    try:
        now = perf()
        phases["connect"] = now - mark
        mark = now
        tls: TLSInfo | None = None
        if target.scheme == "https":
            context = ssl_context or ssl.create_default_context()
            try:
                await writer.start_tls(context, server_hostname=server_hostname or target.host)
            except (OSError, ssl.SSLError) as exc:
                raise ConnectError(f"cannot complete TLS handshake with {shown}: {exc}") from exc
            tls = _tls_info(writer)
            now = perf()
            phases["tls"] = now - mark
            mark = now
        writer.write(_request_bytes(method, target, headers or {}, body, accept_gzip=accept_gzip))
        await writer.drain()
        head = await _read_head(reader, shown)
        now = perf()
        phases["processing"] = now - mark
        mark = now
        status, reason, version, response_headers = _parse_head(head, shown)
        raw = await _read_body(
            reader,
            method=method,
            status=status,
            headers=response_headers,
            limit=max_body_bytes,
            shown=shown,
        )
        if accept_gzip and response_headers.get("content-encoding", "").lower() == "gzip":
            raw = _gunzip(raw, max_body_bytes, shown)
        phases["transfer"] = perf() - mark
    except OSError as exc:
        raise ConnectError(f"cannot read response from {shown}: {exc.strerror or exc}") from exc
    finally:
        await _close(writer)
    return Response(status, reason, version, response_headers, raw, phases, tls, peer)


async def get(
    url: str | Target,
    *,
    headers: Mapping[str, str] | None = None,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    accept_gzip: bool = False,
) -> Response:
    """``request("GET", url, ...)``; see ``request``."""
    return await request(
        "GET",
        url,
        headers=headers,
        ssl_context=ssl_context,
        server_hostname=server_hostname,
        max_body_bytes=max_body_bytes,
        accept_gzip=accept_gzip,
    )


async def _close(writer: asyncio.StreamWriter) -> None:
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        # The caller's timeout fired: drop the connection now, no goodbye to wait for.
        writer.transport.abort()
        return
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError):  # TimeoutError is an OSError
        async with asyncio.timeout(1):
            await writer.wait_closed()


async def _connect(
    infos: Sequence[tuple[Any, ...]],
    target: Target,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, tuple[str, int]]:
    last: OSError | None = None
    for family, _type, proto, _canon, addr in infos:
        try:
            reader, writer = await asyncio.open_connection(
                addr[0], addr[1], family=family, proto=proto, limit=MAX_HEADER_BYTES
            )
        except OSError as exc:
            last = exc
            continue
        return reader, writer, (str(addr[0]), int(addr[1]))
    reason = (last.strerror or str(last)) if last is not None else "no address"
    raise ConnectError(f"cannot connect to {target.hostport}: {reason}") from last


def _tls_info(writer: asyncio.StreamWriter) -> TLSInfo | None:
    obj = writer.get_extra_info("ssl_object")
    if not isinstance(obj, ssl.SSLObject):
        return None
    cipher = obj.cipher()
    return TLSInfo(
        version=obj.version(),
        cipher=cipher[0] if cipher else None,
        peer_cert=dict(obj.getpeercert() or {}) or None,
        peer_cert_der=obj.getpeercert(binary_form=True),
    )


def _request_bytes(
    method: str, target: Target, headers: Mapping[str, str], body: bytes, *, accept_gzip: bool
) -> bytes:
    lines = [f"{method} {target.path} HTTP/1.1", f"Host: {target.host_header}"]
    given = {k.lower() for k in headers}
    if "user-agent" not in given:
        lines.append("User-Agent: Vigil-Agent/0.1")
    if accept_gzip and "accept-encoding" not in given:
        lines.append("Accept-Encoding: gzip")
    for name, value in headers.items():
        if "\r" in name or "\n" in name or "\r" in value or "\n" in value:
            raise ValueError(f"cannot send header {name!r}: it contains a line break")
        lines.append(f"{name}: {value}")
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def _read_head(reader: asyncio.StreamReader, shown: str) -> bytes:
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            raise ProtocolError(f"cannot read response from {shown}: connection closed") from exc
        raise ProtocolError(
            f"cannot read response from {shown}: connection closed within the headers"
        ) from exc
    except asyncio.LimitOverrunError as exc:
        raise BodyTooLarge(
            f"cannot read response from {shown}: headers longer than {MAX_HEADER_BYTES} bytes"
        ) from exc


def _parse_head(head: bytes, shown: str) -> tuple[int, str, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ProtocolError(f"cannot read response from {shown}: bad status line {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ProtocolError(f"cannot read response from {shown}: bad header line {line[:80]!r}")
        key = name.strip().lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return int(parts[1]), parts[2] if len(parts) > 2 else "", parts[0], headers


async def _read_body(
    reader: asyncio.StreamReader,
    *,
    method: str,
    status: int,
    headers: Mapping[str, str],
    limit: int,
    shown: str,
) -> bytes:
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return b""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return await _read_chunked(reader, limit, shown)
    length = headers.get("content-length")
    if length is not None:
        if not length.strip().isdigit():
            raise ProtocolError(f"cannot read response from {shown}: bad Content-Length {length!r}")
        size = int(length)
        if size > limit:
            raise BodyTooLarge(
                f"cannot read response from {shown}: body of {size} bytes exceeds the limit of {limit}"
            )
        try:
            return await reader.readexactly(size)
        except asyncio.IncompleteReadError as exc:
            raise ProtocolError(
                f"cannot read response from {shown}: body cut short at {len(exc.partial)} of {size} bytes"
            ) from exc
    out = bytearray()  # neither: the body ends when the server closes the connection
    while chunk := await reader.read(_READ_CHUNK):
        out += chunk
        if len(out) > limit:
            raise BodyTooLarge(
                f"cannot read response from {shown}: body exceeds the limit of {limit} bytes"
            )
    return bytes(out)


async def _read_chunked(reader: asyncio.StreamReader, limit: int, shown: str) -> bytes:
    out = bytearray()
    try:
        while True:
            line = await reader.readuntil(b"\r\n")
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError as exc:
                raise ProtocolError(
                    f"cannot read response from {shown}: bad chunk size {size_text[:20]!r}"
                ) from exc
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers, ignored
                return bytes(out)
            if len(out) + size > limit:
                raise BodyTooLarge(
                    f"cannot read response from {shown}: body exceeds the limit of {limit} bytes"
                )
            out += await reader.readexactly(size)
            if await reader.readexactly(2) != b"\r\n":
                raise ProtocolError(f"cannot read response from {shown}: bad chunk terminator")
    except asyncio.IncompleteReadError as exc:
        raise ProtocolError(
            f"cannot read response from {shown}: connection closed within a chunk"
        ) from exc
    except asyncio.LimitOverrunError as exc:
        raise ProtocolError(f"cannot read response from {shown}: chunk header too long") from exc


def _gunzip(data: bytes, limit: int, shown: str) -> bytes:
    decoder = zlib.decompressobj(wbits=31)
    try:
        out = decoder.decompress(data, limit + 1)
    except zlib.error as exc:
        raise ProtocolError(f"cannot decode gzip body from {shown}: {exc}") from exc
    if len(out) > limit:
        raise BodyTooLarge(
            f"cannot read response from {shown}: decoded body exceeds the limit of {limit} bytes"
        )
    return out
