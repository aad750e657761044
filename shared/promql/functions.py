"""Function calls: dispatch by name to the range-vector, math, date, label and histogram families.

Functions drop ``__name__`` from their output, except ``last_over_time``/``first_over_time``, the sorts and
the label functions (as Prometheus 2.x). Native-histogram functions (``histogram_count``
...) answer empty vectors: Vigil stores classic histograms only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from shared.promql import rangefuncs as rf
from shared.promql import rollupfuncs
from shared.promql.errors import BadData
from shared.promql.evaluator import Evaluator
from shared.promql.histograms import histogram_quantile
from shared.promql.labelfuncs import label_join, label_replace
from shared.promql.parse import enum_name
from shared.promql.timefuncs import DATE_FUNCS
from shared.promql.values import (
    F64,
    I64,
    Matrix,
    RangeSeries,
    Scalar,
    String,
    Value,
    Vector,
    drop_name,
)

_PACKED: dict[str, rf.PackedFn] = {
    "rate": rf.extrapolated_rate(is_counter=True, is_rate=True),
    "increase": rf.extrapolated_rate(is_counter=True, is_rate=False),
    "delta": rf.extrapolated_rate(is_counter=False, is_rate=False),
    "irate": rf.instant_value(is_rate=True),
    "idelta": rf.instant_value(is_rate=False),
    "resets": rf.count_changes(resets=True),
    "changes": rf.count_changes(resets=False),
    "sum_over_time": rf.sum_over_time,
    "count_over_time": rf.count_over_time,
    "last_over_time": rf.last_over_time,
    "first_over_time": rf.first_over_time,
    "ts_of_last_over_time": rf.ts_of_last_over_time,
    "present_over_time": rf.present_over_time,
    "avg_over_time": rf.avg_over_time,
    "min_over_time": rf.extreme_over_time(largest=False),
    "max_over_time": rf.extreme_over_time(largest=True),
}
"""Range functions computed for all series at once."""

_RANGE: dict[str, Callable[..., tuple[F64, np.ndarray]]] = {
    "ts_of_max_over_time": rf.over_time(rf.ts_of_extreme(largest=True)),
    "ts_of_min_over_time": rf.over_time(rf.ts_of_extreme(largest=False)),
    "stddev_over_time": rf.over_time(lambda _t, v: math.sqrt(rf.variance(v))),
    "stdvar_over_time": rf.over_time(lambda _t, v: rf.variance(v)),
    "mad_over_time": rf.over_time(lambda _t, v: rf.mad(v)),
    "deriv": rf.over_time(lambda t, v: rf.linear_regression(t, v, int(t[0]))[0], 2),
}

_MATH: dict[str, Callable[[F64], F64]] = {
    "abs": np.abs,
    "ceil": np.ceil,
    "floor": np.floor,
    "exp": np.exp,
    "ln": np.log,
    "log2": np.log2,
    "log10": np.log10,
    "sqrt": np.sqrt,
    "sgn": np.sign,
    "acos": np.arccos,
    "acosh": np.arccosh,
    "asin": np.arcsin,
    "asinh": np.arcsinh,
    "atan": np.arctan,
    "atanh": np.arctanh,
    "cos": np.cos,
    "cosh": np.cosh,
    "sin": np.sin,
    "sinh": np.sinh,
    "tan": np.tan,
    "tanh": np.tanh,
    "deg": np.degrees,
    "rad": np.radians,
}

_NATIVE_HISTOGRAM = {
    "histogram_count",
    "histogram_sum",
    "histogram_avg",
    "histogram_fraction",
    "histogram_stddev",
    "histogram_stdvar",
}


def _map(vec: Vector, fn: Callable[[F64], F64]) -> Vector:
    with np.errstate(all="ignore"):
        values = fn(vec.values)
    return Vector([drop_name(x) for x in vec.labels], values, vec.present).compact()


def _unparen(node: Any) -> Any:
    while type(node).__name__ == "ParenExpr":
        node = node.expr
    return node


async def call(ev: Evaluator, node: Any, ts: I64) -> Value:
    name: str = node.func.name
    args = list(node.args)
    if name in _PACKED or name in _RANGE:
        ev.ctx.hints_func.append(name)
        try:
            m = await ev.eval_matrix(args[0], ts)
        finally:
            ev.ctx.hints_func.pop()
        keep = name in ("last_over_time", "first_over_time")
        if m.rollup is not None:
            return rf.apply_packed(m, rollupfuncs.function(name, m))
        packed = _PACKED.get(name)
        if packed is not None:
            return rf.apply_packed(m, packed, keep_name=keep)
        return rf.apply(m, _RANGE[name], keep_name=keep)
    if name in _MATH:
        return _map(await ev.eval_vector(args[0], ts), _MATH[name])
    if name in DATE_FUNCS:
        if args:
            return _map(await ev.eval_vector(args[0], ts), DATE_FUNCS[name])
        seconds = ts.astype(np.float64)[None, :] / 1000
        return Vector([{}], DATE_FUNCS[name](seconds), np.ones((1, len(ts)), dtype=bool))
    handler = _OTHER.get(name)
    if handler is not None:
        result: Value = await handler(ev, args, ts)
        return result
    if name in _NATIVE_HISTOGRAM:
        await ev.eval_vector(args[0] if len(args) == 1 else args[-1], ts)
        return Vector.empty(len(ts))
    raise BadData(f"cannot evaluate function {name}(): not supported by Vigil")


async def _scalar_arg(ev: Evaluator, node: Any, ts: I64) -> F64:
    return (await ev.eval_scalar(node, ts)).values


async def _string_arg(ev: Evaluator, node: Any, ts: I64) -> str:
    val = await ev.eval(node, ts)
    if not isinstance(val, String):
        raise BadData("cannot evaluate function: expected a string argument")
    return val.value


Handler = Callable[[Evaluator, list[Any], I64], Any]


async def _quantile_over_time(ev: Evaluator, args: list[Any], ts: I64) -> Value:
    q = await _scalar_arg(ev, args[0], ts)
    m = await ev.eval_matrix(args[1], ts)

    def fn(s: RangeSeries, lo: I64, hi: I64, _m: Matrix) -> tuple[F64, np.ndarray]:
        out = np.full(len(lo), np.nan)
        ok = hi - lo >= 1
        for j in np.nonzero(ok)[0]:
            out[j] = rf.quantile(float(q[j]), s.values[lo[j] : hi[j]])
        return out, ok

    return rf.apply(m, fn)


async def _predict_linear(ev: Evaluator, args: list[Any], ts: I64) -> Value:
    m = await ev.eval_matrix(args[0], ts)
    dur = await _scalar_arg(ev, args[1], ts)

    def fn(s: RangeSeries, lo: I64, hi: I64, _m: Matrix) -> tuple[F64, np.ndarray]:
        out = np.full(len(lo), np.nan)
        ok = hi - lo >= 2
        for j in np.nonzero(ok)[0]:
            a, b = lo[j], hi[j]
            slope, icpt = rf.linear_regression(s.timestamps[a:b], s.values[a:b], int(ts[j]))
            out[j] = slope * float(dur[j]) + icpt
        return out, ok

    return rf.apply(m, fn)


async def _smoothing(ev: Evaluator, args: list[Any], ts: I64) -> Value:
    m = await ev.eval_matrix(args[0], ts)
    sf = await _scalar_arg(ev, args[1], ts)
    tf = await _scalar_arg(ev, args[2], ts)
    for arr, what in ((sf, "smoothing"), (tf, "trend")):
        bad = (arr <= 0) | (arr >= 1)
        if bad.any():
            raise BadData(f"invalid {what} factor. Expected: 0 < sf < 1, got: {arr[bad][0]}")

    def fn(s: RangeSeries, lo: I64, hi: I64, _m: Matrix) -> tuple[F64, np.ndarray]:
        out = np.full(len(lo), np.nan)
        ok = hi - lo >= 2
        for j in np.nonzero(ok)[0]:
            vals = s.values[lo[j] : hi[j]]
            out[j] = rf.double_exponential_smoothing(vals, float(sf[j]), float(tf[j]))
        return out, ok

    return rf.apply(m, fn)


def _absent_labels(node: Any) -> dict[str, str]:
    kind = type(node).__name__
    if kind == "MatrixSelector":
        node = node.vector_selector
    elif kind != "VectorSelector":
        return {}
    out: dict[str, str] = {}
    drop: set[str] = set()
    for m in node.matchers.matchers:
        if m.name == "__name__":
            continue
        if enum_name(m.op) == "Equal" and m.name not in out:
            out[m.name] = m.value
        else:
            drop.add(m.name)
    return {k: v for k, v in out.items() if k not in drop}


def _absent_vector(missing: np.ndarray, labels: dict[str, str]) -> Vector:
    if not missing.any():
        return Vector.empty(len(missing))
    return Vector([labels], np.ones((1, len(missing))), missing[None, :].copy())


async def _absent(ev: Evaluator, args: list[Any], ts: I64) -> Value:
    vec = await ev.eval_vector(args[0], ts)
    return _absent_vector(np.logical_not(vec.present.any(axis=0)), _absent_labels(args[0]))


async def _absent_over_time(ev: Evaluator, args: list[Any], ts: I64) -> Value:
    m = await ev.eval_matrix(args[0], ts)
    seen = np.zeros(len(ts), dtype=bool)
    for s in m.series:
        lo, hi = m.windows(s)
        seen |= hi > lo
    return _absent_vector(np.logical_not(seen), _absent_labels(args[0]))


async def _round(ev: Evaluator, args: list[Any], ts: I64) -> Value:
    vec = await ev.eval_vector(args[0], ts)
    to = await _scalar_arg(ev, args[1], ts) if len(args) > 1 else np.ones(len(ts))
    inv = 1.0 / to
    return _map(vec, lambda v: np.floor(v * inv + 0.5) / inv)


async def _clamp(ev: Evaluator, args: list[Any], ts: I64, lo: bool, hi: bool) -> Value:
    vec = await ev.eval_vector(args[0], ts)
    rest = iter(args[1:])
    low = await _scalar_arg(ev, next(rest), ts) if lo else np.full(len(ts), -np.inf)
    high = await _scalar_arg(ev, next(rest), ts) if hi else np.full(len(ts), np.inf)
    out = _map(vec, lambda v: np.maximum(low, np.minimum(high, v)))
    if lo and hi:
        out.present = out.present & ~(high < low)[None, :]
        out = out.compact()
    return out


async def _scalar(ev: Evaluator, args: list[Any], ts: I64) -> Value:
    vec = await ev.eval_vector(args[0], ts)
    one = vec.present.sum(axis=0) == 1
    vals = (
        np.where(vec.present, vec.values, 0).sum(axis=0) if len(vec.labels) else np.zeros(len(ts))
    )
    return Scalar(np.where(one, vals, np.nan))


async def _vector(ev: Evaluator, args: list[Any], ts: I64) -> Value:
    return await ev.eval_vector(args[0], ts)


async def _time(ev: Evaluator, args: list[Any], ts: I64) -> Value:
    return Scalar(ts.astype(np.float64) / 1000)


async def _pi(ev: Evaluator, args: list[Any], ts: I64) -> Value:
    return Scalar(np.full(len(ts), math.pi))


async def _timestamp(ev: Evaluator, args: list[Any], ts: I64) -> Value:
    inner = _unparen(args[0])
    if type(inner).__name__ == "VectorSelector":
        vec, stamps = await ev.instant_selector(inner, ts, with_timestamps=True)
        assert stamps is not None  # noqa: S101 - asked for with_timestamps
        return _map(vec, lambda _v: stamps.astype(np.float64) / 1000)
    vec = await ev.eval_vector(args[0], ts)
    return _map(vec, lambda v: np.broadcast_to(ts.astype(np.float64) / 1000, v.shape).copy())


def _reorder(vec: Vector, order: list[int]) -> Vector:
    return Vector([vec.labels[i] for i in order], vec.values[order], vec.present[order])


async def _sort(ev: Evaluator, args: list[Any], ts: I64, desc: bool) -> Value:
    vec = await ev.eval_vector(args[0], ts)
    if len(ts) != 1 or not vec.labels:
        return vec
    vals = vec.values[:, 0]
    nan = np.isnan(vals)
    key = np.where(nan, -np.inf if desc else np.inf, vals)
    order = sorted(range(len(vals)), key=lambda i: (bool(nan[i]), -key[i] if desc else key[i]))
    return _reorder(vec, order)


async def _sort_by_label(ev: Evaluator, args: list[Any], ts: I64, desc: bool) -> Value:
    vec = await ev.eval_vector(args[0], ts)
    names = [await _string_arg(ev, a, ts) for a in args[1:]]
    order = sorted(
        range(len(vec.labels)),
        key=lambda i: ([vec.labels[i].get(n, "") for n in names], sorted(vec.labels[i].items())),
        reverse=desc,
    )
    return _reorder(vec, order)


async def _label_replace(ev: Evaluator, args: list[Any], ts: I64) -> Value:
    vec = await ev.eval_vector(args[0], ts)
    dst, repl, src, regex = [await _string_arg(ev, a, ts) for a in args[1:5]]
    return label_replace(vec, dst, repl, src, regex)


async def _label_join(ev: Evaluator, args: list[Any], ts: I64) -> Value:
    vec = await ev.eval_vector(args[0], ts)
    dst, sep = await _string_arg(ev, args[1], ts), await _string_arg(ev, args[2], ts)
    srcs = [await _string_arg(ev, a, ts) for a in args[3:]]
    return label_join(vec, dst, sep, srcs)


async def _histogram_quantile(ev: Evaluator, args: list[Any], ts: I64) -> Value:
    q = await _scalar_arg(ev, args[0], ts)
    return histogram_quantile(q, await ev.eval_vector(args[1], ts)).compact()


def _bind(fn: Callable[..., Any], **kw: bool) -> Handler:
    async def run(ev: Evaluator, args: list[Any], ts: I64) -> Value:
        result: Value = await fn(ev, args, ts, **kw)
        return result

    return run


_OTHER: dict[str, Handler] = {
    "quantile_over_time": _quantile_over_time,
    "predict_linear": _predict_linear,
    "double_exponential_smoothing": _smoothing,
    "holt_winters": _smoothing,
    "absent": _absent,
    "absent_over_time": _absent_over_time,
    "round": _round,
    "clamp": _bind(_clamp, lo=True, hi=True),
    "clamp_min": _bind(_clamp, lo=True, hi=False),
    "clamp_max": _bind(_clamp, lo=False, hi=True),
    "scalar": _scalar,
    "vector": _vector,
    "time": _time,
    "pi": _pi,
    "timestamp": _timestamp,
    "sort": _bind(_sort, desc=False),
    "sort_desc": _bind(_sort, desc=True),
    "sort_by_label": _bind(_sort_by_label, desc=False),
    "sort_by_label_desc": _bind(_sort_by_label, desc=True),
    "label_replace": _label_replace,
    "label_join": _label_join,
    "histogram_quantile": _histogram_quantile,
}
