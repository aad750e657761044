"""History for the rule windows from TimescaleDB, for windows longer than the stream keeps.

The alerter never needs the database to alert: this is read once at a warm
start (retried while it fails), only for the selectors whose history reaches
before what the metrics stream still holds, and only for that missing time
range. ``HistorySource`` is the seam the app reads through; ``DatabaseHistory``
is the implementation over asyncpg (one connection per read, closed after).

One SQL statement per selector, the whole range at once: the selector's
matchers become conditions on ``series`` (``__name__`` on the ``metric``
column, other labels on ``labels`` jsonb, a missing label reading as ``""`` as
in Prometheus, regexes anchored as ``^(?:re)$`` and run with PostgreSQL's
``~``), joined to ``samples`` in the range and aggregated per series into two
arrays (epoch milliseconds, values), ordered by time. Every label name and
value is a bind parameter. Series written by the alerter itself (``host`` =
``alerter.self_host``: ``ALERTS``, recording-rule results) are left out, as the
stream replay leaves them out.

Errors: any driver or network failure, and a timeout, become ``HistoryError``
naming the selector or the connection.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import numpy as np

from alerter.errors import HistoryError
from shared.promql.storage import LabelMatcher, Series

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class HistoryRange:
    """The samples of the series ``matchers`` select with ``start_ms <= t <= end_ms``."""

    matchers: tuple[LabelMatcher, ...]
    start_ms: int
    end_ms: int


class HistorySource(Protocol):
    """Where older samples come from (the database); called from the alerter's loop."""

    async def read(self, ranges: Sequence[HistoryRange]) -> list[Series]:
        """Every selected series with its samples in each range, sorted by time.

        Labels include ``__name__`` and ``host``. A series selected by two ranges
        may come twice (the windows dedupe by timestamp). Raises ``HistoryError``
        when any range cannot be read: the caller holds the rules back and retries.
        """


def _datetime(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def _anchored(pattern: str) -> str:
    """An RE2 pattern fully anchored for PostgreSQL; a leading ``(?i)`` stays in front."""
    prefix = ""
    if pattern.startswith("(?i)"):
        prefix, pattern = "(?i)", pattern[4:]
    return f"{prefix}^(?:{pattern})$"


def selector_sql(matchers: Sequence[LabelMatcher], exclude_host: str) -> tuple[str, list[Any]]:
    """The statement reading one selector's samples; ``$1``, ``$2`` are the time bounds."""
    params: list[Any] = []

    def bind(value: Any) -> str:
        params.append(value)
        return f"${len(params) + 2}"

    conds: list[str] = []
    for m in matchers:
        if m.name == "__name__":
            col = "s.metric"
        elif m.op == "=" and m.value:
            conds.append(f"s.labels @> {bind(json.dumps({m.name: m.value}))}::jsonb")
            continue
        else:
            col = f"coalesce(s.labels->>{bind(m.name)}::text, '')"
        if m.op == "=":
            conds.append(f"{col} = {bind(m.value)}::text")
        elif m.op == "!=":
            conds.append(f"{col} <> {bind(m.value)}::text")
        else:
            op = "~" if m.op == "=~" else "!~"
            conds.append(f"{col} {op} {bind(_anchored(m.value))}::text")
    conds.append(f"coalesce(s.labels->>'host', '') <> {bind(exclude_host)}::text")
    statement = (
        "SELECT s.metric, s.labels::text,"  # noqa: S608 - names and values are bound
        " array_agg((extract(epoch FROM x.time) * 1000)::int8 ORDER BY x.time),"
        " array_agg(x.value ORDER BY x.time)"
        " FROM series s JOIN samples x ON x.series_id = s.id"
        f" WHERE {' AND '.join(conds)} AND x.time >= $1 AND x.time <= $2"
        " GROUP BY s.id"
    )
    return statement, params


class DatabaseHistory:
    """``HistorySource`` over TimescaleDB's ``series`` and ``samples`` (ingest's schema)."""

    def __init__(self, url: str, *, exclude_host: str, timeout_s: float = 30.0) -> None:
        self._url = url
        self.exclude_host = exclude_host
        self.timeout_s = timeout_s

    async def read(self, ranges: Sequence[HistoryRange]) -> list[Series]:
        import asyncpg

        out: list[Series] = []
        try:
            async with asyncio.timeout(self.timeout_s):
                conn = await asyncpg.connect(self._url, timeout=self.timeout_s)
                try:
                    for r in ranges:
                        out += await self._read_one(conn, r)
                finally:
                    await conn.close()
        except TimeoutError as exc:
            raise HistoryError(
                f"cannot read rule history from the database: no answer in {self.timeout_s:g}s"
            ) from exc
        except (OSError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # ValueError: asyncpg's verdict on a malformed URL
            raise HistoryError(f"cannot read rule history from the database: {exc}") from exc
        return out

    async def _read_one(self, conn: Any, r: HistoryRange) -> list[Series]:
        import asyncpg

        statement, params = selector_sql(r.matchers, self.exclude_host)
        try:
            rows = await conn.fetch(statement, _datetime(r.start_ms), _datetime(r.end_ms), *params)
        except asyncpg.PostgresError as exc:
            shown = ", ".join(f"{m.name}{m.op}{m.value!r}" for m in r.matchers)
            raise HistoryError(f"cannot read rule history of selector {{{shown}}}: {exc}") from exc
        out = []
        for metric, labels_text, times, values in rows:
            labels = json.loads(labels_text)
            labels["__name__"] = metric
            out.append(
                Series(
                    labels,
                    np.asarray(times, dtype=np.int64),
                    np.asarray(values, dtype=np.float64),
                )
            )
        return out
