"""The writer alone: redelivered fetches are no-ops, mixed fetches lose nothing."""

from __future__ import annotations

import asyncpg

from ingest.cache import SeriesCache
from ingest.migrate import migrate
from ingest.rows import FastKey, FetchRows
from ingest.writer import SampleWriter
from shared.wire import MetricBatch
from tests.ingest.helpers import audit, make_batch


def _rows(cache: SeriesCache[FastKey], batches: list[MetricBatch]) -> FetchRows:
    rows = FetchRows(cache)
    for b in batches:
        rows.add("host-a", b)
    return rows


async def test_redelivered_fetch_is_a_noop_and_mixed_fetch_stores_all_new(fresh_db: str) -> None:
    await migrate(fresh_db)
    pool = await asyncpg.create_pool(fresh_db, min_size=1, max_size=2)
    try:
        cache: SeriesCache[FastKey] = SeriesCache(1000)
        writer = SampleWriter(pool, cache)
        old = [make_batch("a", seq, series=5, samples_per_series=3) for seq in range(3)]
        await writer.write(_rows(cache, old))
        assert await audit(fresh_db) == (45, 45)
        assert writer.staged_writes == 0

        await writer.write(_rows(cache, old))  # the same fetch again: nothing changes
        assert await audit(fresh_db) == (45, 45)
        assert writer.staged_writes == 1

        new = [make_batch("a", seq, series=5, samples_per_series=3) for seq in range(3, 6)]
        await writer.write(_rows(cache, [old[1], new[0], old[2], new[1], new[2]]))
        assert await audit(fresh_db) == (90, 90)
        assert writer.staged_writes == 2

        # A cold cache (another replica, or after a restart) resolves the same series ids.
        other = SampleWriter(pool, SeriesCache(1000))
        await other.write(_rows(other.cache, [make_batch("a", 9, series=5)]))
        assert await audit(fresh_db) == (95, 95)
        conn = await pool.acquire()
        try:
            assert await conn.fetchval("SELECT count(*) FROM series") == 5
        finally:
            await pool.release(conn)
    finally:
        await pool.close()
