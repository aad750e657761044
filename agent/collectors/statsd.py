"""``custom`` collector of kind ``statsd``: a StatsD/DogStatsD UDP listener on loopback.

Applications send ``name:value|type`` datagrams; each cycle returns the
aggregated state (see ``agent.collectors.statsd_state`` for the line syntax,
what each type becomes, expiry and limits). Sample config::

    collectors:
      - type: custom
        name: statsd
        interval: 10
        options:
          kind: statsd
          listen: 127.0.0.1:8125
          ttl: 5m
          max_series: 10000
          timer_buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]  # seconds
          histogram_buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

The socket is bound by the first ``collect`` (or ``start``), not when the
collector is built: ``--check-config`` then binds nothing, and on reload the
old collector has released the port before the new one binds it. Datagrams
sent before that are lost. A bind that fails (port taken) fails the cycle
and is retried the next one. ``port`` is the bound port (``listen`` may say
port 0). The listen address must be a loopback one unless
``allow_non_loopback`` is set: StatsD has no authentication.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from agent.collectors.base import Sample
from agent.collectors.statsd_state import DEFAULT_BUCKETS, StatsdState
from shared.config.models import CollectorConfig
from shared.duration import Duration
from shared.hosts import is_loopback
from shared.log import get_logger

log = get_logger(__name__)


def split_listen(listen: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port``) as (host, port); ``ValueError`` if malformed."""
    host, sep, port = listen.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected host:port, got {listen!r}")
    return host, int(port)


def check_listen(listen: str, allow_non_loopback: bool) -> None:
    """``ValueError`` unless ``listen`` is host:port on loopback (or remote is allowed)."""
    host, _port = split_listen(listen)
    if not allow_non_loopback and not is_loopback(host):
        raise ValueError(
            f"listen address {listen!r} is not a loopback address; set allow_non_loopback: true "
            "to accept unauthenticated traffic from the network"
        )


def _sorted_buckets(v: list[float]) -> list[float]:
    if not v or sorted(set(v)) != v:
        raise ValueError("buckets must be a non-empty, strictly increasing list")
    return v


class StatsdOptions(BaseModel):
    """``options`` of a ``custom`` collector of kind ``statsd``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["statsd"] = "statsd"
    listen: str = Field(default="127.0.0.1:8125", description="UDP host:port to listen on.")
    allow_non_loopback: bool = Field(
        default=False, description="Allow a listen address other than loopback."
    )
    ttl: Duration = Field(default=300.0, gt=0, description="A series not updated this long ends.")
    max_series: int = Field(default=10_000, ge=1, description="Series kept at most.")
    timer_buckets: list[float] = Field(
        default_factory=lambda: list(DEFAULT_BUCKETS),
        description="Histogram buckets of timers (ms lines), in seconds.",
    )
    histogram_buckets: list[float] = Field(
        default_factory=lambda: list(DEFAULT_BUCKETS),
        description="Histogram buckets of h and d lines, in the unit sent.",
    )

    @field_validator("timer_buckets", "histogram_buckets")
    @classmethod
    def _increasing(cls, v: list[float]) -> list[float]:
        return _sorted_buckets(v)

    @model_validator(mode="after")
    def _loopback(self) -> StatsdOptions:
        check_listen(self.listen, self.allow_non_loopback)
        return self


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, state: StatsdState, clock: Callable[[], float]) -> None:
        self.state = state
        self.clock = clock

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.state.feed(data.decode("utf-8", "replace"), self.clock())

    def error_received(self, exc: Exception) -> None:
        log.debug("statsd socket error", reason=str(exc))


class StatsdCollector:
    """Listens on ``options.listen`` from the first ``collect``; see the module docstring."""

    def __init__(
        self,
        options: StatsdOptions,
        *,
        name: str = "statsd",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.options = options
        self.name = name
        self.clock = clock
        self.state = StatsdState(
            ttl=options.ttl,
            max_series=options.max_series,
            timer_buckets=options.timer_buckets,
            histogram_buckets=options.histogram_buckets,
        )
        self.port: int | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._logged_malformed = False

    async def start(self) -> None:
        """Bind the UDP socket (idempotent); ``OSError`` if it cannot be bound."""
        if self._transport is not None:
            return
        host, port = split_listen(self.options.listen)
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Protocol(self.state, self.clock), local_addr=(host, port)
            )
        except OSError as exc:
            raise OSError(
                exc.errno, f"cannot listen on udp {self.options.listen}: {exc.strerror or exc}"
            ) from exc
        self._transport = transport
        self.port = int(transport.get_extra_info("sockname")[1])
        log.info("statsd listening", collector=self.name, address=host, port=self.port)

    async def collect(self) -> list[Sample]:
        await self.start()
        if not self._logged_malformed and self.state.first_malformed is not None:
            self._logged_malformed = True
            log.warning(
                "dropping malformed statsd lines (counted in vigil_statsd_dropped_lines_total)",
                collector=self.name,
                first=self.state.first_malformed,
            )
        return self.state.samples(self.clock())

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None


def create(config: CollectorConfig) -> StatsdCollector:
    """Build the statsd collector of ``config``; ``ValueError`` names a bad option."""
    if config.targets:
        raise ValueError("the statsd collector takes no targets")
    try:
        options = StatsdOptions.model_validate(config.options)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(
            f"options{'.' + where if where else ''}: {first['msg'].removeprefix('Value error, ')}"
        ) from exc
    return StatsdCollector(options, name=config.effective_name)
