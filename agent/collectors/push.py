"""``custom`` collector of kind ``push``: a Pushgateway-style HTTP endpoint on loopback.

Batch jobs push Prometheus text (format 0.0.4) the way they push to a
Pushgateway, and each cycle returns what is stored::

    PUT    /metrics/job/<job>[/<label>/<value>...]   replace the group
    POST   /metrics/job/<job>[/<label>/<value>...]   replace the pushed families in the group
    DELETE /metrics/job/<job>[/<label>/<value>...]   remove the group

Path segments are URL-decoded; ``<label>@base64`` takes a base64url value
(the Pushgateway's form for values with ``/``). Answers: 200 (PUT, POST),
202 (DELETE), 400 with the parser's or the store's message (nothing stored),
404/405 for other paths and methods, 411 for a chunked body, 413 past
``max_body_bytes``, 415 for protobuf bodies. Group semantics, the expiry
(``ttl``, the Pushgateway's missing TTL) and limits are in
``agent.collectors.push_store``. Sample config::

    collectors:
      - type: custom
        name: push
        interval: 10
        options:
          kind: push
          listen: 127.0.0.1:9091
          ttl: 1h                  # 0: keep groups until deleted
          max_body_bytes: 4194304
          max_series: 10000
          persistence_file: /var/lib/vigil/push.json   # optional: survive restarts

    # from a cron job:
    #   echo 'backup_last_success_seconds 1.7e9' |
    #     curl --data-binary @- http://127.0.0.1:9091/metrics/job/backup/db/main

The listener starts on the first ``collect`` (or ``start``), like the statsd
one (see ``agent.collectors.statsd``); ``port`` is the bound port. One
request per connection; bodies are parsed in a worker thread. Without
``persistence_file`` the groups live in memory: an agent restart or a
config reload (which rebuilds collectors) forgets them until the jobs push
again. With it they are written after every change and read back at start
(``agent.collectors.push_persist``); an unreadable file is logged and the
endpoint starts empty.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agent.collectors import push_persist
from agent.collectors.base import Sample
from agent.collectors.exec_formats import ExpositionError, parse_families
from agent.collectors.push_store import PushRejected, PushStore
from agent.collectors.statsd import check_listen, split_listen
from shared.config.models import CollectorConfig
from shared.duration import Duration
from shared.log import get_logger
from shared.wire import LABEL_NAME_RE

log = get_logger(__name__)

READ_TIMEOUT_S: Final = 30.0
LINGER_S: Final = 1.0
"""How long unread input is discarded after an answer, before the connection closes."""
MAX_HEADER_BYTES: Final = 16 * 1024
_PREFIX: Final = "/metrics/job/"
_REASONS: Final = {
    100: "Continue",
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
}


class PushOptions(BaseModel):
    """``options`` of a ``custom`` collector of kind ``push``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["push"] = "push"
    listen: str = Field(default="127.0.0.1:9091", description="TCP host:port to listen on.")
    allow_non_loopback: bool = Field(
        default=False, description="Allow a listen address other than loopback."
    )
    ttl: Duration = Field(
        default=3600.0, description="A group not pushed to this long is dropped; 0: never."
    )
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1, description="Largest body taken.")
    max_series: int = Field(default=10_000, ge=1, description="Series stored at most, all groups.")
    persistence_file: Path | None = Field(
        default=None,
        description="JSON file keeping the groups across restarts and reloads (written after "
        "each change); unset: kept in memory only.",
    )

    @model_validator(mode="after")
    def _loopback(self) -> PushOptions:
        check_listen(self.listen, self.allow_non_loopback)
        return self


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes = b""


class BadRequest(Exception):
    """The request is refused with ``status``; the message is the body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def grouping_labels(path: str) -> dict[str, str]:
    """The grouping key of a ``/metrics/job/...`` path; ``BadRequest`` (400/404) if malformed."""
    if not path.startswith(_PREFIX):
        raise BadRequest(404, "not found; push to /metrics/job/<job>[/<label>/<value>...]")
    parts = [unquote(p) for p in path[len(_PREFIX) :].split("/")]
    if parts and parts[-1] == "" and len(parts) % 2 == 0:
        parts.pop()  # a trailing slash
    pairs = ["job", *parts]
    if len(pairs) % 2:
        raise BadRequest(400, "grouping key has a label without a value")
    labels: dict[str, str] = {}
    for name, value in zip(pairs[::2], pairs[1::2], strict=True):
        label, text = name, value
        if name.endswith("@base64"):
            label = name.removesuffix("@base64")
            text = _b64(value)
        if not LABEL_NAME_RE.fullmatch(label) or label.startswith("__"):
            raise BadRequest(400, f"invalid label name {label!r} in grouping key")
        if label in labels:
            raise BadRequest(400, f"label {label!r} appears twice in grouping key")
        labels[label] = text
    if not labels["job"]:
        raise BadRequest(400, "job name must not be empty")
    # An empty label value is no label, in a grouping key as in Prometheus.
    return {k: v for k, v in labels.items() if v}


def _b64(value: str) -> str:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(400, f"invalid base64 value {value!r} in grouping key") from exc


class PushCollector:
    """Serves the push endpoint from the first ``collect``; see the module docstring."""

    def __init__(
        self,
        options: PushOptions,
        *,
        name: str = "push",
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.options = options
        self.name = name
        self.clock = clock
        self.wall_clock = wall_clock
        self.store = PushStore(ttl=options.ttl, max_series=options.max_series)
        self.port: int | None = None
        self._server: asyncio.Server | None = None
        self._writer: asyncio.Task[None] | None = None
        self._dirty = False
        self._persist_failing = False

    async def start(self) -> None:
        """Listen (idempotent); ``OSError`` naming the address if it cannot."""
        if self._server is not None:
            return
        host, port = split_listen(self.options.listen)
        if self.options.persistence_file is not None:
            await self._load(self.options.persistence_file)
        try:
            self._server = await asyncio.start_server(
                self._handle, host, port, limit=MAX_HEADER_BYTES
            )
        except OSError as exc:
            raise OSError(
                exc.errno, f"cannot listen on tcp {self.options.listen}: {exc.strerror or exc}"
            ) from exc
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info("push endpoint listening", collector=self.name, address=host, port=self.port)

    async def collect(self) -> list[Sample]:
        await self.start()
        return self.store.samples(self.clock())

    async def close(self) -> None:
        """Stop listening, then finish writing the persistence file."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self._writer is not None:
            await self._writer
            self._writer = None

    async def _load(self, path: Path) -> None:
        try:
            groups = await asyncio.to_thread(push_persist.load, path)
        except push_persist.PersistError as exc:
            log.warning("starting with no pushed groups", collector=self.name, reason=str(exc))
            return
        self.store.restore(groups, self.clock(), self.wall_clock())
        if groups:
            log.info("pushed groups restored", collector=self.name, groups=len(self.store))

    def _changed(self) -> None:
        """Schedule a write of the persistence file; writes coalesce while one runs."""
        if self.options.persistence_file is None:
            return
        self._dirty = True
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(self.options.persistence_file))

    async def _write(self, path: Path) -> None:
        while self._dirty:
            self._dirty = False
            try:
                await asyncio.to_thread(push_persist.save, path, self.store.snapshot())
            except push_persist.PersistError as exc:
                if not self._persist_failing:
                    log.warning(
                        "cannot persist pushed groups", collector=self.name, reason=str(exc)
                    )
                    self._persist_failing = True
                return
            if self._persist_failing:
                log.info("pushed groups persisted again", collector=self.name)
                self._persist_failing = False

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(READ_TIMEOUT_S):
                response = await self._respond(reader, writer)
        except BadRequest as exc:
            response = Response(exc.status, f"{exc}\n".encode())
        except (
            TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,  # headers beyond MAX_HEADER_BYTES
            ConnectionError,
        ):
            response = Response(400, b"bad request\n")
        except Exception as exc:  # noqa: BLE001 - one bad request never stops the endpoint
            log.error("cannot answer push request", collector=self.name, error=str(exc))
            response = Response(500, b"internal error\n")
        with contextlib.suppress(ConnectionError):
            writer.write(_head(response.status, len(response.body)) + response.body)
            await writer.drain()
        await _linger(reader, writer)
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()

    async def _respond(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> Response:
        method, target, headers = await _request_head(reader)
        labels = grouping_labels(target.split("?", 1)[0])
        if method == "DELETE":
            if self.store.delete(labels):
                self._changed()
            return Response(202)
        if method not in ("PUT", "POST"):
            raise BadRequest(405, f"method {method} not allowed; use PUT, POST or DELETE")
        body = await self._body(reader, writer, headers)
        try:
            text = body.decode("utf-8")
            families = await asyncio.to_thread(parse_families, text)
        except (UnicodeDecodeError, ExpositionError) as exc:
            raise BadRequest(400, str(exc)) from None
        try:
            if method == "PUT":
                self.store.put(labels, families, self.clock(), self.wall_clock())
            else:
                self.store.post(labels, families, self.clock(), self.wall_clock())
        except PushRejected as exc:
            raise BadRequest(400, str(exc)) from None
        self._changed()
        return Response(200)

    async def _body(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, headers: dict[str, str]
    ) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            raise BadRequest(411, "send a Content-Length, not a chunked body")
        if "protobuf" in headers.get("content-type", ""):
            raise BadRequest(415, "only the Prometheus text format is accepted")
        length_text = headers.get("content-length", "0")
        if not length_text.isdigit():
            raise BadRequest(400, "bad Content-Length")
        length = int(length_text)
        if length > self.options.max_body_bytes:
            raise BadRequest(
                413,
                f"body of {length} bytes exceeds max_body_bytes ({self.options.max_body_bytes})",
            )
        if not length:
            return b""
        if headers.get("expect", "").lower() == "100-continue":
            writer.write(_head(100, None))
            await writer.drain()
        return await reader.readexactly(length)


async def _request_head(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str]]:
    """Method, target and lower-cased headers of one request."""
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise BadRequest(400, "bad request line")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return parts[0], parts[1], headers


async def _linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Half-close, then discard what the client still sends (briefly).

    Closing a socket with unread input makes the kernel answer with a reset,
    which can destroy the response before the client reads it (a refused
    body, a 413). A well-behaved client closes on our FIN at once.
    """
    with contextlib.suppress(ConnectionError, TimeoutError, OSError):
        if writer.can_write_eof():
            writer.write_eof()
        async with asyncio.timeout(LINGER_S):
            while await reader.read(65536):
                pass


def _head(status: int, length: int | None) -> bytes:
    head = f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\n"
    if length is not None:
        head += (
            f"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {length}\r\n"
            "Connection: close\r\n"
        )
    return (head + "\r\n").encode("latin-1")


def create(config: CollectorConfig) -> PushCollector:
    """Build the push collector of ``config``; ``ValueError`` names a bad option."""
    if config.targets:
        raise ValueError("the push collector takes no targets")
    try:
        options = PushOptions.model_validate(config.options)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(
            f"options{'.' + where if where else ''}: {first['msg'].removeprefix('Value error, ')}"
        ) from exc
    return PushCollector(options, name=config.effective_name)
