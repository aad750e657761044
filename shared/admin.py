"""A small HTTP server for every service's own endpoints.

``/metrics`` (Prometheus text format), ``/healthz`` (the process is alive),
``/readyz`` (the service says it can do its job) and ``POST /-/reload``.
Services without a web framework (the agent: it goes on every host and must
stay light) get these with nothing but asyncio; services that have one may
mount the same handlers. Requests are small and one per connection: this is
an operations port, not an API server.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from shared.config.reload import Reloader
from shared.log import get_logger

log = get_logger(__name__)

MAX_HEADER_BYTES = 16 * 1024
MAX_BODY_BYTES = 64 * 1024
READ_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"


Handler = Callable[[bytes], Awaitable[Response]]

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass
class AdminServer:
    """Serves the operations endpoints on ``host:port`` (port 0 picks one; see ``.port``)."""

    host: str = "127.0.0.1"
    port: int = 0
    registry: CollectorRegistry = REGISTRY
    ready: Callable[[], bool] = lambda: True
    reloader: Reloader | None = None
    routes: dict[tuple[str, str], Handler] = field(default_factory=dict)
    _server: asyncio.Server | None = None

    def __post_init__(self) -> None:
        self.routes.setdefault(("GET", "/metrics"), self._metrics)
        self.routes.setdefault(("GET", "/healthz"), self._healthz)
        self.routes.setdefault(("GET", "/readyz"), self._readyz)
        self.routes.setdefault(("POST", "/-/reload"), self._reload)
        self.routes.setdefault(("PUT", "/-/reload"), self._reload)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _metrics(self, _body: bytes) -> Response:
        return Response(200, generate_latest(self.registry), CONTENT_TYPE_LATEST)

    async def _healthz(self, _body: bytes) -> Response:
        return Response(200, b"ok\n")

    async def _readyz(self, _body: bytes) -> Response:
        return Response(200, b"ready\n") if self.ready() else Response(503, b"not ready\n")

    async def _reload(self, _body: bytes) -> Response:
        if self.reloader is None:
            return Response(404, b"reload is not supported by this service\n")
        outcome = await self.reloader.reload()
        if outcome.ok:
            return Response(200, b"configuration reloaded\n")
        return Response(500, f"{outcome.error}\n".encode())

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(READ_TIMEOUT_S):
                response = await self._respond(reader)
        except (
            TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ConnectionError,
        ):
            response = Response(400, b"bad request\n")
        except Exception as exc:  # noqa: BLE001 - one bad request never stops the server
            log.error("cannot answer admin request", error=str(exc))
            response = Response(500, b"internal error\n")
        head = (
            f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Unknown')}\r\n"
            f"Content-Type: {response.content_type}\r\nContent-Length: {len(response.body)}\r\n"
            "Connection: close\r\n\r\n"
        )
        with contextlib.suppress(ConnectionError):
            writer.write(head.encode("latin-1") + response.body)
            await writer.drain()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()

    async def _respond(self, reader: asyncio.StreamReader) -> Response:
        raw = await reader.readuntil(b"\r\n\r\n")
        if len(raw) > MAX_HEADER_BYTES:
            return Response(413, b"headers too large\n")
        lines = raw.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            return Response(400, b"bad request line\n")
        method, target, _version = parts
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                if not value.strip().isdigit():
                    return Response(400, b"bad content-length\n")
                length = int(value.strip())
        if length > MAX_BODY_BYTES:
            return Response(413, b"body too large\n")
        body = await reader.readexactly(length) if length else b""
        path = target.split("?", 1)[0]
        handler = self.routes.get((method, path))
        if handler is None:
            if any(p == path for _m, p in self.routes):
                return Response(405, b"method not allowed\n")
            return Response(404, b"not found\n")
        return await handler(body)
