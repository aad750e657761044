"""The PromQL ``Storage`` over TimescaleDB (``shared.promql.storage.Storage``).

Series selection
    Matchers become one SQL condition each on ``series``; every label name and
    value travels as a bind parameter, so no value can change the SQL text (the
    text depends only on the number and kinds of the matchers).

    - ``__name__`` matchers apply to the ``metric`` column.
    - ``name="v"`` with ``v`` non-empty: ``labels @> $n::jsonb`` (the GIN index
      ``series_labels_gin`` serves it).
    - Every other matcher compares ``coalesce(labels->>$k, '')``: a series that
      lacks a label has it as ``""``, so a matcher that matches ``""``
      (``a=""``, ``a!="x"``, ``a=~"x|"``, ``a!~".+"``) also selects series
      without the label, as in Prometheus.
    - Regexes are anchored as ``^(?:re)$`` and run with PostgreSQL's ``~``
      (Advanced Regular Expressions). Differences from Prometheus' RE2 that a
      user can meet: RE2's leading flag groups (``(?i)``, ``(?s)``, ``(?is)``)
      are moved in front of the anchor, where ARE accepts them, and ``(?s)`` is
      dropped (ARE's ``.`` matches a newline already; RE2's does not without
      it — label values with newlines are rare); flag groups elsewhere in the
      pattern, named groups ``(?P<n>...)`` and ``\\pL``-style Unicode classes
      are RE2-only and fail in PostgreSQL with ``bad_data``; ARE-only syntax
      (back-references ``\\1``, ``[[:<:]]``) is rejected earlier by the PromQL
      parser's RE2 check. Character classes ``\\d \\w \\s``, non-greedy
      quantifiers, ``{m,n}`` and non-capturing groups mean the same in both.
    - A label value holding NUL (which PostgreSQL text cannot carry, so no
      stored label holds it) matches nothing under ``=`` and everything under
      ``!=``; in a regex it is ``bad_data``.

Samples
    One query for all selected series (``series_id = ANY('{...}'::int8[])``,
    time range, ordered by series and time; split in up to ``parallel``
    queries on as many pooled connections when more than
    ``parallel_min_series`` series are selected, so several PostgreSQL
    backends work at once; a small selection runs on the connection that
    found the series), read with ``COPY ... TO STDOUT (FORMAT binary)`` and
    decoded with one ``numpy.frombuffer``: values stay bit for bit (NaN
    payloads and the staleness marker survive) and no Python object is made
    per sample. A series with no sample in the range is not returned. The
    COPY's ids and bounds are literals made here from integers (never from a
    request): asyncpg would otherwise spend two round trips per COPY to
    inline bind parameters (a PREPARE and a quoting SELECT).

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
    ``count``), ``Series.extra`` = the others by name, ``Series.rollup`` =
    ``"<table>.<col>+<col>..."``. The engine reads them with
    ``shared.promql.rollupfuncs`` (which says what each function computes).

    Where the answer can differ from raw data: a bucket covers
    ``[start, start + width)`` while Prometheus 2.x's window is
    ``[t - range, t]``, so a sample lying exactly on a window edge is counted
    once in the other window; rollups leave NaN out (a raw ``max_over_time``
    over NaN values can answer NaN); data that arrived after the last refresh
    and older than ``rollup_fresh_ms`` is missing. ``rate``/``increase``
    estimate Prometheus' extrapolation from sample counts (bucket tables keep
    no sample times): exact for regular scrapes covering the window, within
    about 2 % with seconds of jitter (``tests/web/test_storage_rollups.py``),
    further off for series that start or stop inside a window. That is why
    rollups are opt-in, rate rollups doubly so, and the oracle suite runs
    with them off.

Errors: every driver failure is translated into
``shared.promql.errors.StorageFailure`` (``BadData`` for an invalid regex).
"""

from __future__ import annotations

import asyncio
import collections
import json
import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import numpy as np
import numpy.typing as npt

from shared.promql.errors import BadData, StorageFailure
from shared.promql.storage import LabelMatcher, SelectHints, Series

NAME = "__name__"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PG_EPOCH_MS = 946_684_800_000
"""PostgreSQL's binary timestamps count microseconds from 2000-01-01."""

_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"

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
"""Served from rollups when ``rollups`` is on: exact up to the bucket edges."""
ALL_ROLLUP_FUNCS = frozenset(ROLLUP_COLUMNS)
"""Also ``count``/``avg_over_time`` (exact up to the bucket edges) and ``rate``/
``increase`` (Prometheus' extrapolation estimated from counts: see the module docstring)."""


def _row_dtype(columns: int) -> np.dtype[Any]:
    """One COPY binary row of (bigint, timestamptz, float8 x columns): a field count
    (int16), then per field a length (int32) and 8 bytes."""
    fields = [("n", ">i2"), ("l1", ">i4"), ("sid", ">i8"), ("l2", ">i4"), ("t", ">i8")]
    for j in range(columns):
        fields += [(f"l{j + 3}", ">i4"), (f"v{j}", ">f8")]
    return np.dtype(fields)


_ROWS = {k: _row_dtype(k) for k in (1, 2, 4)}
_MINUTE_MS = 60_000
_HOUR_MS = 3_600_000
_RE2_FLAGS = re.compile(r"^\(\?([imsU]+)\)")


def ms_to_datetime(ms: int) -> datetime:
    """Exact conversion (no float rounding) of epoch milliseconds to an aware datetime."""
    return _EPOCH + timedelta(milliseconds=ms)


def anchored_regex(pattern: str) -> str:
    """An RE2 pattern as a fully anchored PostgreSQL ARE (see the module docstring)."""
    prefix = ""
    m = _RE2_FLAGS.match(pattern)
    if m:
        flags = m.group(1).replace("s", "").replace("U", "")
        prefix = f"(?{flags})" if flags else ""
        pattern = pattern[m.end() :]
    return f"{prefix}^(?:{pattern})$"


class _Sql:
    """Builds a WHERE clause with numbered bind parameters."""

    def __init__(self, first: int = 1) -> None:
        self.params: list[Any] = []
        self._first = first

    def bind(self, value: Any) -> str:
        self.params.append(value)
        return f"${self._first + len(self.params) - 1}"

    def condition(self, m: LabelMatcher, alias: str = "s") -> str:
        if "\x00" in m.value:
            if m.op == "=":
                return "FALSE"
            if m.op == "!=":
                return "TRUE"
            raise BadData(f"cannot match label {m.name}: a regex must not contain NUL")
        if m.name == NAME:
            col = f"{alias}.metric"
        elif m.op == "=" and m.value:
            return f"{alias}.labels @> {self.bind(json.dumps({m.name: m.value}))}::jsonb"
        else:
            col = f"coalesce({alias}.labels->>{self.bind(m.name)}::text, '')"
        if m.op == "=":
            return f"{col} = {self.bind(m.value)}::text"
        if m.op == "!=":
            return f"{col} <> {self.bind(m.value)}::text"
        op = "~" if m.op == "=~" else "!~"
        return f"{col} {op} {self.bind(anchored_regex(m.value))}::text"

    def where(self, matchers: Sequence[LabelMatcher], alias: str = "s") -> str:
        conds = [self.condition(m, alias) for m in matchers]
        return " AND ".join(conds) if conds else "TRUE"

    def any_of(self, sets: Sequence[Sequence[LabelMatcher]], alias: str = "s") -> str:
        if not sets:
            return "TRUE"
        return "(" + " OR ".join(f"({self.where(ms, alias)})" for ms in sets) + ")"


def _decode_copy(data: bytes, dtype: np.dtype[Any]) -> npt.NDArray[Any]:
    """Rows of a ``COPY ... (FORMAT binary)`` whose columns are all 8-byte and non-null."""
    if not data.startswith(_COPY_SIGNATURE):
        raise StorageFailure("BUG: cannot decode COPY output: bad signature")
    ext = int.from_bytes(data[15:19], "big")
    start = 19 + ext
    body = len(data) - start - 2  # the trailer is int16 -1
    if body % dtype.itemsize:
        raise StorageFailure("BUG: cannot decode COPY output: ragged rows (a NULL column?)")
    return np.frombuffer(data, dtype=dtype, count=body // dtype.itemsize, offset=start)


def _split(
    rows: npt.NDArray[Any],
    labels: dict[int, dict[str, str]],
    rollup: str | None,
    width_ms: int,
    columns: tuple[str, ...] = ("value",),
) -> list[Series]:
    if len(rows) == 0:
        return []
    sids = rows["sid"].astype(np.int64)
    ts = rows["t"].astype(np.int64) // 1000 + _PG_EPOCH_MS + (width_ms - 1 if rollup else 0)
    vs = rows["v0"].astype(np.float64)
    extra = {c: rows[f"v{j}"].astype(np.float64) for j, c in enumerate(columns) if j}
    cuts = np.flatnonzero(np.diff(sids)) + 1
    starts = np.concatenate(([0], cuts))
    ends = np.concatenate((cuts, [len(sids)]))
    out: list[Series] = []
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        s = Series(labels=dict(labels[int(sids[a])]), timestamps_ms=ts[a:b], values=vs[a:b])
        s.rollup = rollup
        s.extra = {c: v[a:b] for c, v in extra.items()}
        out.append(s)
    return out


def _timestamp_literal(ms: int) -> str:
    """A ``timestamptz`` literal for epoch milliseconds, exact (ISO 8601, UTC)."""
    return f"'{ms_to_datetime(int(ms)).isoformat()}'::timestamptz"


async def _copy(conn: asyncpg.Connection, statement: str, ids: list[int]) -> bytes:
    """Run ``statement`` (its ``{ids}`` replaced by an int8 array literal) as a binary COPY."""
    chunks: list[bytes] = []

    async def sink(chunk: bytes) -> None:
        chunks.append(chunk)

    literal = "'{" + ",".join(str(int(i)) for i in ids) + "}'::int8[]"
    await conn.copy_from_query(statement.format(ids=literal), output=sink, format="binary")
    return b"".join(chunks)


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
        parallel_min_series: int = 128,
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
        self.parallel_min_series = parallel_min_series
        self.served: collections.Counter[str] = collections.Counter()
        """Selects answered, by source: ``raw`` or ``<table>.<column>``."""

    # -- selection -----------------------------------------------------------------

    async def select(
        self,
        matchers: Sequence[LabelMatcher],
        start_ms: int,
        end_ms: int,
        hints: SelectHints | None = None,
    ) -> list[Series]:
        sql = _Sql()
        where = sql.where(matchers)
        query = f"SELECT s.id, s.metric, s.labels::text FROM series s WHERE {where} ORDER BY s.id"  # noqa: S608 - values are bound
        try:
            async with self._pool.acquire() as conn:
                found = await conn.fetch(query, *sql.params)
                if not found:
                    return []
                labels: dict[int, dict[str, str]] = {}
                for sid, metric, raw in found:
                    ls = json.loads(raw)
                    ls[NAME] = metric
                    labels[sid] = ls
                ids = list(labels)
                statement, rollup, width_ms, columns = self._samples_statement(
                    hints, start_ms, end_ms
                )
                # Large selections: several COPYs at once, each on its own connection (one
                # PostgreSQL backend each); ids are sorted, so the parts stay in series order.
                # A small one reuses this connection: one acquire, no second pool reset.
                parts = max(1, min(self.parallel, len(ids) // self.parallel_min_series))
                if parts == 1:
                    blobs = [await _copy(conn, statement, ids)]
            if parts > 1:
                size = -(-len(ids) // parts)
                blobs = await asyncio.gather(
                    *(self._copy(statement, ids[i : i + size]) for i in range(0, len(ids), size))
                )
        except asyncpg.InvalidRegularExpressionError as exc:
            raise BadData(f"cannot select series: invalid regular expression: {exc}") from exc
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StorageFailure(f"cannot select series: {exc}") from exc
        out: list[Series] = []
        for blob in blobs:
            rows = _decode_copy(blob, _ROWS[len(columns)])
            out += _split(rows, labels, rollup, width_ms, columns)
        return out

    def _samples_statement(
        self, hints: SelectHints | None, start_ms: int, end_ms: int
    ) -> tuple[str, str | None, int, tuple[str, ...]]:
        """The COPY's SELECT (``{ids}`` marks the series ids), the rollup, its width, columns.

        The bounds are inlined as literals made here from integers (never from a
        request's text), so the COPY needs no bind parameters: asyncpg would otherwise
        spend two extra round trips per COPY to quote them.
        """
        plan = self._rollup_plan(hints, end_ms)
        if plan is None:
            self.served["raw"] += 1
            lo, hi = _timestamp_literal(start_ms), _timestamp_literal(end_ms)
            statement = (
                "SELECT series_id, time, value FROM samples"  # noqa: S608 - integer literals only
                f" WHERE series_id = ANY({{ids}}) AND time >= {lo} AND time <= {hi}"
                " ORDER BY series_id, time"
            )
            return statement, None, 0, ("value",)
        table, columns, width_ms = plan
        rollup = f"{table}.{'+'.join(columns)}"
        self.served[rollup] += 1
        # table and columns come from the fixed allow-list ROLLUP_COLUMNS, never from a
        # request. The buckets whose point (bucket + width - 1 ms) is in the range:
        selected = ", ".join(f'"{c}"::float8' for c in columns)
        lo = _timestamp_literal(start_ms - width_ms + 1)
        hi = _timestamp_literal(end_ms - width_ms + 1)
        statement = (
            f"SELECT series_id, bucket, {selected} FROM {table}"  # noqa: S608 - fixed identifiers, integer literals
            f" WHERE series_id = ANY({{ids}}) AND bucket >= {lo} AND bucket <= {hi}"
            " ORDER BY series_id, bucket"
        )
        return statement, rollup, width_ms, columns

    async def _copy(self, statement: str, ids: list[int]) -> bytes:
        async with self._pool.acquire() as conn:
            return await _copy(conn, statement, ids)

    def _rollup_plan(
        self, hints: SelectHints | None, end_ms: int
    ) -> tuple[str, tuple[str, ...], int] | None:
        if not self.rollups or hints is None or hints.func not in self.rollup_funcs:
            return None
        if hints.range_ms <= 0 or end_ms > self._clock_ms() - self.rollup_fresh_ms:
            return None
        column = ROLLUP_COLUMNS[hints.func]
        for table, width in (("samples_1h", _HOUR_MS), ("samples_1m", _MINUTE_MS)):
            if hints.range_ms % width == 0 and hints.step_ms % width == 0 and end_ms % width == 0:
                return table, column, width
        return None

    # -- metadata queries -------------------------------------------------------------

    def _active(self, sql: _Sql, start_ms: int, end_ms: int) -> str:
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
        sql = _Sql()
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
        sql = _Sql()
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
        sql = _Sql()
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
        sql = _Sql()
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


__all__ = ["TimescaleStorage", "anchored_regex", "ms_to_datetime"]
