"""Which rollup buckets an ingest commit touched, recorded in that same transaction.

The writer calls ``mark_touched`` inside the transaction that stores the
samples, so a commit and its record of touched buckets are atomic: data that
arrives hours late (a spool replay) is rolled up too, and a crash between
the two cannot happen.

The record is the append-only table ``rollup_dirty`` (migration 0002): one
row per touched minute per commit, never updated, so replicas writing the
same minute never wait on each other (a sequence hands out ids without
locks). The apache-mode job (:mod:`ingest.rollup.refresh`) reads and deletes
the rows. In timescale mode continuous aggregates track changes themselves
and the statement inserts nothing: its condition on ``timescaledb.license``
is evaluated once, so the check costs no extra round trip.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

_MARK = """
INSERT INTO rollup_dirty (bucket)
SELECT time_bucket(INTERVAL '1 minute', 'epoch'::timestamptz + m * INTERVAL '1 millisecond')
FROM unnest($1::bigint[]) AS m
WHERE current_setting('timescaledb.license', true) = 'apache'
"""


async def mark_touched(conn: Any, minute_starts_ms: Iterable[int]) -> None:
    """Record the one-minute buckets (start, ms since the epoch, multiple of 60,000) just written.

    ``conn`` is an asyncpg connection inside the writer's open transaction.
    Must not contend between replicas (no row both may update) and must be
    cheap: it runs on every commit. Duplicates are dropped; a start that is
    not a minute boundary is floored to one. Errors are asyncpg's: the writer
    translates them with the rest of its transaction.
    """
    minutes = sorted(set(minute_starts_ms))
    if minutes:
        await conn.execute(_MARK, minutes)
