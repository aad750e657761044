"""The apache-mode job runner: one replica at a time, failures reported, a loop that runs."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import pytest

from ingest.rollup.errors import RollupJobError
from ingest.rollup.jobs import JOBS_LOCK, RollupJobs
from ingest.rollup.mode import Mode
from shared.config.models import StorageConfig
from tests.ingest.rollup.conftest import RollupDb
from tests.ingest.rollup.helpers import recent_hour, write

pytestmark = pytest.mark.timescale


def apache_only(db: RollupDb) -> None:
    if db.mode is not Mode.APACHE:
        pytest.skip("apache mode only: in timescale mode policies keep the rollups")


async def jobs_lock_held(conn: asyncpg.Connection) -> bool:
    held = await conn.fetchval(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND classid = $1 AND objid = $2 AND objsubid = 1",
        JOBS_LOCK >> 32,
        JOBS_LOCK & 0xFFFFFFFF,
    )
    return bool(held)


async def test_two_runners_at_once_only_one_runs_and_the_other_skips(rollup_db: RollupDb) -> None:
    apache_only(rollup_db)
    start = recent_hour(2)
    blocker = await asyncpg.connect(rollup_db.url)
    first = RollupJobs(rollup_db.url, StorageConfig(), settle=timedelta(0))
    second = RollupJobs(rollup_db.url, StorageConfig(), settle=timedelta(0))
    try:
        await write(blocker, [(start + timedelta(seconds=s), 900, 1.0) for s in range(0, 60, 10)])
        # Hold the first runner inside its run: it blocks on writing samples_1m.
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("LOCK TABLE samples_1m IN EXCLUSIVE MODE")
        running = asyncio.create_task(first.run_once())
        for _ in range(200):  # bounded wait until the first holds the jobs lock
            if await jobs_lock_held(blocker):
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the first runner never took the jobs lock")

        skipped = await second.run_once()
        await tx.rollback()
        ran = await asyncio.wait_for(running, timeout=30)

        assert skipped.outcome == "locked"
        assert ran.outcome == "ran"
        assert ran.minutes >= 1
        assert not await jobs_lock_held(blocker)  # released after the run
        assert (await second.run_once()).outcome == "ran"
    finally:
        await first.close()
        await second.close()
        await blocker.close()


async def test_run_forever_rolls_up_until_cancelled(rollup_db: RollupDb) -> None:
    apache_only(rollup_db)
    start = recent_hour(2)
    conn = await asyncpg.connect(rollup_db.url)
    jobs = RollupJobs(rollup_db.url, StorageConfig(), settle=timedelta(0))
    try:
        await write(conn, [(start + timedelta(seconds=s), 901, 2.0) for s in range(0, 60, 10)])
        task = asyncio.create_task(jobs.run_forever(interval=0.05))
        for _ in range(200):  # bounded
            if await conn.fetchval("SELECT count(*) FROM samples_1h WHERE series_id = 901"):
                break
            await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        row = await conn.fetchrow("SELECT count, sum FROM samples_1m WHERE series_id = 901")
        assert row is not None
        assert (row["count"], row["sum"]) == (6, 12.0)
    finally:
        await jobs.close()
        await conn.close()


async def test_timescale_mode_runs_are_no_ops(rollup_db: RollupDb) -> None:
    if rollup_db.mode is not Mode.TIMESCALE:
        pytest.skip("timescale mode only")
    jobs = RollupJobs(rollup_db.url, StorageConfig())
    try:
        assert (await jobs.run_once()).outcome == "timescale"
    finally:
        await jobs.close()


async def test_an_unreachable_database_is_a_rollup_job_error() -> None:
    jobs = RollupJobs("postgresql://vigil@127.0.0.1:1/none", StorageConfig())
    with pytest.raises(RollupJobError, match=r"^cannot run the rollup jobs: "):
        await jobs.run_once()
    await jobs.close()
