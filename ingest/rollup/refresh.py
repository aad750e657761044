"""apache mode: recompute dirty rollup buckets, in bounded transactions.

Two levels, each fed by a dirty log (migration 0002):

- minutes: ``rollup_dirty`` (written by every ingest commit) -> ``samples_1m``,
  recomputed from raw ``samples``; each recomputed minute marks its hour in
  ``rollup_dirty_hours``;
- hours: ``rollup_dirty_hours`` -> ``samples_1h``, recomputed from the
  minute rows once the hour is over.

One transaction takes the oldest due buckets (at most ``max_buckets``),
upserts their rows range by range, marks the parents and deletes exactly the
dirty rows it read, by id: a commit that marks the same minute meanwhile
leaves a row with a new id, so that minute is recomputed again next time,
with its data. Recomputing a bucket only ever upserts, so a bucket whose raw
data retention dropped keeps its rollup rows.

Only one process may run this at a time (see :mod:`ingest.rollup.jobs`);
the upserts are not written to be safe against a concurrent refresher.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from ingest.rollup.aggregates import COLUMNS, HOUR, MINUTE, Resolution
from ingest.rollup.plan import HOUR as HOUR_WIDTH
from ingest.rollup.plan import MINUTE as MINUTE_WIDTH
from ingest.rollup.plan import Batch, plan_batch, ready_cutoff


@dataclass(frozen=True, slots=True)
class Level:
    """One rollup level and the dirty logs around it."""

    resolution: Resolution
    width: timedelta
    dirty: str
    parent_dirty: str | None
    parent_width: timedelta | None

    def upsert_sql(self) -> str:
        r = self.resolution
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS[2:])
        where = f"{r.time_column} >= $1 AND {r.time_column} < $2"
        return (
            f"INSERT INTO {r.table} ({', '.join(COLUMNS)})\n{r.query(where)}\n"
            f"ON CONFLICT (series_id, bucket) DO UPDATE SET {updates}"
        )


MINUTES = Level(MINUTE, MINUTE_WIDTH, "rollup_dirty", "rollup_dirty_hours", HOUR_WIDTH)
HOURS = Level(HOUR, HOUR_WIDTH, "rollup_dirty_hours", None, None)


@dataclass(frozen=True, slots=True)
class LevelResult:
    buckets: int
    """Buckets recomputed."""
    transactions: int
    more: bool
    """Due buckets were left for the next run (the transaction bound was reached)."""


async def refresh_batch(
    conn: asyncpg.Connection, level: Level, cutoff: datetime, max_buckets: int
) -> Batch | None:
    """Recompute up to ``max_buckets`` of the oldest dirty buckets starting at or
    before ``cutoff``, in one transaction; None when none is due."""
    async with conn.transaction():
        rows = await conn.fetch(
            f"SELECT id, bucket FROM {level.dirty} WHERE bucket IN ("  # noqa: S608 - constant names
            f"SELECT DISTINCT bucket FROM {level.dirty} WHERE bucket <= $1"
            " ORDER BY bucket LIMIT $2)",
            cutoff,
            max_buckets,
        )
        if not rows:
            return None
        batch = plan_batch([(r["id"], r["bucket"]) for r in rows], level.width, level.parent_width)
        upsert = level.upsert_sql()
        for start, end in batch.ranges:
            await conn.execute(upsert, start, end)
        if level.parent_dirty is not None:
            await conn.execute(
                f"INSERT INTO {level.parent_dirty} (bucket) SELECT unnest($1::timestamptz[])",
                batch.parents,
            )
        await conn.execute(
            f"DELETE FROM {level.dirty} WHERE id = ANY($1::bigint[])",  # noqa: S608
            batch.ids,
        )
    return batch


async def refresh_level(
    conn: asyncpg.Connection,
    level: Level,
    now: datetime,
    *,
    settle: timedelta,
    max_buckets: int,
    max_transactions: int,
) -> LevelResult:
    """Refresh due buckets of ``level`` until none is left or ``max_transactions`` ran."""
    cutoff = ready_cutoff(now, level.width, settle)
    buckets = 0
    for done in range(max_transactions):
        batch = await refresh_batch(conn, level, cutoff, max_buckets)
        if batch is None:
            return LevelResult(buckets, done, more=False)
        buckets += sum(round((end - start) / level.width) for start, end in batch.ranges)
    return LevelResult(buckets, max_transactions, more=True)
