"""The web service's link to NATS, made in the background like its database pool.

``WebBus.start()`` returns at once; a task connects (``shared.bus.connect``),
binds the KV buckets ``alert_state``, ``agents`` and ``silences`` and starts a
``SilenceStore`` on the last, retrying every ``RETRY_S`` until all of it works
(NATS down, or the buckets not yet provisioned by the alerter and notifier).
Until then ``WebBus.require()`` raises ``BusUnavailable``, which the alerting
endpoints answer with 503 ``unavailable``; the rest of web does not notice. Once
connected, nats-py reconnects by itself and the KV handles stay valid.

Errors::

    VigilError
    └── BusUnavailable   NATS or a bucket is not reachable (yet): HTTP 503
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from nats.aio.client import Client
from nats.js.kv import KeyValue

from shared.alertmanager.silences import SilenceStore
from shared.bus.connect import connect
from shared.config.models import NatsConfig
from shared.errors import VigilError
from shared.log import get_logger
from shared.wire import Names

log = get_logger(__name__)

RETRY_S = 2.0
"""Pause between two attempts to connect and bind the buckets."""


class BusUnavailable(VigilError):
    """NATS, or one of the KV buckets web reads, is not reachable (yet)."""


@dataclass(frozen=True, slots=True)
class Buckets:
    """The KV buckets web reads (``alert_state``, ``agents``) and the silences it writes."""

    alert_state: KeyValue
    agents: KeyValue
    silences: SilenceStore


def _utc_now() -> datetime:
    return datetime.now(UTC)


class WebBus:
    """Connects in the background; ``require()`` gives the buckets once it has."""

    def __init__(
        self,
        cfg: NatsConfig,
        *,
        base_dir: Path | None = None,
        clock: Callable[[], datetime] = _utc_now,
        retry_s: float = RETRY_S,
    ) -> None:
        self.cfg = cfg
        self.base_dir = base_dir
        self.names = Names(cfg.prefix)
        self.retry_s = retry_s
        self.silences = SilenceStore(self.names, clock)
        self._nc: Client | None = None
        self._buckets: Buckets | None = None
        self._task: asyncio.Task[None] | None = None
        self._error = "not connected yet"
        self.connected = asyncio.Event()

    def require(self) -> Buckets:
        """The buckets; ``BusUnavailable`` (naming why) until they are bound."""
        if self._buckets is None:
            raise BusUnavailable(
                f"cannot read alerting state: NATS is not available ({self._error})"
            )
        return self._buckets

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.silences.stop()
        self._buckets = None
        if self._nc is not None:
            nc, self._nc = self._nc, None
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await nc.close()

    async def _run(self) -> None:
        failing = False
        while self._buckets is None:
            try:
                await self._attempt()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - nats-py raises many kinds; all mean "retry"
                self._error = str(exc) or type(exc).__name__
                if not failing:
                    log.warning("cannot reach NATS, retrying", error=self._error)
                    failing = True
                await asyncio.sleep(self.retry_s)
        if failing:
            log.info("reached NATS")
        self.connected.set()

    async def _attempt(self) -> None:
        if self._nc is None:
            self._nc = await connect(self.cfg, name="vigil-web", base_dir=self.base_dir)
        js = self._nc.jetstream()
        state = await js.key_value(self.names.kv_alert_state)
        agents = await js.key_value(self.names.kv_agents)
        silences = await js.key_value(self.names.kv_silences)
        await self.silences.start(js, silences)
        self._buckets = Buckets(state, agents, self.silences)
