"""Rollups equal plain SQL aggregates over raw samples, in the server's license mode."""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import asyncpg
import pytest

from ingest.rollup.dirty import mark_touched
from ingest.rollup.mode import Mode
from ingest.rollup.schema import prepare_rollups
from shared.config.models import StorageConfig
from tests.ingest.rollup.conftest import RollupDb
from tests.ingest.rollup.helpers import (
    STALE,
    Row,
    actual,
    assert_rows_equal,
    expected,
    recent_hour,
    roll_up,
    write,
)

pytestmark = pytest.mark.timescale

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


@pytest.fixture
async def conn(rollup_db: RollupDb) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(rollup_db.url)
    yield c
    await c.close()


def counter(series: int, start: datetime, seconds: int, rng: random.Random) -> list[Row]:
    """A counter sampled every 10 s that resets now and then, at minute starts too."""
    rows: list[Row] = []
    value = 100.0
    for i in range(0, seconds, 10):
        t = start + timedelta(seconds=i)
        if rng.random() < 0.05 or (t.second == 0 and rng.random() < 0.1):
            value = float(rng.randint(0, 3))  # reset
        else:
            value += rng.randint(0, 5)
        rows.append((t, series, value))
    return rows


def gauge(series: int, start: datetime, seconds: int, rng: random.Random) -> list[Row]:
    """A gauge with NaN and staleness markers, and one minute of NaN only."""
    rows: list[Row] = []
    for i in range(0, seconds, 10):
        t = start + timedelta(seconds=i)
        r = rng.random()
        if 600 <= i < 660:
            value = math.nan
        elif r < 0.1:
            value = STALE
        elif r < 0.15:
            value = math.nan
        else:
            value = rng.gauss(0, 50)
        rows.append((t, series, value))
    return rows


def sparse(series: int, start: datetime) -> list[Row]:
    """A counter seen every few minutes, reset across a gap and at an hour boundary."""
    values = [5.0, 9.0, 20.0, 2.0, 7.0, 7.0, 30.0, 1.0, 4.0]
    minutes = [0, 7, 23, 41, 59, 60, 77, 95, 119]
    return [
        (start + timedelta(minutes=m, seconds=13), series, v)
        for m, v in zip(minutes, values, strict=True)
    ]


def infinite(series: int, start: datetime) -> list[Row]:
    """±Inf are ordinary values (IEEE arithmetic), unlike NaN."""
    values = [1.0, math.inf, 3.0, -math.inf, 5.0, math.inf, math.inf, 2.0]
    return [
        (start + timedelta(minutes=i // 3, seconds=(i % 3) * 15), series, v)
        for i, v in enumerate(values)
    ]


async def two_rolled_up_hours(
    rollup_db: RollupDb, conn: asyncpg.Connection, start: datetime, first: int, *, seed: int
) -> list[int]:
    """A counter (series ``first``) and a gauge (``first + 1``) over two hours from
    ``start``, rolled up; the two series ids."""
    rng = random.Random(seed)
    await write(conn, counter(first, start, 7200, rng))
    await write(conn, gauge(first + 1, start, 7200, rng))
    await roll_up(rollup_db.url, rollup_db.mode, start, start + 2 * HOUR)
    return [first, first + 1]


async def check(rollup_db: RollupDb, conn: asyncpg.Connection, series: list[int]) -> None:
    assert_rows_equal(
        await actual(conn, "samples_1m", series), await expected(conn, MINUTE, series)
    )
    # Hours come from minute rows; they must equal hours computed from raw samples.
    assert_rows_equal(await actual(conn, "samples_1h", series), await expected(conn, HOUR, series))


async def test_rollups_equal_sql_aggregates_over_raw_samples(
    rollup_db: RollupDb, conn: asyncpg.Connection
) -> None:
    start = recent_hour(3)
    rng = random.Random(4)
    series = [101, 102, 103, 104]
    await write(conn, counter(101, start, 7200, rng))
    await write(conn, gauge(102, start, 7200, rng))
    await write(conn, sparse(103, start))
    await write(conn, infinite(104, start))

    await roll_up(rollup_db.url, rollup_db.mode, start, start + 2 * HOUR)

    await check(rollup_db, conn, series)
    minutes = await actual(conn, "samples_1m", [101])
    assert len(minutes) == 120
    assert any(r["increase"] != r["last"] - r["first"] for r in minutes), "a reset inside a minute"


async def test_nan_and_staleness_markers_are_left_out(
    rollup_db: RollupDb, conn: asyncpg.Connection
) -> None:
    start = recent_hour(3)
    t = [start + timedelta(seconds=s) for s in (0, 10, 20, 30, 70, 80)]
    await write(
        conn,
        [
            (t[0], 201, 1.0),
            (t[1], 201, STALE),
            (t[2], 201, math.nan),
            (t[3], 201, 4.0),
            (t[4], 201, math.nan),  # the second minute holds NaN only
            (t[5], 201, STALE),
        ],
    )

    await roll_up(rollup_db.url, rollup_db.mode, start, start + HOUR)

    rows = await actual(conn, "samples_1m", [201])
    assert [(r["bucket"], r["count"], r["sum"], r["first"], r["last"]) for r in rows] == [
        (start, 2, 5.0, 1.0, 4.0)
    ]
    assert rows[0]["increase"] == 3.0


async def test_late_data_is_rolled_up_after_its_bucket_was(
    rollup_db: RollupDb, conn: asyncpg.Connection
) -> None:
    start = recent_hour(3)
    series = await two_rolled_up_hours(rollup_db, conn, start, 301, seed=7)
    before = await actual(conn, "samples_1m", [301])

    # A spool replay: samples between the stored ones, a reset among them, NaN too,
    # in minutes (and hours) rolled up already.
    late: list[Row] = [(start + timedelta(minutes=m, seconds=5), 301, 0.0) for m in (3, 64, 100)]
    late += [(start + timedelta(minutes=m, seconds=35), 301, 1e6) for m in (3, 90)]
    late += [(start + timedelta(minutes=m, seconds=45), 302, 1e4) for m in (0, 10, 119)]
    late += [(start + timedelta(minutes=m, seconds=55), 302, math.nan) for m in (1, 2)]
    await write(conn, late)
    await roll_up(rollup_db.url, rollup_db.mode, start, start + 2 * HOUR)

    await check(rollup_db, conn, series)
    after = await actual(conn, "samples_1m", [301])
    assert after[3]["count"] == before[3]["count"] + 2
    assert after[3]["max"] == 1e6


async def test_sums_and_increases_overflow_to_infinity_instead_of_failing(
    rollup_db: RollupDb, conn: asyncpg.Connection
) -> None:
    start = recent_hour(3)
    big = 1.5e308
    await write(
        conn,
        [
            (start, 401, big),
            (start + timedelta(seconds=10), 401, big),
            (start + timedelta(seconds=20), 401, 1.0),
            (start, 402, -big),
            (start + timedelta(seconds=10), 402, big),  # increase of 3e308
            (start, 403, 1e300),
            (start + timedelta(seconds=10), 403, -1e300),
        ],
    )

    await roll_up(rollup_db.url, rollup_db.mode, start, start + HOUR)

    rows = {r["series_id"]: r for r in await actual(conn, "samples_1m", [401, 402, 403])}
    assert rows[401]["sum"] == math.inf
    assert rows[402]["sum"] == 0.0
    assert rows[402]["increase"] == math.inf
    assert rows[403]["sum"] == 0.0
    assert rows[403]["increase"] == -1e300  # a "reset" to a negative value adds it


async def test_mark_touched_records_each_minute_once_per_commit(
    rollup_db: RollupDb, conn: asyncpg.Connection
) -> None:
    if rollup_db.mode is not Mode.APACHE:
        pytest.skip("timescale mode: continuous aggregates track changes; nothing is recorded")
    minute = 1_700_000_040_000  # a minute start, long ago: not due work for other tests
    async with conn.transaction():
        await mark_touched(conn, [minute, minute, minute + 60_000 + 1234])
        rows = await conn.fetch(
            "SELECT bucket FROM rollup_dirty WHERE bucket < '2023-11-15' ORDER BY bucket"
        )
        assert [int(r["bucket"].timestamp() * 1000) for r in rows] == [minute, minute + 60_000]
        await conn.execute("DELETE FROM rollup_dirty WHERE bucket < '2023-11-15'")


async def test_replicas_marking_one_minute_do_not_wait_on_each_other(
    rollup_db: RollupDb, conn: asyncpg.Connection
) -> None:
    other = await asyncpg.connect(rollup_db.url)
    try:
        minute = 1_700_000_040_000
        async with conn.transaction():
            await mark_touched(conn, [minute])
            async with other.transaction():
                await other.execute("SET LOCAL lock_timeout = '2s'")
                await mark_touched(other, [minute])  # would time out if it waited
                await other.execute("DELETE FROM rollup_dirty WHERE bucket < '2023-11-15'")
            await conn.execute("DELETE FROM rollup_dirty WHERE bucket < '2023-11-15'")
    finally:
        await other.close()


async def test_prepare_rollups_is_idempotent(rollup_db: RollupDb) -> None:
    assert await prepare_rollups(rollup_db.url, StorageConfig()) is rollup_db.mode


async def test_rollup_tables_of_an_earlier_vigil_get_head_filled_at_start_up(
    rollup_db: RollupDb, conn: asyncpg.Connection
) -> None:
    """Tables made before the ``head`` column: start-up adds it and fills it from the raw
    samples (minutes), then from the minutes (hours), equal to a fresh roll-up."""
    if rollup_db.mode is Mode.TIMESCALE:
        pytest.skip("timescale mode: such continuous aggregates are refused (snapshot tests)")
    series = await two_rolled_up_hours(rollup_db, conn, recent_hour(5), 701, seed=9)
    for table in ("samples_1m", "samples_1h"):
        await conn.execute(f"ALTER TABLE {table} DROP COLUMN head")
    assert await prepare_rollups(rollup_db.url, StorageConfig()) is Mode.APACHE
    await check(rollup_db, conn, series)
    heads = [r["head"] for r in await actual(conn, "samples_1m", [701])]
    assert heads.count(None) == 0  # sampled every 10 s from the hour: one on every minute
