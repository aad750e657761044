"""apache mode: retention by ``drop_chunks``, per resolution.

Whole chunks go once all their rows are older than the resolution's
retention (``storage.retention``); rows of a partly expired chunk stay until
the chunk is wholly expired, so data is kept at least as long as configured,
never shorter. What a pending rollup still needs is kept
(:func:`ingest.rollup.plan.retention_plan`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

from ingest.rollup.plan import retention_plan
from shared.config.models import RetentionConfig


async def apply_retention(
    conn: asyncpg.Connection, retention: RetentionConfig, now: datetime
) -> dict[str, int]:
    """Drop expired chunks of samples, samples_1m and samples_1h; return chunks dropped per table."""
    oldest_minute = await conn.fetchval("SELECT min(bucket) FROM rollup_dirty")
    oldest_hour = await conn.fetchval("SELECT min(bucket) FROM rollup_dirty_hours")
    plan = retention_plan(
        now,
        keep_raw=timedelta(seconds=retention.raw),
        keep_1m=timedelta(seconds=retention.rollup_1m),
        keep_1h=timedelta(seconds=retention.rollup_1h),
        oldest_dirty_minute=oldest_minute,
        oldest_dirty_hour=oldest_hour,
    )
    dropped: dict[str, int] = {}
    for table, older_than in plan:
        rows = await conn.fetch(
            "SELECT drop_chunks($1::regclass, older_than => $2::timestamptz)", table, older_than
        )
        dropped[table] = len(rows)
    return dropped
