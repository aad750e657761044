"""What reports read from TimescaleDB: series by selector, raw points, rollup points.

``Database`` is the seam: ``asyncpg.Pool`` satisfies it, and every read here
is one ``fetch`` (no transaction, any pooled connection). Series are found
with the same matcher translation as the PromQL storage
(:class:`shared.promql.seriessql.SeriesSql`: every label name and value is a bind
parameter), so a selector selects the same series in a report as in a query.

Points come back per series id as ``(times_ms, values)`` numpy arrays in time
order: raw samples with their timestamps, rollup buckets with the bucket start
and the bucket's mean (``sum / count``; NaN values are not in rollups).
Driver failures become :class:`web.reports.errors.ReportUnavailable`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg
import numpy as np
import numpy.typing as npt

from shared.promql.rollupfuncs import WIDTHS_MS
from shared.promql.seriessql import SeriesSql, ms_to_datetime
from shared.promql.storage import LabelMatcher
from web.reports.errors import BadRequest, ReportUnavailable

"""The rollup tables reports read, with their bucket width (a fixed allow-list)."""

Points = tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]
"""(times in epoch ms, values) of one series, in time order."""


class Database(Protocol):
    """Runs one read-only statement with bind parameters and returns its rows.

    Rows are indexable by column position and name (asyncpg ``Record``). Called
    concurrently; each call may run on any connection.
    """

    async def fetch(self, query: str, *args: Any) -> list[Any]: ...


@dataclass(frozen=True, slots=True)
class SeriesRef:
    """One stored series: its id, metric name and labels (without ``__name__``)."""

    id: int
    metric: str
    labels: dict[str, str]


async def _fetch(db: Database, what: str, query: str, *args: Any) -> list[Any]:
    try:
        return await db.fetch(query, *args)
    except asyncpg.InvalidRegularExpressionError as exc:
        raise BadRequest(f"cannot {what}: invalid regular expression: {exc}") from exc
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise ReportUnavailable(f"cannot {what}: {exc}") from exc


async def find_series(
    db: Database, matcher_sets: Sequence[Sequence[LabelMatcher]], limit: int
) -> list[SeriesRef]:
    """Series matching any of ``matcher_sets``, ordered by metric and labels.

    More than ``limit`` matches is a :class:`BadRequest` naming the count.
    """
    sql = SeriesSql()
    where = sql.any_of(matcher_sets)
    rows = await _fetch(
        db,
        "select series",
        f"SELECT s.id, s.metric, s.labels::text FROM series s WHERE {where}"  # noqa: S608 - values are bound
        f" ORDER BY s.metric, s.labels::text LIMIT {int(limit) + 1}",
        *sql.params,
    )
    if len(rows) > limit:
        raise BadRequest(
            f"cannot report: the selector matches more than {limit} series; narrow it down"
        )
    return [SeriesRef(int(r[0]), r[1], json.loads(r[2])) for r in rows]


async def find_pairs(
    db: Database, numerator: str, denominator: str, exclude: dict[str, str] | None = None
) -> list[tuple[SeriesRef, SeriesRef]]:
    """Series of ``numerator`` paired with the ``denominator`` series of identical labels.

    ``exclude`` maps a label name to a regex (anchored) whose matches are left out.
    """
    sql = SeriesSql()
    conds = [f"a.metric = {sql.bind(numerator)}::text", f"b.metric = {sql.bind(denominator)}::text"]
    conds += [
        sql.condition(LabelMatcher(name, "!~", regex), alias="a")
        for name, regex in (exclude or {}).items()
    ]
    rows = await _fetch(
        db,
        f"pair {numerator} with {denominator}",
        "SELECT a.id, b.id, a.labels::text FROM series a JOIN series b ON b.labels = a.labels"  # noqa: S608 - values are bound
        f" WHERE {' AND '.join(conds)} ORDER BY a.labels::text",
        *sql.params,
    )
    out: list[tuple[SeriesRef, SeriesRef]] = []
    for a_id, b_id, raw in rows:
        labels = json.loads(raw)
        out.append(
            (SeriesRef(int(a_id), numerator, labels), SeriesRef(int(b_id), denominator, labels))
        )
    return out


def _points(rows: list[Any]) -> dict[int, Points]:
    return {
        int(r[0]): (np.asarray(r[1], dtype=np.int64), np.asarray(r[2], dtype=np.float64))
        for r in rows
    }


async def raw_points(
    db: Database, ids: Sequence[int], start_ms: int, end_ms: int
) -> dict[int, Points]:
    """Raw samples in ``[start_ms, end_ms)``, NaN values (staleness markers) included."""
    if not ids:
        return {}
    rows = await _fetch(
        db,
        "read samples",
        "SELECT series_id, array_agg((extract(epoch FROM time) * 1000)::int8 ORDER BY time),"
        " array_agg(value ORDER BY time) FROM samples"
        " WHERE series_id = ANY($1::int8[]) AND time >= $2 AND time < $3 GROUP BY series_id",
        list(ids),
        ms_to_datetime(start_ms),
        ms_to_datetime(end_ms),
    )
    return _points(rows)


async def rollup_points(
    db: Database, table: str, ids: Sequence[int], start_ms: int, end_ms: int
) -> dict[int, Points]:
    """Buckets of ``table`` starting in ``[start_ms, end_ms)``: (bucket start, mean value)."""
    if table not in WIDTHS_MS:
        raise ValueError(f"BUG: cannot read rollup {table!r}: not a rollup table")
    if not ids:
        return {}
    rows = await _fetch(
        db,
        f"read {table}",
        "SELECT series_id, array_agg((extract(epoch FROM bucket) * 1000)::int8 ORDER BY bucket),"  # noqa: S608 - table from the allow-list
        f" array_agg(sum / count ORDER BY bucket) FROM {table}"
        " WHERE series_id = ANY($1::int8[]) AND bucket >= $2 AND bucket < $3 AND count > 0"
        " GROUP BY series_id",
        list(ids),
        ms_to_datetime(start_ms),
        ms_to_datetime(end_ms),
    )
    return _points(rows)


async def last_values(
    db: Database, ids: Sequence[int], start_ms: int, end_ms: int
) -> dict[int, tuple[int, float]]:
    """The latest non-NaN raw sample of each series in ``[start_ms, end_ms]``: (time ms, value)."""
    if not ids:
        return {}
    rows = await _fetch(
        db,
        "read latest samples",
        "SELECT i, (extract(epoch FROM x.time) * 1000)::int8, x.value"
        " FROM unnest($1::int8[]) AS i, LATERAL (SELECT time, value FROM samples"
        " WHERE series_id = i AND time >= $2 AND time <= $3 AND value <> 'NaN'::float8"
        " ORDER BY time DESC LIMIT 1) AS x",
        list(ids),
        ms_to_datetime(start_ms),
        ms_to_datetime(end_ms),
    )
    return {int(r[0]): (int(r[1]), float(r[2])) for r in rows}
