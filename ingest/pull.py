"""Durable pull consumers and the fetch loop that feeds a handler.

``ensure_consumer`` creates (or updates in place) a durable pull consumer
with explicit acks, unlimited redeliveries (a database outage must never
make JetStream drop a batch) and the configured ack wait. ``PullLoop`` binds
its own subscription to it (replicas and workers each bind one; JetStream
spreads messages over them), fetches up to ``batch`` messages at a time and
hands each non-empty fetch to a ``FetchHandler``.

Stopping: ``stop()`` makes the loop leave after the fetch in hand is handled
(written, acked or nak'ed): nothing half-done is abandoned.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from shared.log import get_logger

log = get_logger(__name__)


class FetchHandler(Protocol):
    """Takes one fetch; must ack, nak or term every message before returning.

    Returns seconds to pause before the next fetch (0 when all went well).
    Must not raise: a failure is nak'ed and reported as a pause.
    """

    async def __call__(self, msgs: list[Msg]) -> float: ...


async def ensure_consumer(
    js: JetStreamContext,
    *,
    stream: str,
    durable: str,
    subject: str,
    ack_wait: float,
    max_ack_pending: int,
) -> None:
    """Create or update the durable pull consumer ``durable`` on ``stream``."""
    config = ConsumerConfig(
        durable_name=durable,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        filter_subject=subject,
        ack_wait=ack_wait,
        max_deliver=-1,
        max_ack_pending=max_ack_pending,
        max_waiting=512,
    )
    await js.add_consumer(stream, config)


class PullLoop:
    """Fetch-and-handle until stopped; one per worker."""

    def __init__(
        self,
        js: JetStreamContext,
        *,
        stream: str,
        durable: str,
        batch: int,
        timeout: float,
        handler: FetchHandler,
    ) -> None:
        self._js = js
        self._stream = stream
        self._durable = durable
        self._batch = batch
        self._timeout = timeout
        self._handler = handler
        self._stopping = asyncio.Event()
        self.running = False

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        psub: JetStreamContext.PullSubscription | None = None
        failing = False
        while not self._stopping.is_set():
            try:
                if psub is None:
                    psub = await self._js.pull_subscribe_bind(self._durable, self._stream)
                msgs = await psub.fetch(self._batch, timeout=self._timeout)
            except nats.errors.TimeoutError:
                self.running = True
                continue
            except Exception as exc:  # noqa: BLE001 - NATS trouble: wait and try again
                if not failing:
                    log.warning(
                        "cannot fetch from consumer: retrying",
                        stream=self._stream,
                        consumer=self._durable,
                        error=str(exc) or type(exc).__name__,
                    )
                    failing = True
                await self._pause(1.0)
                continue
            if failing:
                log.info("fetching again", stream=self._stream, consumer=self._durable)
                failing = False
            self.running = True
            pause = await self._handler(msgs)
            if pause > 0:
                await self._pause(pause)
        if psub is not None:
            with contextlib.suppress(Exception):
                await psub.unsubscribe()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
