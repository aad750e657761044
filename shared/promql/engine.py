"""The query engine: ``Engine.instant`` and ``Engine.range``, Prometheus 2.x semantics.

Usage::

    engine = Engine(storage)
    result = await engine.range("rate(http_requests_total[5m])", start_ms, end_ms, 15_000)

Errors (see ``shared.promql.errors``): ``BadData`` for a query that cannot be parsed
or has the wrong type (the parser's message is kept), ``ExecutionError`` for
evaluation failures (many-to-many matching, duplicate label sets), ``TooManySamples``
past ``max_samples``, ``QueryTimeout`` past ``timeout_s``, ``StorageFailure`` when the
storage cannot answer.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np

from shared.promql.errors import BadData, QueryTimeout
from shared.promql.evaluator import Context, Evaluator
from shared.promql.parse import parse
from shared.promql.result import Result, Sample, SeriesResult
from shared.promql.storage import Storage
from shared.promql.values import I64, Matrix, Scalar, String, Value, Vector


class Engine:
    """Evaluates PromQL over a ``Storage``; safe to share between concurrent queries."""

    def __init__(
        self,
        storage: Storage,
        *,
        lookback_ms: int = 300_000,
        max_samples: int = 50_000_000,
        timeout_s: float = 120.0,
        default_subquery_step_ms: int = 60_000,
    ) -> None:
        self.storage = storage
        self.lookback_ms = lookback_ms
        self.max_samples = max_samples
        self.timeout_s = timeout_s
        self.default_subquery_step_ms = default_subquery_step_ms

    async def instant(self, query: str, time_ms: int) -> Result:
        """Evaluate ``query`` at ``time_ms``: a vector, scalar, string or (range vector) matrix."""
        node = parse(query)
        grid = np.array([time_ms], dtype=np.int64)
        value = await self._run(node, grid, time_ms, time_ms, 0)
        return _instant_result(value, time_ms)

    async def range(self, query: str, start_ms: int, end_ms: int, step_ms: int) -> Result:
        """Evaluate ``query`` at ``start_ms, start_ms + step_ms, ... <= end_ms``: a matrix."""
        if step_ms <= 0:
            raise BadData("zero or negative query resolution step widths are not accepted")
        if end_ms < start_ms:
            raise BadData("end timestamp must not be before start time")
        node = parse(query)
        grid = np.arange(start_ms, end_ms + 1, step_ms, dtype=np.int64)
        value = await self._run(node, grid, start_ms, end_ms, step_ms)
        if isinstance(value, Matrix | String):
            kind = "range vector" if isinstance(value, Matrix) else "string"
            raise BadData(
                f'invalid expression type "{kind}" for range query, must be Scalar or instant Vector'
            )
        return _range_result(value, grid)

    async def _run(self, node: Any, grid: I64, start_ms: int, end_ms: int, step_ms: int) -> Value:
        ctx = Context(
            storage=self.storage,
            start_ms=start_ms,
            end_ms=end_ms,
            step_ms=step_ms,
            lookback_ms=self.lookback_ms,
            subquery_step_ms=self.default_subquery_step_ms,
            max_samples=self.max_samples,
            deadline=time.monotonic() + self.timeout_s,
        )
        try:
            async with asyncio.timeout(self.timeout_s):
                return await Evaluator(ctx).eval(node, grid)
        except TimeoutError as exc:
            raise QueryTimeout("query timed out in query execution") from exc


def _instant_result(value: Value, time_ms: int) -> Result:
    if isinstance(value, Scalar):
        return Result(kind="scalar", scalar=(time_ms, float(value.values[0])))
    if isinstance(value, String):
        return Result(kind="string", string=(time_ms, value.value))
    if isinstance(value, Matrix):
        out = []
        for s in value.series:
            lo, hi = value.windows(s)
            a, b = int(lo[0]), int(hi[0])
            if b > a:
                out.append(SeriesResult(dict(s.labels), s.timestamps[a:b], s.values[a:b]))
        out.sort(key=lambda r: sorted(r.labels.items()))
        return Result(kind="matrix", matrix=out)
    samples = [
        Sample(dict(lab), time_ms, float(val[0]))
        for lab, val, ok in zip(value.labels, value.values, value.present, strict=True)
        if ok[0]
    ]
    return Result(kind="vector", vector=samples)


def _range_result(value: Scalar | Vector, grid: I64) -> Result:
    if isinstance(value, Scalar):
        vec = Vector([{}], value.values[None, :], np.ones((1, len(grid)), dtype=bool))
    else:
        vec = value
    values = np.asarray(vec.values, dtype=np.float64)
    some: list[bool] = np.asarray(vec.present.any(axis=1)).tolist()
    full: list[bool] = np.asarray(vec.present.all(axis=1)).tolist()
    out = []
    for i, lab in enumerate(vec.labels):
        if full[i]:  # every step: the grid itself and a view of the row
            out.append(SeriesResult(dict(lab), grid, values[i]))
        elif some[i]:
            ok = vec.present[i]
            out.append(SeriesResult(dict(lab), grid[ok], values[i][ok]))
    out.sort(key=lambda r: sorted(r.labels.items()))
    return Result(kind="matrix", matrix=out)
