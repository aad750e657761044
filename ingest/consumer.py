"""The metrics consumer: one fetch in, one transaction, then acks.

``MetricsHandler`` is the ``FetchHandler`` of the metrics stream. For each fetch:

1. messages in stream order, yielding to the event loop every
   ``DECODE_SLICE`` messages (so another worker's write keeps streaming);
   each is decoded with ``shared.codec.BatchDecoder`` (limits from
   ``nats.limits``; it remembers validated series tables, and ``TableIds``
   their series ids per host, both bounded by ``table_cache_series``; 0
   turns both off), its host taken from the subject
   (``Names.host_from_metrics_subject``), never from the payload; anything the
   decoder or ``FetchRows`` rejects becomes a ``Reject``;
2. ``SampleWriter.write`` stores the good batches and the rejects in one
   transaction, sending in-progress signals while it runs;
3. ``fault_point("ingest.after_commit")``; then good messages are acked and
   rejected ones terminated: a message is acknowledged only after its commit.

On a database error every message of the fetch is nak'ed with the back-off
delay and the loop pauses as long (``Backoff``); the failure is logged once
when it starts and once when it ends. When the database refuses the data
itself (``WriteRejected``), the fetch is written again one message at a time,
so only the offending message is rejected. Nothing a producer sends can make
this handler raise.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable

from nats.aio.msg import Msg

from ingest.backoff import Backoff
from ingest.cache import SeriesCache
from ingest.errors import StorageError, StorageUnavailable, WriteRejected
from ingest.keepalive import in_progress
from ingest.metrics import IngestMetrics
from ingest.rows import FastKey, FetchRows, Metadata
from ingest.tableids import TableIds
from ingest.writer import Reject, SampleWriter
from shared.codec import BatchDecoder, decode_batch
from shared.errors import DecodeError
from shared.faults import fault_point
from shared.log import get_logger
from shared.wire import DecodeLimits, Names

log = get_logger(__name__)

DECODE_SLICE = 16
"""Messages decoded between two yields to the event loop (~10 ms of work each)."""


def stream_seq(msg: Msg) -> int:
    try:
        return int(msg.metadata.sequence.stream)
    except Exception:  # noqa: BLE001 - a message without JetStream metadata sorts first
        return 0


class MetricsHandler:
    """Decodes, writes and acknowledges fetches of the metrics stream."""

    def __init__(
        self,
        *,
        names: Names,
        limits: DecodeLimits,
        writer: SampleWriter,
        cache: SeriesCache[FastKey],
        metrics: IngestMetrics,
        backoff: Backoff,
        keepalive_s: float,
        table_cache_series: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._names = names
        self._stream = names.stream_metrics
        self._limits = limits
        self._writer = writer
        self._cache = cache
        self._metrics = metrics
        self._backoff = backoff
        self._keepalive_s = keepalive_s
        self._clock = clock
        self._decoder: BatchDecoder | None = None
        self._tables: TableIds[Metadata] | None = None
        if table_cache_series > 0:
            self._decoder = BatchDecoder(limits, max_series=table_cache_series)
            self._tables = TableIds(table_cache_series)

    async def __call__(self, msgs: list[Msg]) -> float:
        msgs = sorted(msgs, key=stream_seq)
        rows, good, rejects = await self._decode(msgs)
        hits, misses = self._cache.hits, self._cache.misses
        started = time.perf_counter()
        try:
            async with in_progress(msgs, self._keepalive_s):
                await self._writer.write(rows, rejects)
        except WriteRejected as exc:
            if len(msgs) > 1:
                return await self._one_by_one(msgs)
            rejects = [self._reject(msgs[0], None, "storage_rejected", str(exc))]
            try:
                await self._writer.write(FetchRows(self._cache), rejects)
            except StorageError as again:
                return await self._failed(msgs, again)
            good = []
        except StorageError as exc:
            return await self._failed(msgs, exc)
        except Exception as exc:  # noqa: BLE001 - a BUG must not stop ingest; say so once per fetch
            log.error("BUG: cannot write fetch", error=repr(exc), messages=len(msgs))
            return await self._failed(msgs, exc)
        self._metrics.write_seconds.observe(time.perf_counter() - started)
        self._metrics.cache_hits.inc(self._cache.hits - hits)
        self._metrics.cache_misses.inc(self._cache.misses - misses)
        outage = self._backoff.succeeded(self._clock())
        if outage is not None:
            log.info("writing to the database again", outage_s=round(outage, 3))
        fault_point("ingest.after_commit")
        for msg in good:
            with contextlib.suppress(Exception):
                await msg.ack()
        if rejects:
            rejected = {r.stream_seq for r in rejects}
            for msg in msgs:
                if stream_seq(msg) in rejected:
                    with contextlib.suppress(Exception):
                        await msg.term()
        self._metrics.samples.inc(rows.samples)
        self._metrics.batches.inc(len(good))
        for r in rejects:
            self._metrics.rejects.labels(r.reason).inc()
        return 0.0

    async def _decode(self, msgs: list[Msg]) -> tuple[FetchRows, list[Msg], list[Reject]]:
        rows = FetchRows(self._cache, self._tables)
        decoder = self._decoder
        good: list[Msg] = []
        rejects: list[Reject] = []
        now_ms = int(time.time() * 1000)
        for n, msg in enumerate(msgs, 1):
            if n % DECODE_SLICE == 0:
                # Let the other workers' COPY data, commits and acks through:
                # decoding a whole fetch at once holds the loop for ~0.25 s.
                await asyncio.sleep(0)
            host: str | None = None
            try:
                host = self._names.host_from_metrics_subject(msg.subject)
                if decoder is not None:
                    batch = decoder.decode(msg.data, now_ms=now_ms)
                else:
                    batch = decode_batch(msg.data, limits=self._limits, now_ms=now_ms)
                rows.add(host, batch)
            except DecodeError as exc:
                rejects.append(self._reject(msg, host, exc.reason, str(exc)))
                continue
            except Exception as exc:  # noqa: BLE001 - whatever a producer sends, never crash
                rejects.append(self._reject(msg, host, "malformed", f"{type(exc).__name__}: {exc}"))
                continue
            good.append(msg)
        return rows, good, rejects

    def _reject(self, msg: Msg, host: str | None, reason: str, detail: str) -> Reject:
        log.warning(
            "cannot ingest batch: rejected",
            subject=msg.subject[:200],
            host=host,
            reason=reason,
            detail=detail[:300],
        )
        return Reject.of(
            self._stream,
            seq=stream_seq(msg),
            subject=msg.subject,
            host=host,
            reason=reason,
            detail=detail,
            payload=msg.data,
        )

    async def _one_by_one(self, msgs: list[Msg]) -> float:
        for msg in msgs:
            pause = await self([msg])
            if pause > 0:
                return pause
        return 0.0

    async def _failed(self, msgs: list[Msg], exc: BaseException) -> float:
        delay, first = self._backoff.failed(self._clock(), rand=0.5 + random.random() / 2)  # noqa: S311
        kind = "unavailable" if isinstance(exc, StorageUnavailable) else "error"
        self._metrics.write_errors.labels(kind).inc()
        if first:
            log.warning(
                "cannot write to the database: retrying with back-off",
                error=str(exc) or type(exc).__name__,
                messages=len(msgs),
            )
        for msg in msgs:
            with contextlib.suppress(Exception):
                await msg.nak(delay=delay)
        return delay
