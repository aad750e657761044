"""The PromQL ``Storage`` over TimescaleDB (``shared.promql.storage.Storage``).

Series selection
    ``shared.promql.seriessql.SeriesSql``: one SQL condition per matcher on
    ``series``, every label name and value a bind parameter.

Samples
    One statement, one round trip: the series matching the matchers, each
    joined (``LATERAL``) with its samples in the range, read by its own index
    scan on ``(series_id, time)`` (so in time order, no sort) and packed by
    ``string_agg`` into one ``bytea`` per column (``timestamptz_send``,
    ``float8send``): one row per series, decoded with one
    ``numpy.frombuffer`` per column for all series. Values stay bit for bit
    (NaN payloads and the staleness marker survive) and no Python object is
    made per sample. A series with no sample in the range is not returned.
    Every matcher value and both bounds are bind parameters; asyncpg keeps the
    statement prepared per connection (its text depends only on the number
    and kinds of the matchers and the table).

    A selection that read more than ``parallel_min_samples`` samples the last
    time (per matcher set and table; a hint only, any split gives the same
    answer) is split in up to ``parallel`` statements (``s.id % parts = k``)
    on as many pooled connections, so several PostgreSQL backends work at
    once. Parsed label sets are kept by series id (``_LabelSets``).

    The pool should be made with ``POOL_OPTIONS``: no reset query on release
    (the storage leaves no session state; asyncpg's default reset is one
    more round trip per query), no JIT (milliseconds of compilation per
    large selection, never paid back by these index scans) and custom plans
    (a generic plan's run-time chunk exclusion per series costs more than
    planning each execution).

Rollups (``samples_1m``, ``samples_1h``)
    Off unless ``rollups=True`` (``visualization.query_rollups``). With it,
    ``select`` answers from a rollup only when every condition holds, and
    from raw samples otherwise:

    - ``hints.func`` is in ``rollup_funcs``: by default ``max_over_time``,
      ``min_over_time`` and ``sum_over_time`` (``DEFAULT_ROLLUP_FUNCS``);
      ``ALL_ROLLUP_FUNCS`` adds ``count_over_time``, ``avg_over_time``,
      ``rate`` and ``increase``, which a caller must ask for (the app does
      not yet: no config field);
    - ``hints.range_ms`` and ``hints.step_ms`` (0 for an instant query) are
      multiples of the bucket width, and so is the selection's ``end_ms``:
      every window the engine evaluates is then a whole number of buckets;
    - ``end_ms`` is at least ``rollup_fresh_ms`` (default 2 h) before now:
      rollups lag raw data by their refresh, so recent data is read raw.

    The hour table is used when range and step are whole hours, else the
    minute table. The answer is one point per bucket: timestamp = bucket start
    + width - 1 ms (the last instant the bucket covers), ``values`` = the
    first of the function's columns (``ROLLUP_COLUMNS``: ``max``, ``min``,
    ``sum``, ``count``, ``sum``+``count``, ``increase``+``first``+``last``+
    ``count``), ``Series.extra`` = the others by name and ``head``,
    ``Series.rollup`` = ``"<table>.<col>+<col>...+head"``. The engine reads
    them with ``shared.promql.rollupfuncs`` (which says what each function
    computes).

    Window edges: a bucket covers ``[start, start + width)`` while Prometheus
    2.x's window is ``[t - range, t]``, so the buckets of a window miss a
    sample lying exactly on its end ``t`` (on aligned scrapes, every window
    has one). Every rollup row keeps that sample: ``head``, the non-NaN raw
    sample exactly on the bucket's start (NULL when none; read as NaN). The
    buckets fetched run to the one starting at ``end_ms``, one past the last
    window, and the engine adds the head of the bucket after a window to that
    window (``shared.promql.rollupfuncs``). Then ``*_over_time`` answers equal
    the raw ones (sums within rounding: ``tests/web/test_storage_rollups.py``
    checks 1e-9 relative on samples on every edge, staleness markers on edges,
    series starting and stopping on an edge, for range and instant queries),
    at the cost of one more column read.

    Where the answer still differs from raw data: rollups leave NaN out
    (a raw ``sum``/``count``/``avg_over_time`` over a NaN sample, or a raw
    ``max``/``min_over_time`` over NaN samples only, differ); data that
    arrived after the last refresh and older than ``rollup_fresh_ms`` is
    missing; rows rolled up by a Vigil before the ``head`` column whose raw
    samples retention had dropped by the upgrade have no head (their edge
    samples are missed).
    ``rate``/``increase`` need Prometheus' extrapolation from the first and
    last sample *times* in the window: exact where samples lie on both
    edges of every window (aligned scrapes), otherwise estimated from
    sample counts (bucket tables keep no sample times): exact for regular
    scrapes covering the window, within about 2 % with seconds of jitter,
    further off for series that start or stop inside a window or miss an
    edge sample (staleness marker on the edge). That is why rollups are
    opt-in, rate rollups doubly so, and the oracle suite runs with them off.

Errors: every driver failure is translated into
``shared.promql.errors.StorageFailure`` (``BadData`` for an invalid regex).
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import operator
import time
from collections.abc import Sequence
from typing import Any

import asyncpg
import numpy as np

from shared.promql.errors import BadData, StorageFailure
from shared.promql.rollupfuncs import HEAD, WIDTHS_MS
from shared.promql.seriessql import NAME, SeriesSql, ms_to_datetime
from shared.promql.storage import LabelMatcher, SelectHints, Series

_PG_EPOCH_MS = 946_684_800_000
"""PostgreSQL's binary timestamps count microseconds from 2000-01-01."""

ROLLUP_COLUMNS: dict[str, tuple[str, ...]] = {
    "max_over_time": ("max",),
    "min_over_time": ("min",),
    "sum_over_time": ("sum",),
    "count_over_time": ("count",),
    "avg_over_time": ("sum", "count"),
    "increase": ("increase", "first", "last", "count"),
    "rate": ("increase", "first", "last", "count"),
}
"""The rollup columns that answer each function (the first one becomes ``Series.values``,
the others ``Series.extra``); the engine's ``shared.promql.rollupfuncs`` reads them."""
DEFAULT_ROLLUP_FUNCS = frozenset({"max_over_time", "min_over_time", "sum_over_time"})
"""Served from rollups when ``rollups`` is on: exact (NaN aside)."""
ALL_ROLLUP_FUNCS = frozenset(ROLLUP_COLUMNS)
"""Also ``count``/``avg_over_time`` (exact like the default ones) and ``rate``/``increase``
(Prometheus' extrapolation exact only with samples on both window edges, else estimated
from counts: see the module docstring)."""


_HOUR_MS = 3_600_000
_SIZE_HINTS = 4096
"""Matcher sets whose last selection size ``TimescaleStorage`` remembers (a bounded dict)."""


async def keep_session(conn: asyncpg.Connection) -> None:
    """The pool's ``reset`` for the storage's connections: nothing to send.

    asyncpg's default reset runs ``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL`` on every release, one round trip per query. The storage never takes
    advisory locks, declares cursors, listens or sets session variables, so there is
    nothing to reset; an open transaction is still rolled back by the pool itself.
    Only for a pool whose every user is like that (the web service's pool: plain
    fetches, also in ``web.reports`` and ``web.alerting``).
    """


POOL_OPTIONS: dict[str, Any] = {
    "reset": keep_session,
    "server_settings": {"jit": "off", "plan_cache_mode": "force_custom_plan"},
}
"""``asyncpg.create_pool`` options for a pool that serves this storage: no reset round
trip per release (``keep_session``); no JIT compilation, which costs milliseconds per
large selection and never pays off for these index scans; and a plan made for each
execution's values: after five runs PostgreSQL would otherwise keep a generic plan of the
prepared statement, whose run-time chunk exclusion in every per-series scan costs a
quarter more than planning anew (less than a millisecond)."""


def _samples_sql(
    where: str,
    lo: str,
    hi: str,
    *,
    table: str,
    time_col: str,
    columns: Sequence[str],
    split: str | None = None,
) -> str:
    """Series matching ``where`` with their samples in ``[lo, hi]``, one row per series.

    Each series' samples are read by its own index scan on ``(series_id, time)`` (so in
    time order, no sort) and packed by ``string_agg`` into one ``bytea`` per column:
    ``timestamptz_send`` (big-endian microseconds since 2000) and ``float8send`` (the
    IEEE bits, NaN payloads kept; NULL as NaN, so that every column has a value per
    row). ``table``, ``time_col`` and ``columns`` come from fixed allow-lists, never
    from a request. ``split`` is one more condition on the series (``s``).
    """
    aggs = ", ".join(
        f"string_agg(float8send({_non_null(c)}), ''::bytea ORDER BY {time_col}) AS v{j}"
        for j, c in enumerate(columns)
    )
    selected = ", ".join(f"x.v{j}" for j in range(len(columns)))
    cond = f"{where} AND {split}" if split else where
    return (
        f"SELECT s.id, s.metric, s.labels::text, x.t, {selected} FROM series s"  # noqa: S608 - fixed identifiers, bound values
        f" CROSS JOIN LATERAL (SELECT string_agg(timestamptz_send({time_col}), ''::bytea"
        f" ORDER BY {time_col}) AS t, {aggs} FROM {table} WHERE series_id = s.id"
        f" AND {time_col} >= {lo} AND {time_col} <= {hi}) x"
        f" WHERE {cond} AND x.t IS NOT NULL"
    )


def _non_null(column: str) -> str:
    """The column as float8; ``head``, the only nullable one, NULL read as NaN."""
    return f"coalesce({column}::float8, 'NaN')" if column == f'"{HEAD}"' else f"{column}::float8"


class _LabelSets:
    """Parsed label sets by series id, so that a repeated selection parses no JSON.

    A series' labels never change, but the row's text and metric are compared anyway:
    a recreated database cannot make an id answer another series' labels. Bounded:
    cleared when full. Each caller gets its own copy.
    """

    def __init__(self, limit: int = 100_000) -> None:
        self._limit = limit
        self._by_id: dict[int, tuple[str, dict[str, str]]] = {}

    def get(self, sid: int, metric: str, raw: str) -> dict[str, str]:
        hit = self._by_id.get(sid)
        if hit is not None and hit[0] == raw and hit[1][NAME] == metric:
            return dict(hit[1])
        labels: dict[str, str] = json.loads(raw)
        labels[NAME] = metric
        if len(self._by_id) >= self._limit:
            self._by_id.clear()
        self._by_id[sid] = (raw, labels)
        return dict(labels)


def _series_of(
    rows: Sequence[asyncpg.Record],
    label_sets: _LabelSets,
    rollup: str | None,
    width_ms: int,
    columns: tuple[str, ...],
) -> list[Series]:
    """Decode the rows of ``_samples_sql``: each column of all rows in one ``frombuffer``."""
    if not rows:
        return []
    sizes = [len(r[3]) // 8 for r in rows]
    cuts = np.cumsum([0, *sizes]).tolist()
    shift = _PG_EPOCH_MS + (width_ms - 1 if rollup else 0)
    ts = np.frombuffer(b"".join(r[3] for r in rows), dtype=">i8") // 1000 + shift
    cols = [
        np.frombuffer(b"".join(r[4 + j] for r in rows), dtype=">f8").astype(np.float64)
        for j in range(len(columns))
    ]
    values, extra = cols[0], list(zip(columns[1:], cols[1:], strict=True))
    return [
        Series(
            label_sets.get(row[0], row[1], row[2]),
            ts[a:b],
            values[a:b],
            rollup,
            {c: v[a:b] for c, v in extra} if extra else {},
        )
        for row, a, b in zip(rows, cuts[:-1], cuts[1:], strict=True)
    ]


class TimescaleStorage:
    """``Storage`` over an asyncpg pool; the pool is the caller's (it closes it)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        rollups: bool = False,
        rollup_fresh_ms: int = 2 * _HOUR_MS,
        clock_ms: Any = None,
        parallel: int = 4,
        parallel_min_samples: int = 10_000,
        rollup_funcs: frozenset[str] = DEFAULT_ROLLUP_FUNCS,
    ) -> None:
        self._pool = pool
        self.rollups = rollups
        self.rollup_fresh_ms = rollup_fresh_ms
        unknown = set(rollup_funcs) - ALL_ROLLUP_FUNCS
        if unknown:
            raise ValueError(f"cannot serve {sorted(unknown)} from rollups: not supported")
        self.rollup_funcs = frozenset(rollup_funcs)
        """Functions that rollups may answer (when ``rollups`` is on)."""
        self._clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self.parallel = parallel
        self.parallel_min_samples = parallel_min_samples
        self.served: collections.Counter[str] = collections.Counter()
        """Selects answered, by source: ``raw`` or ``<table>.<column>``."""
        self._label_sets = _LabelSets()
        self.splits: collections.Counter[int] = collections.Counter()
        """Selects answered, by the number of statements they ran."""
        self._sizes: dict[tuple[tuple[LabelMatcher, ...], str], int] = {}
        """Samples read by the last selection per matcher set and table: how many
        statements the next one is split into (a hint only; any split gives the same
        answer)."""

    # -- selection -----------------------------------------------------------------

    async def select(
        self,
        matchers: Sequence[LabelMatcher],
        start_ms: int,
        end_ms: int,
        hints: SelectHints | None = None,
    ) -> list[Series]:
        plan = self._rollup_plan(hints, end_ms)
        columns: tuple[str, ...]
        sql = SeriesSql()
        where = sql.where(matchers)
        if plan is None or hints is None:
            table, time_col, columns, width_ms, rollup = "samples", "time", ("value",), 0, None
            lo_ms, hi_ms = start_ms, end_ms
        else:
            table, columns, width_ms = plan
            columns = (*columns, HEAD)
            time_col, rollup = "bucket", f"{table}.{'+'.join(columns)}"
            # The buckets whose point (bucket + width - 1 ms) is in the range, and the
            # one starting at ``end_ms``, whose head is the sample on the last window's end.
            lo_ms, hi_ms = start_ms - width_ms + 1, end_ms
        self.served[(rollup or "raw").removesuffix(f"+{HEAD}")] += 1
        lo, hi = sql.bind(ms_to_datetime(lo_ms)), sql.bind(ms_to_datetime(hi_ms))
        quoted = [f'"{c}"' for c in columns]
        statement = _samples_sql(where, lo, hi, table=table, time_col=time_col, columns=quoted)
        key = (tuple(matchers), table)
        parts = max(1, min(self.parallel, self._sizes.get(key, 0) // self.parallel_min_samples))
        self.splits[parts] += 1
        if parts == 1:
            rows = await self._fetch("select series", statement, sql.params)
        else:
            # A selection that was large last time: ``parts`` statements at once, each
            # on its own connection (one PostgreSQL backend each), each taking the
            # series whose id is ``k`` modulo ``parts``.
            split = _samples_sql(
                where,
                lo,
                hi,
                table=table,
                time_col=time_col,
                columns=quoted,
                split=f"s.id % {sql.bind(parts)}::int8 = {sql.bind(0)}::int8",
            )
            answers = await asyncio.gather(
                *(self._fetch("select series", split, [*sql.params[:-1], k]) for k in range(parts))
            )
            rows = sorted(itertools.chain.from_iterable(answers), key=operator.itemgetter(0))
        if len(self._sizes) >= _SIZE_HINTS:
            self._sizes.clear()
        self._sizes[key] = sum(len(r[3]) for r in rows) // 8
        return _series_of(rows, self._label_sets, rollup, width_ms, columns)

    def _rollup_plan(
        self, hints: SelectHints | None, end_ms: int
    ) -> tuple[str, tuple[str, ...], int] | None:
        if not self.rollups or hints is None or hints.func not in self.rollup_funcs:
            return None
        if hints.range_ms <= 0 or end_ms > self._clock_ms() - self.rollup_fresh_ms:
            return None
        column = ROLLUP_COLUMNS[hints.func]
        for table in ("samples_1h", "samples_1m"):  # the coarsest that fits
            width = WIDTHS_MS[table]
            if hints.range_ms % width == 0 and hints.step_ms % width == 0 and end_ms % width == 0:
                return table, column, width
        return None

    # -- metadata queries -------------------------------------------------------------

    def _active(self, sql: SeriesSql, start_ms: int, end_ms: int) -> str:
        return (
            "EXISTS (SELECT 1 FROM samples x WHERE x.series_id = s.id"  # noqa: S608 - values are bound
            f" AND x.time >= {sql.bind(ms_to_datetime(start_ms))}"
            f" AND x.time <= {sql.bind(ms_to_datetime(end_ms))})"
        )

    async def _fetch(self, what: str, query: str, params: list[Any]) -> list[asyncpg.Record]:
        try:
            async with self._pool.acquire() as conn:
                rows: list[asyncpg.Record] = await conn.fetch(query, *params)
                return rows
        except asyncpg.InvalidRegularExpressionError as exc:
            raise BadData(f"cannot {what}: invalid regular expression: {exc}") from exc
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StorageFailure(f"cannot {what}: {exc}") from exc

    async def label_names(
        self, matchers: Sequence[Sequence[LabelMatcher]], start_ms: int, end_ms: int
    ) -> list[str]:
        sql = SeriesSql()
        cond = f"{sql.any_of(matchers)} AND {self._active(sql, start_ms, end_ms)}"
        rows = await self._fetch(
            "list label names",
            f"SELECT DISTINCT k FROM series s, jsonb_object_keys(s.labels) AS k WHERE {cond}"  # noqa: S608 - conditions are bound
            " AND s.labels->>k <> ''",
            sql.params,
        )
        names = {r[0] for r in rows}
        if names:
            names.add(NAME)
        return sorted(names)

    async def label_values(
        self, name: str, matchers: Sequence[Sequence[LabelMatcher]], start_ms: int, end_ms: int
    ) -> list[str]:
        sql = SeriesSql()
        col = "s.metric" if name == NAME else f"s.labels->>{sql.bind(name)}::text"
        cond = f"{sql.any_of(matchers)} AND {self._active(sql, start_ms, end_ms)}"
        rows = await self._fetch(
            f"list values of label {name}",
            f"SELECT DISTINCT {col} AS v FROM series s WHERE {cond}"  # noqa: S608 - conditions are bound
            f" AND coalesce({col}, '') <> ''",
            sql.params,
        )
        return sorted(r[0] for r in rows)

    async def series(
        self, matchers: Sequence[Sequence[LabelMatcher]], start_ms: int, end_ms: int
    ) -> list[dict[str, str]]:
        sql = SeriesSql()
        cond = f"{sql.any_of(matchers)} AND {self._active(sql, start_ms, end_ms)}"
        rows = await self._fetch(
            "list series",
            f"SELECT s.metric, s.labels::text FROM series s WHERE {cond}",  # noqa: S608 - conditions are bound
            sql.params,
        )
        out: list[dict[str, str]] = []
        for metric, raw in rows:
            ls: dict[str, str] = {NAME: metric}
            ls.update((k, v) for k, v in json.loads(raw).items() if v != "")
            out.append(dict(sorted(ls.items())))
        out.sort(key=lambda d: sorted(d.items()))
        return out

    async def metadata(
        self, metric: str | None, limit: int | None
    ) -> dict[str, list[dict[str, str]]]:
        sql = SeriesSql()
        where = f"WHERE metric = {sql.bind(metric)}::text" if metric else ""
        lim = f" LIMIT {sql.bind(limit)}::int8" if limit is not None and limit >= 0 else ""
        rows = await self._fetch(
            "read metadata",
            f"SELECT metric, type, help, unit FROM metadata {where} ORDER BY metric{lim}",  # noqa: S608 - values are bound
            sql.params,
        )
        return {
            r["metric"]: [
                {"type": r["type"] or "unknown", "help": r["help"] or "", "unit": r["unit"] or ""}
            ]
            for r in rows
        }


__all__ = ["TimescaleStorage"]
