"""One transaction per fetch: samples, touched buckets, metadata, agents, rejects.

``SampleWriter.write(rows, rejects)`` on one pooled connection:

1. resolves missing series ids (``ingest.resolver``, its own statement);
2. in one transaction: ``fault_point("ingest.before_copy")``; the samples,
   sorted by ``(series_id, time)`` (``rows.index_order``), as one binary COPY
   buffer straight into ``samples``; ``fault_point("ingest.after_copy")``;
   ``ingest.rollup.dirty.mark_touched`` with the one-minute buckets written;
   metadata that changed; agents not written for 30 s; rejects;
3. after commit, and only then, fills the series cache and the fetch's
   table-id cache (``FetchRows.remember_tables``).

Redelivery: when the COPY hits the unique index (a batch already stored,
redelivered after a crash between commit and ack, or mixed into a fetch with
new ones), the whole transaction is redone with the samples going through a
per-connection temporary table and ``INSERT ... SELECT ... ORDER BY
series_id, time ON CONFLICT DO NOTHING``: stored rows are skipped, new rows
are kept, nothing is lost. Deadlocks and serialization failures are retried
at once (``RetryBudget``); connection trouble raises ``StorageUnavailable``,
data the database refuses ``WriteRejected``, anything else from the
database ``StorageError``. Idempotent: writing the same fetch twice stores it once.

Values go in bit for bit: PostgreSQL's float8 keeps NaN payloads through
binary COPY, ``INSERT ... SELECT`` and binary reads (checked by
tests/ingest/integration/test_values.py), so the staleness marker needs no
encoding of its own.

Concurrency: one ``write`` per connection at a time; several may run at once
on one writer (the caches are only touched between awaits).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import asyncpg

from ingest.backoff import RetryBudget
from ingest.cache import SeriesCache
from ingest.errors import StorageError, StorageUnavailable, WriteConflict, WriteRejected
from ingest.resolver import resolve
from ingest.rollup.dirty import mark_touched
from ingest.rows import (
    FastKey,
    FetchRows,
    Metadata,
    encode_copy_binary,
    index_order,
    minute_starts,
)
from shared.faults import fault_point

AGENT_WRITE_INTERVAL_S = 30.0
CONFLICT_ATTEMPTS = 5
_COLUMNS = ("time", "series_id", "value")

_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS samples_stage "
    "(time timestamptz, series_id bigint, value double precision) ON COMMIT DELETE ROWS"
)
_FROM_STAGE = (
    "INSERT INTO samples (time, series_id, value) "
    "SELECT time, series_id, value FROM samples_stage ORDER BY series_id, time "
    "ON CONFLICT DO NOTHING"
)
_METADATA = """
INSERT INTO metadata (metric, type, help, unit)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) ORDER BY 1
ON CONFLICT (metric) DO UPDATE SET
    type = coalesce(excluded.type, metadata.type),
    help = coalesce(excluded.help, metadata.help),
    unit = coalesce(excluded.unit, metadata.unit),
    updated_at = now()
"""
_AGENTS = """
INSERT INTO agents (host, first_seen, last_seen, agent_id)
SELECT h, now(), now(), a FROM unnest($1::text[], $2::text[]) AS u(h, a) ORDER BY 1
ON CONFLICT (host) DO UPDATE SET last_seen = excluded.last_seen, agent_id = excluded.agent_id
"""
REJECTS_SQL = """
INSERT INTO rejects (stream, stream_seq, subject, host, reason, detail, size, payload_head)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::integer[], $8::bytea[])
ON CONFLICT DO NOTHING
"""
PAYLOAD_HEAD_BYTES = 256

# Errors that mean "the server or the link is gone", not "this write is wrong".
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
)


@dataclass(frozen=True, slots=True)
class Reject:
    """A message that cannot be stored, recorded in ``rejects`` and terminated."""

    stream: str
    stream_seq: int
    subject: str
    host: str | None
    reason: str
    detail: str
    size: int
    payload_head: bytes

    @classmethod
    def of(
        cls, stream: str, *, seq: int, subject: str, host: str | None, reason: str, detail: str,
        payload: bytes,
    ) -> Reject:  # fmt: skip
        def clean(text: str) -> str:
            return text.replace("\x00", "\\0")

        return cls(
            stream, seq, clean(subject), None if host is None else clean(host), reason,
            clean(detail)[:2000], len(payload), payload[:PAYLOAD_HEAD_BYTES],
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Txn:
    data: bytearray
    minutes: list[int]
    metadata: dict[str, Metadata]
    agents: dict[str, str]
    rejects: list[Reject]


def translate(exc: BaseException, what: str) -> StorageError:
    """An ingest error for a database or link failure while doing ``what``."""
    reason = str(exc) or type(exc).__name__
    if isinstance(exc, asyncpg.DeadlockDetectedError | asyncpg.SerializationError):
        return WriteConflict(f"cannot {what}: {reason}")
    if isinstance(exc, _UNAVAILABLE):
        return StorageUnavailable(f"cannot {what}: database unavailable: {reason}")
    if isinstance(exc, asyncpg.DataError | asyncpg.IntegrityConstraintViolationError):
        return WriteRejected(f"cannot {what}: {reason}")
    return StorageError(f"cannot {what}: {reason}")


class SampleWriter:
    """Writes fetches; shares the series, metadata and agent caches of this replica."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        cache: SeriesCache[FastKey],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self.cache = cache
        self._clock = clock
        self._metadata: dict[str, Metadata] = {}
        self._agents_written: dict[str, tuple[float, str]] = {}
        self.staged_writes = 0  # fetches that took the staging path (tests, metrics)

    async def write(self, rows: FetchRows, rejects: Iterable[Reject] = ()) -> None:
        """Store one fetch, atomically; see the module docstring. Raises only StorageError."""
        rejects = list(rejects)
        try:
            async with self._pool.acquire() as conn:
                resolved = await resolve(conn, rows.missing)
                rows.fill(resolved)
                ts, sids, values = index_order(*rows.columns())
                data = encode_copy_binary(ts, sids, values) if len(values) else bytearray()
                minutes = minute_starts(ts)
                metadata = self._changed_metadata(rows.metadata)
                agents = self._due_agents(rows.agents)
                await self._transaction(conn, _Txn(data, minutes, metadata, agents, rejects))
        except StorageError:
            raise
        except (asyncpg.PostgresError, *_UNAVAILABLE) as exc:
            raise translate(exc, f"write {rows.samples} samples") from exc
        # Committed: only now may other fetches trust these ids and records.
        put = self.cache.put
        for key, sid in resolved.items():
            put(key, sid)
        rows.remember_tables()
        self._metadata.update(metadata)
        now = self._clock()
        for host, agent_id in agents.items():
            self._agents_written[host] = (now, agent_id)

    async def _transaction(self, conn: asyncpg.Connection, txn: _Txn) -> None:
        data, minutes, metadata, agents, rejects = (
            txn.data, txn.minutes, txn.metadata, txn.agents, txn.rejects
        )  # fmt: skip
        staged = False
        budget = RetryBudget(CONFLICT_ATTEMPTS)
        while True:
            try:
                async with conn.transaction():
                    fault_point("ingest.before_copy")
                    if data:
                        await self._samples(conn, data, staged=staged)
                    fault_point("ingest.after_copy")
                    if minutes:
                        await mark_touched(conn, minutes)
                    if metadata:
                        await conn.execute(_METADATA, *_metadata_columns(metadata))
                    if agents:
                        await conn.execute(_AGENTS, list(agents), list(agents.values()))
                    if rejects:
                        await conn.execute(REJECTS_SQL, *reject_columns(rejects))
            except asyncpg.UniqueViolationError:
                if staged:
                    raise
                staged = True
                self.staged_writes += 1
            except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError) as exc:
                if not budget.try_again():
                    raise translate(exc, "write samples after retries") from exc
            else:
                return

    @staticmethod
    async def _samples(conn: asyncpg.Connection, data: bytearray, *, staged: bool) -> None:
        # The buffer itself, not a file: asyncpg sends a buffer as one CopyData
        # message, where a file costs an executor round trip per 512 KiB read,
        # each waiting for the event loop that decoding keeps busy.
        if not staged:
            await conn.copy_to_table("samples", source=data, columns=_COLUMNS, format="binary")
            return
        await conn.execute(_STAGE)
        await conn.copy_to_table("samples_stage", source=data, columns=_COLUMNS, format="binary")
        await conn.execute(_FROM_STAGE)

    def _changed_metadata(self, seen: dict[str, Metadata]) -> dict[str, Metadata]:
        known = self._metadata
        out: dict[str, Metadata] = {}
        for name, meta in seen.items():
            old = known.get(name)
            if old is None:
                out[name] = meta
                continue
            merged = Metadata(
                meta.type if meta.type is not None else old.type,
                meta.help if meta.help is not None else old.help,
                meta.unit if meta.unit is not None else old.unit,
            )
            if merged != old:
                out[name] = merged
        return out

    def _due_agents(self, seen: dict[str, str]) -> dict[str, str]:
        now = self._clock()
        out: dict[str, str] = {}
        for host, agent_id in seen.items():
            last = self._agents_written.get(host)
            if last is None or now - last[0] >= AGENT_WRITE_INTERVAL_S or last[1] != agent_id:
                out[host] = agent_id
        return out


def _metadata_columns(metadata: dict[str, Metadata]) -> list[list[str | None]]:
    names = list(metadata)
    return [
        names,  # type: ignore[list-item]
        [metadata[n].type for n in names],
        [metadata[n].help for n in names],
        [metadata[n].unit for n in names],
    ]


def reject_columns(rejects: list[Reject]) -> list[list[object]]:
    return [
        [r.stream for r in rejects],
        [r.stream_seq for r in rejects],
        [r.subject for r in rejects],
        [r.host for r in rejects],
        [r.reason for r in rejects],
        [r.detail for r in rejects],
        [r.size for r in rejects],
        [r.payload_head for r in rejects],
    ]
