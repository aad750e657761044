"""apache mode: the rollup and retention jobs, run by one ingest replica at a time.

Use from ingest's App, after migrations and :func:`ingest.rollup.schema.prepare_rollups`::

    jobs = RollupJobs(database_url, config.storage)
    task = asyncio.create_task(jobs.run_forever(interval=30.0))
    ...
    task.cancel()               # App.stop()
    await jobs.close()

Every replica may run it: each run first tries a session advisory lock and
skips the run when another replica holds it. In timescale mode every run is
a no-op (policies do the work), so the App need not check the mode.

A run (:meth:`RollupJobs.run_once`) refreshes due minute buckets, then due
hour buckets (:mod:`ingest.rollup.refresh`), then drops expired chunks
(:mod:`ingest.rollup.retention`), each step in bounded transactions; work
left over is picked up by the next run, which ``run_forever`` starts at once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

import asyncpg

from ingest.rollup.errors import RollupError, RollupJobError
from ingest.rollup.mode import Mode, detect_mode
from ingest.rollup.refresh import HOURS, MINUTES, refresh_level
from ingest.rollup.retention import apply_retention
from shared.config.models import StorageConfig
from shared.log import get_logger

log = get_logger(__name__)

JOBS_LOCK = 0x76696769_6C6A6F62  # "vigiljob": one rollup job runner per database

_DB_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


@dataclass(frozen=True, slots=True)
class RunReport:
    """What one run did. ``outcome``: ``ran``; ``locked`` (another replica holds
    the jobs lock: nothing done); ``timescale`` (policies keep rollups: nothing to do)."""

    outcome: Literal["ran", "locked", "timescale"]
    minutes: int = 0
    """One-minute buckets recomputed."""
    hours: int = 0
    """One-hour buckets recomputed."""
    dropped: dict[str, int] = field(default_factory=dict)
    """Chunks dropped, per hypertable."""
    more: bool = False
    """Due work was left for the next run."""


class RollupJobs:
    """The apache-mode jobs on one dedicated connection of their own.

    The connection is not taken from a pool on purpose: the jobs lock is a
    *session* advisory lock, and asyncpg's pool resets a connection on release
    (``pg_advisory_unlock_all()``), so a lock taken on a pooled connection would
    silently go while this replica still believes it holds it. If the
    connection breaks, the server ends the session and the lock with it.

    ``settle``: how long after a bucket ends before it is rolled up (writes to
    it meanwhile cost nothing extra); ``max_buckets``: buckets per transaction;
    ``max_transactions``: transactions per level per run. Not safe for
    concurrent calls on one instance; one instance per process.
    """

    def __init__(
        self,
        database_url: str,
        storage: StorageConfig,
        *,
        settle: timedelta = timedelta(seconds=30),
        max_buckets: int = 30,
        max_transactions: int = 20,
    ) -> None:
        self._url = database_url
        self._storage = storage
        self._settle = settle
        self._max_buckets = max_buckets
        self._max_transactions = max_transactions
        self._conn: asyncpg.Connection | None = None
        self._mode: Mode | None = None

    async def run_once(self, now: datetime | None = None) -> RunReport:
        """One run at ``now`` (default: the wall clock). Raises :class:`RollupJobError`
        when the database fails; what committed before stays, the rest is retried."""
        now = now if now is not None else datetime.now(UTC)
        try:
            conn = await self._connection()
            if self._mode is Mode.TIMESCALE:
                return RunReport("timescale")
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", JOBS_LOCK):
                return RunReport("locked")
            try:
                return await self._run(conn, now)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", JOBS_LOCK)
        except _DB_ERRORS as exc:
            await self._discard()
            raise RollupJobError(f"cannot run the rollup jobs: {exc}") from exc

    async def _run(self, conn: asyncpg.Connection, now: datetime) -> RunReport:
        minutes, hours = [
            await refresh_level(
                conn,
                level,
                now,
                settle=self._settle,
                max_buckets=self._max_buckets,
                max_transactions=self._max_transactions,
            )
            for level in (MINUTES, HOURS)
        ]
        dropped = await apply_retention(conn, self._storage.retention, now)
        return RunReport(
            "ran",
            minutes=minutes.buckets,
            hours=hours.buckets,
            dropped=dropped,
            more=minutes.more or hours.more,
        )

    async def run_forever(self, interval: float = 30.0) -> None:
        """Run every ``interval`` seconds (at once while work is left) until cancelled.

        A failing run is logged once when failures start and once when a run
        succeeds again; it never ends the loop.
        """
        failing = False
        while True:
            delay = interval
            try:
                report = await self.run_once()
            except RollupError as exc:
                if not failing:
                    log.warning("rollup jobs failing", error=str(exc))
                failing = True
            else:
                if failing:
                    log.info("rollup jobs recovered")
                failing = False
                if report.outcome == "ran" and (report.minutes or report.hours or report.more):
                    log.debug(
                        "rollup jobs ran",
                        minutes=report.minutes,
                        hours=report.hours,
                        dropped=report.dropped,
                    )
                if report.more:
                    delay = 0.0
            await asyncio.sleep(delay)

    async def close(self) -> None:
        """Close the connection (releasing the lock if a run was interrupted)."""
        await self._discard()

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(self._url, timeout=30)
            self._mode = await detect_mode(self._conn)
        return self._conn

    async def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), timeout=5)
            except _DB_ERRORS:
                conn.terminate()
