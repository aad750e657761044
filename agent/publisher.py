"""Encoded batches to JetStream, pipelined, with the disk spool behind it.

``submit`` (called by the batcher, never blocks) puts a batch on a small
bounded queue when NATS is connected and the spool holds nothing unread;
otherwise it appends the batch to the spool. So memory is bounded in every
state: at most ``queue_max`` queued plus ``max_inflight`` in flight, the rest
on disk (and the spool has its own cap).

``run`` keeps up to ``max_inflight`` publishes in flight (nats-py's
``publish_async``, each ack awaited with ``publish_timeout``), taking spooled
records first and queued batches after, so data goes out in order of
spooling: while the spool holds unread data, new batches are appended to it.
The exception is a batch whose publish fails in flight: it is appended to
the spool again and so comes after batches queued or spooled before the
failure was known. Ingest does not depend on order (its writes are keyed by
series and time).

Failures: a timeout, a closed connection, a missing stream or an API error
puts the batch in the spool, counts ``vigil_agent_publish_errors_total``, and
closes the ``RetryGate`` (backoff, then one probe batch). The failure is
logged once when it starts and once on recovery. A batch NATS can never take
(larger than the server's ``max_payload``) is dropped and its samples
counted under ``vigil_agent_dropped_samples_total{reason="rejected"}``.

Duplicates: a batch whose ack was lost is published again from the spool
under the same ``Nats-Msg-Id``; inside the stream's duplicate window
JetStream keeps one copy (counted in ``vigil_agent_duplicate_acks_total``),
after it ingest's idempotent writes absorb the copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable

from nats.aio.client import Client
from nats.errors import MaxPayloadError
from nats.js import JetStreamContext

from agent.batcher import Outgoing
from agent.errors import SpoolError
from agent.retry import RetryGate
from agent.selfmetrics import AgentMetrics
from agent.spool import Spool
from shared.log import get_logger

log = get_logger(__name__)

MSG_ID_HEADER = "Nats-Msg-Id"


class Publisher:
    """See the module docstring. One per agent process; runs in the app's event loop."""

    def __init__(
        self,
        spool: Spool,
        metrics: AgentMetrics,
        *,
        subject: str,
        max_inflight: int,
        publish_timeout: float,
        queue_max: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spool = spool
        self.metrics = metrics
        self.subject = subject
        self.max_inflight = max_inflight
        self.publish_timeout = publish_timeout
        self.queue_max = queue_max or 2 * max_inflight
        self.gate = RetryGate()
        self._clock = clock
        self._queue: deque[Outgoing] = deque()
        self._inflight: set[asyncio.Task[None]] = set()
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._wake = asyncio.Event()
        self._replaying = True
        self._failed_batches = 0
        self._spool_failing = False
        self._reported_spool_drops = spool.dropped_samples
        self._reported_corrupt = spool.corrupt_bytes
        self._sync_spool_metrics()

    # ------------------------------------------------------------------ wiring

    def attach(self, nc: Client) -> None:
        """Publish through ``nc`` from now on (it reconnects by itself)."""
        self._nc = nc
        self._js = nc.jetstream(publish_async_max_pending=max(self.max_inflight * 2, 16))
        self._wake.set()

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    @property
    def idle(self) -> bool:
        """Nothing queued, in flight, or waiting in the spool."""
        return not self._queue and not self._inflight and self.spool.empty

    def submit(self, item: Outgoing) -> None:
        if self.connected and not self.spool.unread and len(self._queue) < self.queue_max:
            self._queue.append(item)
        else:
            self._to_spool(item)
        self._wake.set()

    def _to_spool(self, item: Outgoing) -> None:
        try:
            self.spool.append(item.msg_id, item.payload, item.samples)
        except SpoolError as exc:
            # A full or broken disk must not stop collection: count the loss, log it once.
            self.metrics.dropped_samples.labels("spool_error").inc(item.samples)
            if not self._spool_failing:
                log.error("cannot spool batches, dropping them", reason=str(exc))
                self._spool_failing = True
            return
        if self._spool_failing:
            log.info("spooling recovered")
            self._spool_failing = False
        self.metrics.spooled_batches.inc()
        self._sync_spool_metrics()

    def _sync_spool_metrics(self) -> None:
        self.metrics.spool_bytes.set(self.spool.pending_bytes)
        dropped = self.spool.dropped_samples - self._reported_spool_drops
        if dropped:
            self.metrics.dropped_samples.labels("spool_full").inc(dropped)
            self._reported_spool_drops = self.spool.dropped_samples
        corrupt = self.spool.corrupt_bytes - self._reported_corrupt
        if corrupt:
            self.metrics.spool_corrupt_bytes.inc(corrupt)
            self._reported_corrupt = self.spool.corrupt_bytes

    # ------------------------------------------------------------------ the loop

    async def run(self) -> None:
        """Publish until cancelled."""
        while True:
            self._pump(replay=self._replaying)
            wait = 0.5
            if self.gate.failing:
                wait = min(wait, max(self.gate.wait_s(self._clock()), 0.01))
            # asyncio.timeout, not wait_for: 3.11's wait_for can lose a cancellation
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            self._wake.clear()

    def _pump(self, *, replay: bool) -> None:
        if not self.connected:
            while self._queue:
                self._to_spool(self._queue.popleft())
            return
        allowed = self.gate.window(self._clock(), self.max_inflight)
        while len(self._inflight) < allowed:
            item: Outgoing | None = None
            ticket: int | None = None
            if replay and self.spool.unread:
                record = self.spool.read_next()
                if record is not None:
                    item = Outgoing(record.msg_id, record.payload, record.samples)
                    ticket = record.ticket
            if item is None and self._queue:
                item = self._queue.popleft()
            if item is None:
                break
            task = asyncio.create_task(self._publish(item, ticket), name=f"publish {item.msg_id}")
            self._inflight.add(task)
            task.add_done_callback(self._done)
        self.metrics.inflight.set(len(self._inflight))
        self._sync_spool_metrics()

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._wake.set()

    async def _publish(self, item: Outgoing, ticket: int | None) -> None:
        js = self._js
        if js is None:
            raise RuntimeError("BUG: publishing before attach()")
        try:
            future = await js.publish_async(
                self.subject, item.payload, headers={MSG_ID_HEADER: item.msg_id}
            )
            async with asyncio.timeout(self.publish_timeout):
                ack = await future
        except asyncio.CancelledError:
            if ticket is None:
                self._to_spool(item)  # stopping: keep it; a spooled record stays uncommitted
            raise
        except MaxPayloadError:
            self.metrics.dropped_samples.labels("rejected").inc(item.samples)
            log.error(
                "cannot publish batch: larger than the server's max_payload, dropped",
                subject=self.subject,
                msg_id=item.msg_id,
                bytes=len(item.payload),
                samples=item.samples,
            )
        except Exception as exc:  # noqa: BLE001 - every failure means "keep it and retry"
            self._failed(item, exc)
        else:
            self._succeeded(item, ticket, duplicate=bool(ack.duplicate))
        if ticket is not None:
            self.spool.commit(ticket)  # acknowledged, dropped, or appended again
        self._sync_spool_metrics()

    def _failed(self, item: Outgoing, exc: BaseException) -> None:
        self.metrics.publish_errors.inc()
        self._failed_batches += 1
        if not self.gate.failing:
            reason = "no ack in time" if isinstance(exc, TimeoutError) else str(exc)
            log.warning(
                "cannot publish batches, spooling them",
                subject=self.subject,
                reason=reason or type(exc).__name__,
            )
        self.gate.failure(self._clock())
        self._to_spool(item)

    def _succeeded(self, item: Outgoing, ticket: int | None, *, duplicate: bool) -> None:
        if self.gate.failing:
            log.info(
                "publishing recovered", subject=self.subject, failed_batches=self._failed_batches
            )
            self._failed_batches = 0
        self.gate.success()
        self.metrics.batches_published.inc()
        self.metrics.samples_published.inc(item.samples)
        if ticket is not None:
            self.metrics.replayed_batches.inc()
        if duplicate:
            self.metrics.duplicate_acks.inc()

    # ------------------------------------------------------------------ stopping

    async def close(self, grace_s: float) -> None:
        """Publish what is queued (not the spool) for up to ``grace_s`` s, spool the rest, close."""
        deadline = self._clock() + grace_s
        self._replaying = False
        while (self._queue or self._inflight) and self.connected:
            left = deadline - self._clock()
            if left <= 0:
                break
            self._pump(replay=False)
            if self._inflight:
                await asyncio.wait(set(self._inflight), timeout=min(left, 0.2))
            elif self._queue and self.gate.failing:
                await asyncio.sleep(min(left, max(self.gate.wait_s(self._clock()), 0.01)))
        for task in list(self._inflight):
            task.cancel()
        if self._inflight:
            await asyncio.wait(set(self._inflight))
        while self._queue:
            self._to_spool(self._queue.popleft())
        self._sync_spool_metrics()
        self.spool.close()
