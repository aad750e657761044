"""Rollup objects that differ by license mode, made at start-up after migrations.

:func:`prepare_rollups` (idempotent, safe for replicas starting together:
they serialize on an advisory lock) detects the mode and then:

- apache: creates ``samples_1m`` and ``samples_1h`` as hypertables with a
  unique ``(series_id, bucket)`` index (:func:`apache_statements`), kept by
  :class:`ingest.rollup.jobs.RollupJobs`;
- timescale: creates the continuous aggregates and (re)sets the policies
  planned by :func:`ingest.rollup.timescale_sql.plan_timescale`.

The chunk intervals follow TimescaleDB's default for continuous aggregates
(ten times the source's), so both modes chunk alike: ``samples_1m`` ten times
``chunk_interval``, ``samples_1h`` a hundred times.
"""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from ingest.rollup.aggregates import HOUR, MINUTE, Resolution
from ingest.rollup.errors import RollupSchemaError
from ingest.rollup.mode import Mode, detect_mode
from ingest.rollup.statement import Statement
from ingest.rollup.timescale_sql import TimescaleState, plan_timescale
from shared.config.models import StorageConfig
from shared.log import get_logger

log = get_logger(__name__)

SCHEMA_LOCK = 0x76696769_6C726F6C  # "vigilrol": rollup set-up, one replica at a time

_RELATIONS = """
SELECT c.relname AS name,
       EXISTS (SELECT 1 FROM timescaledb_information.continuous_aggregates ca
               WHERE ca.view_schema = current_schema() AND ca.view_name = c.relname) AS cagg,
       EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'head'
               AND NOT a.attisdropped) AS head
FROM pg_class c
WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = ANY($1::text[])
"""
_COMPRESSION = """
SELECT coalesce(bool_or(compression_enabled), false) FROM timescaledb_information.hypertables
WHERE hypertable_schema = current_schema() AND hypertable_name = 'samples'
"""


_HEAD_FROM = {
    MINUTE.table: (
        "UPDATE samples_1m r SET head = s.value FROM samples s WHERE s.series_id = r.series_id"
        " AND s.time = r.bucket AND s.value <> 'NaN'::float8"
    ),
    HOUR.table: (
        "UPDATE samples_1h r SET head = m.head FROM samples_1m m WHERE m.series_id = r.series_id"
        " AND m.bucket = r.bucket AND m.head IS NOT NULL"
    ),
}
"""Backfill of ``head`` in rows made before the column: from the raw samples that
retention kept (minutes), then from the minutes (hours)."""


def apache_statements(
    storage: StorageConfig, state: TimescaleState | None = None
) -> list[Statement]:
    """Idempotent DDL of the apache-mode rollup tables; tables of an earlier Vigil
    (``state.without_head``) get the ``head`` column, filled where the data still is."""
    old = state.without_head & state.other_relations if state else frozenset()
    statements: list[Statement] = []
    for r, factor in ((MINUTE, 10), (HOUR, 100)):
        statements += [
            Statement(_table_ddl(r), why=f"rollup table {r.table}"),
            Statement(
                f"SELECT create_hypertable('{r.table}', by_range('bucket', $1::interval),"
                " create_default_indexes => false, if_not_exists => true)",
                (timedelta(seconds=storage.chunk_interval * factor),),
                why=f"{r.table} in time chunks, for drop_chunks retention",
            ),
        ]
        if r.table in old:
            # One simple-protocol call: the column and its backfill in one transaction.
            statements.append(
                Statement(
                    f"ALTER TABLE {r.table} ADD COLUMN IF NOT EXISTS head double precision;\n"
                    f"{_HEAD_FROM[r.table]}",
                    why=f"{r.table} of an earlier Vigil: add and fill the head column",
                )
            )
    return statements


def _table_ddl(r: Resolution) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {r.table} (\n"
        "    bucket     timestamptz      NOT NULL,\n"
        "    series_id  bigint           NOT NULL,\n"
        "    min        double precision NOT NULL,\n"
        "    max        double precision NOT NULL,\n"
        "    sum        double precision NOT NULL,\n"
        "    count      bigint           NOT NULL,\n"
        "    first      double precision NOT NULL,\n"
        "    last       double precision NOT NULL,\n"
        "    increase   double precision NOT NULL,\n"
        "    head       double precision,\n"
        "    UNIQUE (series_id, bucket)\n"
        ")"
    )


async def read_timescale_state(conn: asyncpg.Connection) -> TimescaleState:
    rows = await conn.fetch(_RELATIONS, [MINUTE.table, HOUR.table])
    return TimescaleState(
        continuous_aggregates=frozenset(r["name"] for r in rows if r["cagg"]),
        other_relations=frozenset(r["name"] for r in rows if not r["cagg"]),
        compression_enabled=bool(await conn.fetchval(_COMPRESSION)),
        without_head=frozenset(r["name"] for r in rows if not r["head"]),
    )


async def prepare_rollups(url: str, storage: StorageConfig) -> Mode:
    """Create or update the rollup objects for the server's mode; return the mode.

    Run after :func:`ingest.migrate.migrate` (it needs ``samples`` and the
    functions of migration 0002). Opens a connection of its own. Raises
    :class:`RollupConfigError` for settings that would lose data and
    :class:`RollupSchemaError` when the database refuses.
    """
    try:
        conn = await asyncpg.connect(url, timeout=30)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        raise RollupSchemaError(f"cannot connect to the database to set up rollups: {exc}") from exc
    try:
        mode = await detect_mode(conn)
        # A session lock on this connection of our own; statements run one by one
        # outside a transaction block, as continuous-aggregate DDL prefers.
        await conn.execute("SELECT pg_advisory_lock($1)", SCHEMA_LOCK)
        try:
            state = await read_timescale_state(conn)
            if mode is Mode.APACHE:
                if state.continuous_aggregates:
                    raise RollupSchemaError(
                        "cannot create rollup tables: "
                        f"{', '.join(sorted(state.continuous_aggregates))} are continuous"
                        " aggregates (made under the timescale license), and this server runs"
                        " the apache license"
                    )
                statements = apache_statements(storage, state)
            else:
                statements = plan_timescale(storage, state)
            for st in statements:
                await conn.execute(st.sql, *st.args)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", SCHEMA_LOCK)
    except asyncpg.PostgresError as exc:
        raise RollupSchemaError(f"cannot set up rollups: {exc}") from exc
    finally:
        await conn.close()
    log.info("rollups ready", mode=str(mode), statements=len(statements))
    return mode
