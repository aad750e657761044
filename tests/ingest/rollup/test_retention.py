"""Retention drops raw chunks and keeps the rollups made from them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from ingest.rollup.jobs import RollupJobs
from ingest.rollup.mode import Mode
from ingest.rollup.retention import apply_retention
from shared.config.models import StorageConfig
from tests.ingest.rollup.conftest import RollupDb
from tests.ingest.rollup.helpers import roll_up, write

pytestmark = pytest.mark.timescale

DAY = timedelta(days=1)


@pytest.fixture
async def conn(rollup_db: RollupDb) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(rollup_db.url)
    yield c
    await c.close()


def minute_of(t: datetime) -> datetime:
    return t.replace(second=0, microsecond=0)


def hour_of(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


async def count(conn: asyncpg.Connection, table: str, column: str, before: datetime) -> int:
    value = await conn.fetchval(
        f"SELECT count(*) FROM {table} WHERE {column} < $1",  # noqa: S608 - test constants
        before,
    )
    assert isinstance(value, int)
    return value


async def test_apache_retention_drops_raw_chunks_and_keeps_rollups(
    rollup_db: RollupDb, conn: asyncpg.Connection
) -> None:
    if rollup_db.mode is not Mode.APACHE:
        pytest.skip("apache mode: Vigil's jobs drop chunks; timescale mode is tested below")
    now = datetime.now(UTC)
    old = hour_of(now - 40 * DAY)  # its two minutes in one hour
    recent = minute_of(now - 2 * timedelta(hours=1))
    await write(conn, [(old + timedelta(seconds=s), 1, float(s)) for s in range(0, 120, 10)])
    await write(conn, [(recent + timedelta(seconds=s), 1, float(s)) for s in range(0, 60, 10)])
    retention = StorageConfig().retention

    # Not rolled up yet: the old raw chunk stays, whatever its age.
    dropped = await apply_retention(conn, retention, now)
    assert dropped["samples"] == 0
    assert await count(conn, "samples", "time", now - 15 * DAY) == 12

    # A minute and an hour row 100 days old: past the minute retention, within the hour's.
    ancient = minute_of(now - 100 * DAY)
    for table in ("samples_1m", "samples_1h"):
        await conn.execute(
            f"INSERT INTO {table} VALUES ($1, 1, 0, 0, 0, 1, 0, 0, 0)",  # noqa: S608
            ancient,
        )

    jobs = RollupJobs(rollup_db.url, StorageConfig(), settle=timedelta(0))
    try:
        report = await jobs.run_once(now)
    finally:
        await jobs.close()

    assert report.outcome == "ran"
    assert report.dropped["samples"] >= 1
    assert await count(conn, "samples", "time", now - 15 * DAY) == 0
    assert await count(conn, "samples", "time", now) == 6  # recent raw data stays
    assert await count(conn, "samples_1m", "bucket", now - 15 * DAY) == 2  # old's two minutes
    assert await count(conn, "samples_1m", "bucket", now - 90 * DAY) == 0
    assert await count(conn, "samples_1h", "bucket", now - 15 * DAY) == 2  # old's hour, ancient


async def test_timescale_retention_policy_drops_raw_chunks_and_keeps_aggregates(
    rollup_db: RollupDb, conn: asyncpg.Connection
) -> None:
    if rollup_db.mode is not Mode.TIMESCALE:
        pytest.skip("timescale mode only: retention and refresh policies need its license")
    jobs = {
        (r["proc_name"], r["drop_after"])
        for r in await conn.fetch(
            "SELECT proc_name, config->>'drop_after' AS drop_after"
            " FROM timescaledb_information.jobs WHERE proc_name LIKE 'policy_%'"
        )
    }
    assert ("policy_retention", "15 days") in jobs
    assert ("policy_retention", "90 days") in jobs
    assert sum(1 for name, _ in jobs if name == "policy_refresh_continuous_aggregate") == 2
    assert sum(1 for name, _ in jobs if name == "policy_compression") == 1

    job_id = await conn.fetchval(
        "SELECT job_id FROM timescaledb_information.jobs"
        " WHERE proc_name = 'policy_retention' AND hypertable_name = 'samples'"
    )
    await conn.execute("SELECT alter_job($1, scheduled => false)", job_id)  # no race with us
    now = datetime.now(UTC)
    old = hour_of(now - 40 * DAY)  # its two minutes in one hour
    await write(conn, [(old + timedelta(seconds=s), 2, float(s)) for s in range(0, 120, 10)])
    await roll_up(rollup_db.url, rollup_db.mode, old - timedelta(hours=1), old + timedelta(hours=2))
    assert await count(conn, "samples_1m", "bucket", now - 15 * DAY) == 2

    await conn.execute(f"CALL run_job({int(job_id)})")

    assert await count(conn, "samples", "time", now - 15 * DAY) == 0
    assert await count(conn, "samples_1m", "bucket", now - 15 * DAY) == 2
    assert await count(conn, "samples_1h", "bucket", now - 15 * DAY) == 1
