"""The tree walker: evaluates every node at all steps of a time grid at once.

A range query is one walk over the whole grid (each node yields a ``series x steps``
matrix); an instant query is the same walk over a grid of one step.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shared.promql import parse as ast
from shared.promql import selectors
from shared.promql.errors import (
    BadData,
    PromQLError,
    QueryTimeout,
    StorageFailure,
    TooManySamples,
)
from shared.promql.storage import LabelMatcher, SelectHints, Series, Storage
from shared.promql.values import (
    I64,
    Matrix,
    RangeSeries,
    Scalar,
    String,
    Value,
    Vector,
    drop_name,
)


@dataclass
class Context:
    """What every node of one query shares: storage, the query's bounds, limits."""

    storage: Storage
    start_ms: int
    end_ms: int
    step_ms: int
    lookback_ms: int
    subquery_step_ms: int
    max_samples: int
    deadline: float
    loaded: int = 0
    hints_func: list[str | None] = field(default_factory=lambda: [None])

    def check(self, points: int = 0) -> None:
        if time.monotonic() > self.deadline:
            raise QueryTimeout("query timed out in query execution")
        if self.loaded + points > self.max_samples:
            raise TooManySamples(
                "query processing would load too many samples into memory in query execution"
            )


class Evaluator:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def eval(self, node: Any, ts: I64) -> Value:
        self.ctx.check()
        kind = type(node).__name__
        if kind == "ParenExpr":
            return await self.eval(node.expr, ts)
        if kind == "NumberLiteral":
            return Scalar(np.full(len(ts), float(node.val)))
        if kind == "StringLiteral":
            return String(str(node.val))
        if kind == "UnaryExpr":
            return self._negate(await self.eval(node.expr, ts))
        if kind == "VectorSelector":
            vec, _ = await self.instant_selector(node, ts)
            return vec
        if kind == "MatrixSelector":
            return await self.range_selector(node, ts)
        if kind == "SubqueryExpr":
            return await self.subquery(node, ts)
        if kind == "Call":
            from shared.promql.functions import call

            return await call(self, node, ts)
        if kind == "AggregateExpr":
            from shared.promql.aggregations import aggregate

            return await aggregate(self, node, ts)
        if kind == "BinaryExpr":
            from shared.promql.binops import binary

            return await binary(self, node, ts)
        raise BadData(f"cannot evaluate expression: unsupported node {kind}")

    async def eval_vector(self, node: Any, ts: I64) -> Vector:
        val = await self.eval(node, ts)
        if isinstance(val, Scalar):
            return Vector([{}], val.values[None, :].copy(), np.ones((1, len(ts)), dtype=bool))
        if not isinstance(val, Vector):
            raise BadData(
                f"cannot evaluate expression: expected instant vector, got {kind_of(val)}"
            )
        return val

    async def eval_scalar(self, node: Any, ts: I64) -> Scalar:
        val = await self.eval(node, ts)
        if not isinstance(val, Scalar):
            raise BadData(f"cannot evaluate expression: expected scalar, got {kind_of(val)}")
        return val

    async def eval_matrix(self, node: Any, ts: I64) -> Matrix:
        val = await self.eval(node, ts)
        if not isinstance(val, Matrix):
            raise BadData(f"cannot evaluate expression: expected range vector, got {kind_of(val)}")
        return val

    @staticmethod
    def _negate(val: Value) -> Value:
        if isinstance(val, Scalar):
            return Scalar(-val.values)
        if isinstance(val, Vector):
            return Vector([drop_name(x) for x in val.labels], -val.values, val.present).compact()
        raise BadData(f"cannot negate {kind_of(val)}")

    def effective_times(self, node: Any, ts: I64) -> I64:
        at = ast.at_ms(node, self.ctx.start_ms, self.ctx.end_ms)
        base = ts if at is None else np.full(len(ts), at, dtype=np.int64)
        return np.asarray(base - ast.duration_ms(node.offset), dtype=np.int64)

    async def select(
        self, vs: Any, start_ms: int, end_ms: int, range_ms: int, step_ms: int
    ) -> list[Series]:
        hints = SelectHints(
            start_ms=start_ms,
            end_ms=end_ms,
            step_ms=step_ms,
            func=self.ctx.hints_func[-1],
            range_ms=range_ms,
        )
        found: list[Series] = []
        for matchers in ast.matcher_sets(vs):
            found.extend(await self._select_one(matchers, start_ms, end_ms, hints))
        series = selectors.dedupe(found)
        self.ctx.loaded += sum(len(s.timestamps_ms) for s in series)
        self.ctx.check()
        return series

    async def _select_one(
        self, matchers: Sequence[LabelMatcher], start_ms: int, end_ms: int, hints: SelectHints
    ) -> list[Series]:
        try:
            return await self.ctx.storage.select(matchers, start_ms, end_ms, hints)
        except PromQLError:
            raise
        except Exception as exc:
            raise StorageFailure(f"cannot select series: {exc}") from exc

    async def instant_selector(
        self, vs: Any, ts: I64, *, with_timestamps: bool = False
    ) -> tuple[Vector, I64 | None]:
        times = self.effective_times(vs, ts)
        if len(times) == 0:
            return Vector.empty(0), None
        lo = int(times.min()) - self.ctx.lookback_ms
        series = await self.select(vs, lo, int(times.max()), 0, self.ctx.step_ms)
        return selectors.instant(
            series, times, self.ctx.lookback_ms, with_timestamps=with_timestamps
        )

    async def range_selector(self, node: Any, ts: I64) -> Matrix:
        vs = node.vector_selector
        range_ms = ast.duration_ms(node.range)
        ends = self.effective_times(vs, ts)
        lo, hi = int(ends.min()) - range_ms, int(ends.max())
        series = await self.select(vs, lo, hi, range_ms, self.ctx.step_ms)
        return selectors.range_matrix(series, ends, range_ms)

    async def subquery(self, node: Any, ts: I64) -> Matrix:
        range_ms = ast.duration_ms(node.range)
        step = ast.duration_ms(node.step) or self.ctx.subquery_step_ms
        ends = self.effective_times(node, ts)
        raw_start = int(ends.min()) - range_ms
        start = step * int(raw_start / step)  # Go's integer division truncates toward zero
        if start < raw_start:
            start += step
        grid = np.arange(start, int(ends.max()) + 1, step, dtype=np.int64)
        if len(grid) == 0:
            return Matrix([], range_ms, ends)
        self.ctx.hints_func.append(None)
        try:
            inner = await self.eval_vector(node.expr, grid)
        finally:
            self.ctx.hints_func.pop()
        out = []
        for labels, vals, mask in zip(inner.labels, inner.values, inner.present, strict=True):
            if mask.any():
                out.append(RangeSeries(labels, grid[mask], vals[mask]))
        self.ctx.check(int(inner.present.sum()))
        return Matrix(out, range_ms, ends)


def kind_of(val: Value) -> str:
    if isinstance(val, Scalar):
        return "scalar"
    if isinstance(val, String):
        return "string"
    if isinstance(val, Vector):
        return "instant vector"
    return "range vector"
