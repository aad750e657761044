"""Writing samples as ingest does, rolling up in either mode, and the SQL oracle."""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from ingest.rollup.dirty import mark_touched
from ingest.rollup.jobs import RollupJobs
from ingest.rollup.mode import Mode
from shared.config.models import StorageConfig

STALE = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
"""Prometheus' staleness marker, a NaN with its own bits."""

Row = tuple[datetime, int, float]


def recent_hour(hours_ago: int) -> datetime:
    """Start of the hour ``hours_ago`` hours before the current one (timescale mode's
    retention policies run in the background, so test data is recent)."""
    now = datetime.now(UTC)
    return now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours_ago)


async def write(conn: asyncpg.Connection, rows: Sequence[Row]) -> None:
    """Store rows and mark their minutes in one transaction, as ingest's writer does."""
    async with conn.transaction():
        await conn.executemany(
            "INSERT INTO samples (time, series_id, value) VALUES ($1, $2, $3)"
            " ON CONFLICT DO NOTHING",
            rows,
        )
        await mark_touched(conn, {_ms(t) // 60_000 * 60_000 for t, _, _ in rows})


def _ms(t: datetime) -> int:
    return round(t.timestamp() * 1000)


async def roll_up(url: str, mode: Mode, start: datetime, end: datetime) -> None:
    """Bring samples_1m and samples_1h up to date for complete buckets in [start, end)."""
    if mode is Mode.TIMESCALE:
        conn = await asyncpg.connect(url)
        try:
            for view in ("samples_1m", "samples_1h"):
                await conn.execute(
                    "CALL refresh_continuous_aggregate($1::regclass, $2::timestamptz,"
                    " $3::timestamptz)",
                    view,
                    start,
                    end,
                )
        finally:
            await conn.close()
        return
    jobs = RollupJobs(url, StorageConfig(), settle=timedelta(0))
    try:
        for _ in range(50):  # bounded: each run makes progress
            report = await jobs.run_once(max(end, datetime.now(UTC)))
            assert report.outcome == "ran"
            if not report.more:
                return
        raise AssertionError("rollup jobs kept reporting work left")
    finally:
        await jobs.close()


ORACLE = """
WITH s AS (
    SELECT time_bucket($1::interval, time) AS bucket, series_id, time, value,
           lag(value) OVER (PARTITION BY series_id, time_bucket($1::interval, time)
                            ORDER BY time) AS prev
    FROM samples
    WHERE value <> 'NaN'::float8 AND series_id = ANY($2::bigint[])
)
SELECT bucket, series_id, min(value) AS min, max(value) AS max, sum(value) AS sum,
       count(*) AS count,
       (array_agg(value ORDER BY time))[1] AS first,
       (array_agg(value ORDER BY time DESC))[1] AS last,
       coalesce(sum(CASE WHEN value >= prev THEN value - prev ELSE value END)
                FILTER (WHERE prev IS NOT NULL), 0) AS increase,
       (array_agg(value) FILTER (WHERE time = bucket))[1] AS head
FROM s GROUP BY bucket, series_id ORDER BY series_id, bucket
"""
"""Plain SQL over raw samples, written independently of the rollup code (window
functions, which continuous aggregates cannot use): the expected rollup rows."""


async def expected(
    conn: asyncpg.Connection, width: timedelta, series: Iterable[int]
) -> list[dict[str, Any]]:
    return [dict(r) for r in await conn.fetch(ORACLE, width, list(series))]


async def actual(
    conn: asyncpg.Connection, table: str, series: Iterable[int]
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT bucket, series_id, min, max, sum, count, first, last, increase, head FROM {table}"  # noqa: S608
        " WHERE series_id = ANY($1::bigint[]) ORDER BY series_id, bucket",
        list(series),
    )
    return [dict(r) for r in rows]


def assert_rows_equal(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    """Equal row for row; float columns to 1e-9 relative (sums depend on addition order)."""
    assert [(r["bucket"], r["series_id"]) for r in got] == [
        (r["bucket"], r["series_id"]) for r in want
    ]
    for g, w in zip(got, want, strict=True):
        for column, value in w.items():
            other = g[column]
            if isinstance(value, float) and isinstance(other, float):
                assert same_float(other, value), (column, g, w)
            else:
                assert other == value, (column, g, w)


def same_float(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
