"""The writer alone: redelivered fetches are no-ops, mixed fetches lose nothing."""

from __future__ import annotations

import time

import asyncpg

from ingest.cache import SeriesCache
from ingest.migrate import migrate
from ingest.rows import FastKey, FetchRows, Metadata
from ingest.tableids import TableIds
from ingest.writer import SampleWriter
from shared.codec import BatchDecoder, encode_batch
from shared.wire import DecodeLimits, MetricBatch
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


async def test_fetches_through_the_table_caches_store_each_sample_once(fresh_db: str) -> None:
    await migrate(fresh_db)
    pool = await asyncpg.create_pool(fresh_db, min_size=1, max_size=2)
    decoder = BatchDecoder(DecodeLimits(), max_series=1000)
    tables: TableIds[Metadata] = TableIds(1000)
    now_ms = int(time.time() * 1000)

    def rows_of(cache: SeriesCache[FastKey], seqs: list[int]) -> FetchRows:
        rows = FetchRows(cache, tables)
        for seq in seqs:
            batch = make_batch("a", seq, series=5, samples_per_series=3, base_ms=now_ms - 60_000)
            data = encode_batch(batch)
            rows.add("host-a", decoder.decode(data, now_ms=now_ms))
        return rows

    try:
        cache: SeriesCache[FastKey] = SeriesCache(1000)
        writer = SampleWriter(pool, cache)
        await writer.write(rows_of(cache, [0, 1, 2]))
        assert len(tables) == 1
        assert await audit(fresh_db) == (45, 45)
        hits = cache.hits
        await writer.write(rows_of(cache, [1, 3, 2, 4]))  # redelivered and new, all from tables
        assert cache.hits - hits == 4 * 5
        assert await audit(fresh_db) == (75, 75)
        assert writer.staged_writes == 1
        conn = await pool.acquire()
        try:
            assert await conn.fetchval("SELECT count(*) FROM series") == 5
            assert await conn.fetchval("SELECT count(DISTINCT series_id) FROM samples") == 5
        finally:
            await pool.release(conn)
    finally:
        await pool.close()
