"""``agent.http_client`` (the scrape collector's HTTP/1.1 client) against raw servers on 127.0.0.1.

Each server answers every connection with fixed bytes, so malformed and
cut-short responses are exact.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from agent import http_client
from agent.http_client import BodyTooLarge, ProtocolError, parse_url

Serve = Callable[[bytes], Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """``await serve(raw)``: a server that reads the request, writes ``raw``, closes; its URL."""
    servers: list[asyncio.Server] = []
    requests: list[bytes] = []

    async def start(raw: bytes) -> str:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                requests.append(await reader.readuntil(b"\r\n\r\n"))
                writer.write(raw)
                await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/path?q=1"

    start.requests = requests  # type: ignore[attr-defined]
    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def test_content_length_response_with_phases_headers_and_request_line(serve: Serve) -> None:
    url = await serve(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nX-A: 2\r\n\r\nhello")

    response = await http_client.get(url, headers={"Accept": "text/plain"})

    assert (response.status, response.reason, response.body) == (200, "OK", b"hello")
    assert response.headers["x-a"] == "1, 2"
    assert set(response.phases) == {"resolve", "connect", "tls", "processing", "transfer"}
    assert all(v >= 0 for v in response.phases.values())
    assert response.tls is None
    assert response.peer is not None
    assert response.peer[0] == "127.0.0.1"
    request = serve.requests[0].decode()  # type: ignore[attr-defined]
    assert request.startswith("GET /path?q=1 HTTP/1.1\r\n")
    assert "\r\nAccept: text/plain\r\n" in request
    assert "\r\nConnection: close\r\n" in request


async def test_chunked_body_with_extensions_and_trailers(serve: Serve) -> None:
    url = await serve(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    assert (await http_client.get(url)).body == b"abcde"


async def test_body_until_close_and_head_and_204_without_body(serve: Serve) -> None:
    url = await serve(b"HTTP/1.0 200 OK\r\n\r\nall of it")
    assert (await http_client.get(url)).body == b"all of it"
    url = await serve(b"HTTP/1.1 204 No Content\r\n\r\n")
    assert (await http_client.request("HEAD", url)).status == 204


async def test_gzip_body_is_decoded_within_the_limit(serve: Serve) -> None:
    packed = gzip.compress(b"x" * 5000)
    head = f"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {len(packed)}\r\n\r\n"
    url = await serve(head.encode() + packed)

    assert (await http_client.get(url, accept_gzip=True)).body == b"x" * 5000
    with pytest.raises(BodyTooLarge, match="decoded body exceeds the limit of 100"):
        await http_client.get(url, accept_gzip=True, max_body_bytes=100)
    assert (await http_client.get(url)).body == packed  # not asked for: left alone


@pytest.mark.parametrize(
    ("raw", "error", "message"),
    [
        (b"", ProtocolError, "connection closed"),
        (b"HTTP/1.1 200 OK\r\nContent-", ProtocolError, "within the headers"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", ProtocolError, "bad status line"),
        (b"HTTP/1.1 200 OK\r\nbroken\r\n\r\n", ProtocolError, "bad header line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", ProtocolError, "cut short"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", ProtocolError, "bad Content-Length"),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            ProtocolError,
            "chunk size",
        ),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 99999\r\n\r\n", BodyTooLarge, "exceeds the limit"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70000 + b"\r\n\r\n", BodyTooLarge, "headers longer"),
    ],
)
async def test_bad_responses_raise_named_errors(
    serve: Serve, raw: bytes, error: type[Exception], message: str
) -> None:
    url = await serve(raw)
    with pytest.raises(error, match=message):
        await http_client.get(url, max_body_bytes=1000)


def test_parse_url_fills_default_ports_and_rejects_other_schemes() -> None:
    assert parse_url("https://example.org").hostport == "example.org:443"
    assert parse_url("https://example.org").path == "/"
    assert parse_url("http://[::1]:8080/x?y=1").host_header == "[::1]:8080"
    assert parse_url("http://example.org:80/").host_header == "example.org"
    for bad, message in [
        ("ftp://h/", "scheme"),
        ("http:///x", "no host"),
        ("http://h:99999/", "out of range"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_url(bad)


async def test_header_with_a_line_break_is_refused(serve: Serve) -> None:
    url = await serve(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    with pytest.raises(ValueError, match="line break"):
        await http_client.get(url, headers={"X": "a\r\nInjected: 1"})
