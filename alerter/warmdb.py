"""History for the rule windows from TimescaleDB, for windows longer than the stream keeps.

The alerter never needs the database to alert: this is read once at a warm
start (retried while it fails), only for the selectors whose history reaches
before what the metrics stream still holds, and only for that missing time
range. ``HistorySource`` is the seam the app reads through; ``DatabaseHistory``
is the implementation over asyncpg (one connection per read, closed after).

One SQL statement per selector, the whole range at once: the selector's
matchers become conditions on ``series`` (``__name__`` on the ``metric``
column, other labels on ``labels`` jsonb, a missing label reading as ``""`` as
in Prometheus, regexes anchored: ``shared.promql.seriessql``, as web's queries),
joined to ``samples`` in the range and aggregated per series into two arrays
(epoch milliseconds, values), ordered by time. Every label name and value is a
bind parameter. Series written by the alerter itself (``host`` =
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
from typing import Any, Protocol

import numpy as np

from alerter.errors import HistoryError
from shared.promql.errors import BadData
from shared.promql.seriessql import SeriesSql, ms_to_datetime
from shared.promql.storage import LabelMatcher, Series


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


def selector_sql(matchers: Sequence[LabelMatcher], exclude_host: str) -> tuple[str, list[Any]]:
    """The statement reading one selector's samples; ``$1``, ``$2`` are the time bounds.

    Raises ``BadData`` for a matcher no SQL can express (a regex holding NUL)."""
    sql = SeriesSql(first=3)
    where = sql.where([*matchers, LabelMatcher("host", "!=", exclude_host)])
    statement = (
        "SELECT s.metric, s.labels::text,"  # noqa: S608 - names and values are bound
        " array_agg((extract(epoch FROM x.time) * 1000)::int8 ORDER BY x.time),"
        " array_agg(x.value ORDER BY x.time)"
        " FROM series s JOIN samples x ON x.series_id = s.id"
        f" WHERE {where} AND x.time >= $1 AND x.time <= $2"
        " GROUP BY s.id"
    )
    return statement, sql.params


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

        try:
            statement, params = selector_sql(r.matchers, self.exclude_host)
            start, end = ms_to_datetime(r.start_ms), ms_to_datetime(r.end_ms)
            rows = await conn.fetch(statement, start, end, *params)
        except (BadData, asyncpg.PostgresError) as exc:
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
