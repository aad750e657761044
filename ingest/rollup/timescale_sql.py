"""timescale mode: continuous aggregates and policies, as SQL planned from the config.

Pure: :func:`plan_timescale` takes the storage settings and what already
exists (:class:`TimescaleState`) and returns the statements that bring the
database there; :mod:`ingest.rollup.schema` reads the state and runs them.
Snapshot tests pin the text (``tests/ingest/rollup/snapshots/``).

Design (TimescaleDB >= 2.9 for hierarchical continuous aggregates; the
finalized form of 2.7+ allows aggregates with ORDER BY and without a combine
function, which ``vigil_increase`` needs):

- ``samples_1m``: a continuous aggregate over ``samples`` with the SELECT of
  :data:`ingest.rollup.aggregates.MINUTE`, the same one apache mode upserts
  with, so both modes compute identical rows. ``increase`` cannot use window
  functions (not allowed in continuous aggregates) nor Toolkit's
  ``counter_agg`` (not in the official image), so it is an ordered custom
  aggregate, ``vigil_increase(value ORDER BY time)`` (migration 0002), whose
  state carries first, last and the running increase.
- ``samples_1h``: hierarchical, over ``samples_1m``, combining minute rows
  with ``vigil_increase_merge(first, last, increase ORDER BY bucket)``, which
  adds the counter steps across minute boundaries: equal to aggregating the
  hour's raw samples.
- ``materialized_only = true`` (no real-time union with raw data), as apache
  mode's tables: a bucket appears once refreshed, in both modes alike.
- Refresh policies: ``samples_1m`` every minute over
  ``[now - (rollup_late_window + 2m), now - 1m]``; ``samples_1h`` every 15
  minutes over ``[now - (that + 1h15m, rounded up to an hour), now - 1h]``, so
  a late sample's minute is re-materialized and then its hour. Data older
  than the window on arrival is stored raw but not rolled up (apache mode has
  no such limit).
- Retention policies per resolution; compression of ``samples`` segmented by
  ``series_id`` and ordered by ``time``, after ``compress_after`` (late
  inserts into compressed chunks work since TimescaleDB 2.11, slower).
- Refreshing a window whose raw data retention dropped would delete those
  rollups, so :func:`refresh_windows` refuses a window that reaches past
  ``retention.raw`` (and the hour window past ``retention.rollup_1m``).
- Policies are removed and added again on every start-up, so a changed
  setting takes effect; the views are created once (``WITH NO DATA``: the
  first policy run materializes), and compression is enabled once (it cannot
  be re-set while compressed chunks exist).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from ingest.rollup.aggregates import HOUR, MINUTE, Resolution
from ingest.rollup.errors import RollupConfigError, RollupSchemaError
from ingest.rollup.statement import Statement, days_hours
from shared.config.models import StorageConfig

ROLLUPS = (MINUTE, HOUR)


@dataclass(frozen=True, slots=True)
class TimescaleState:
    """What exists already, by relation name in the current schema."""

    continuous_aggregates: frozenset[str] = frozenset()
    other_relations: frozenset[str] = frozenset()
    """Rollup names taken by something that is not a continuous aggregate."""
    compression_enabled: bool = False
    """Whether ``samples`` has compression settings."""
    without_head: frozenset[str] = frozenset()
    """Rollups made by a Vigil before the ``head`` column (tables or aggregates)."""


@dataclass(frozen=True, slots=True)
class Window:
    """A refresh policy of one continuous aggregate."""

    start_offset: timedelta
    end_offset: timedelta
    schedule: timedelta


@dataclass(frozen=True, slots=True)
class RefreshWindows:
    minute: Window
    hour: Window


def refresh_windows(storage: StorageConfig) -> RefreshWindows:
    """The refresh policies for ``storage``; raise if one would reach dropped data."""
    late = timedelta(seconds=storage.rollup_late_window)
    minute = Window(
        start_offset=late + timedelta(minutes=2),
        end_offset=timedelta(minutes=1),
        schedule=timedelta(minutes=1),
    )
    hour_schedule = timedelta(minutes=15)
    reach = minute.start_offset + timedelta(hours=1) + hour_schedule
    hour = Window(
        start_offset=timedelta(hours=math.ceil(reach / timedelta(hours=1))),
        end_offset=timedelta(hours=1),
        schedule=hour_schedule,
    )
    _check_within(minute.start_offset, "samples_1m", storage.retention.raw, "retention.raw")
    _check_within(
        hour.start_offset, "samples_1h", storage.retention.rollup_1m, "retention.rollup_1m"
    )
    return RefreshWindows(minute, hour)


def _check_within(start_offset: timedelta, view: str, retention_s: float, setting: str) -> None:
    if start_offset.total_seconds() < retention_s:
        return
    raise RollupConfigError(
        f"cannot configure rollups: the refresh window of {view} reaches back"
        f" {_dur(start_offset)} (storage.rollup_late_window plus margins), not less than"
        f" storage.{setting} ({days_hours(retention_s)}): refreshing over dropped data"
        f" would delete {view} rows; shorten storage.rollup_late_window or lengthen"
        f" storage.{setting}"
    )


def plan_timescale(storage: StorageConfig, state: TimescaleState) -> list[Statement]:
    """Statements that set up rollups, compression and retention; run each on its own."""
    clash = state.other_relations & {r.table for r in ROLLUPS}
    if clash:
        raise RollupSchemaError(
            f"cannot create continuous aggregates: {', '.join(sorted(clash))} exist as plain"
            " tables (made in apache mode?); move their rows elsewhere and drop them first"
        )
    stale = state.continuous_aggregates & state.without_head
    if stale:
        names = ", ".join(sorted(stale))
        raise RollupSchemaError(
            f"cannot use continuous aggregates {names}: made by an earlier Vigil without the"
            " head column (a continuous aggregate's query cannot be altered); drop them"
            f" (DROP MATERIALIZED VIEW {names} CASCADE) and start again:"
            " they are rebuilt from the raw samples that retention kept"
        )
    windows = refresh_windows(storage)
    statements = [_create_view(r) for r in ROLLUPS if r.table not in state.continuous_aggregates]
    if not state.compression_enabled:
        statements.append(
            Statement(
                "ALTER TABLE samples SET (timescaledb.compress,"
                " timescaledb.compress_segmentby = 'series_id',"
                " timescaledb.compress_orderby = 'time')",
                why="compress raw chunks per series, in time order",
            )
        )
    statements += [
        Statement(
            "SELECT remove_compression_policy('samples', if_exists => true)",
            why="replace the compression policy",
        ),
        Statement(
            "SELECT add_compression_policy('samples', compress_after => $1::interval)",
            (_td(storage.compress_after),),
            why="compress raw chunks after storage.compress_after",
        ),
    ]
    for r, w in ((MINUTE, windows.minute), (HOUR, windows.hour)):
        statements += [
            Statement(
                f"SELECT remove_continuous_aggregate_policy('{r.table}', if_exists => true)",
                why=f"replace the refresh policy of {r.table}",
            ),
            Statement(
                f"SELECT add_continuous_aggregate_policy('{r.table}',"
                " start_offset => $1::interval, end_offset => $2::interval,"
                " schedule_interval => $3::interval)",
                (w.start_offset, w.end_offset, w.schedule),
                why=f"refresh {r.table}",
            ),
        ]
    for table, keep in (
        ("samples", storage.retention.raw),
        (MINUTE.table, storage.retention.rollup_1m),
        (HOUR.table, storage.retention.rollup_1h),
    ):
        statements += [
            Statement(
                f"SELECT remove_retention_policy('{table}', if_exists => true)",
                why=f"replace the retention policy of {table}",
            ),
            Statement(
                f"SELECT add_retention_policy('{table}', drop_after => $1::interval)",
                (_td(keep),),
                why=f"drop {table} chunks older than its retention",
            ),
        ]
    return statements


def _create_view(r: Resolution) -> Statement:
    return Statement(
        f"CREATE MATERIALIZED VIEW {r.table}\n"
        "WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS\n"
        f"{r.query()}\nWITH NO DATA",
        why=f"continuous aggregate {r.table} over {r.source}",
    )


def _td(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def _dur(td: timedelta) -> str:
    return days_hours(td.total_seconds())
