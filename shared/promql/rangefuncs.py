"""Functions of a range vector: the rate family and the ``*_over_time`` family.

Each function maps a window of raw samples to one value per step; windows are the
half-open index ranges ``[lo, hi)`` found with ``searchsorted``. The common functions
(the rate family, ``resets``/``changes``, ``sum``/``avg``/``count``/``min``/``max``/
``last``/``first``/``present_over_time``) are ``PackedFn``s: one call computes every
series and step from the packed samples (``shared.promql.packed``) with window sums,
sparse tables and gathers. The others (quantiles, deviations, ``deriv`` ...) run per
series and window through ``apply``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from shared.promql.packed import Packed, window_reduce, window_sum
from shared.promql.values import (
    F64,
    I64,
    METRIC_NAME,
    Bools,
    Matrix,
    RangeSeries,
    Vector,
    drop_name,
)

WindowFn = Callable[[I64, F64], float]


def _per_window(s: RangeSeries, lo: I64, hi: I64, fn: WindowFn, min_len: int = 1) -> F64:
    out = np.full(len(lo), np.nan)
    for j in np.nonzero(hi - lo >= min_len)[0]:
        a, b = lo[j], hi[j]
        out[j] = fn(s.timestamps[a:b], s.values[a:b])
    return out


def _cumsum0(x: F64) -> F64:
    return np.concatenate(([0.0], np.cumsum(x)))


PackedFn = Callable[[Packed, I64, I64, Matrix], tuple[F64, Bools]]
"""A range function over all series at once: (packed samples, lo, hi, matrix) -> (values,
present), where ``lo``/``hi``/values/present are ``series x steps``."""


def apply(
    m: Matrix,
    fn: Callable[[RangeSeries, I64, I64, Matrix], tuple[F64, np.ndarray]],
    *,
    keep_name: bool = False,
) -> Vector:
    """Run ``fn`` (series, lo, hi, matrix) -> (values, present) over every series."""
    steps = len(m.ends)
    labels, values, present = [], [], []
    for s in m.series:
        lo, hi = m.windows(s)
        with np.errstate(all="ignore"):  # NaN and Inf are values: IEEE results are the answer
            v, ok = fn(s, lo, hi, m)
        if not ok.any():
            continue
        labels.append(dict(s.labels) if keep_name else drop_name(s.labels))
        values.append(v)
        present.append(ok)
    if not labels:
        return Vector.empty(steps)
    return Vector(labels, np.vstack(values), np.vstack(present)).compact()


def apply_packed(m: Matrix, fn: PackedFn, *, keep_name: bool = False) -> Vector:
    """Run ``fn`` once over the packed samples of every series and every step."""
    steps = len(m.ends)
    if not m.series:
        return Vector.empty(steps)
    p = m.packed()
    lo, hi = p.windows(m.ends, m.range_ms)
    with np.errstate(all="ignore"):  # NaN and Inf are values: IEEE results are the answer
        v, ok = fn(p, lo, hi, m)
    rows = np.flatnonzero(ok.any(axis=1)).tolist()
    if not rows:
        return Vector.empty(steps)
    labels = [
        dict(m.series[i].labels) if keep_name else drop_name(m.series[i].labels) for i in rows
    ]
    if len(rows) < len(m.series):
        v, ok = v[rows], ok[rows]
    vec = Vector(labels, v, ok)
    # The series of a matrix have distinct label sets, and every row kept is present
    # somewhere: dropping one shared metric name cannot make two rows equal.
    if keep_name or len({m.series[i].labels.get(METRIC_NAME) for i in rows}) == 1:
        return vec
    return vec.compact()


def extrapolated_rate(is_counter: bool, is_rate: bool) -> PackedFn:
    """Prometheus' ``extrapolatedRate`` (2.x) for ``rate``, ``increase`` and ``delta``."""

    def fn(p: Packed, lo: I64, hi: I64, m: Matrix) -> tuple[F64, Bools]:
        # The operations of Prometheus' float arithmetic, in its order (so the same
        # rounding), with few temporaries: time differences are taken in int64 (exact)
        # before the conversion, and updates run in place.
        count = hi - lo
        ok = count >= 2
        if not ok.any():
            return np.zeros(lo.shape), ok
        every = bool(ok.all())
        first = lo if every else np.where(ok, lo, 0)
        last = hi - 1
        if not every:
            last[~ok] = 0
        vs, ts = p.values, p.timestamps
        v_first = vs[first]
        result = vs[last]
        result -= v_first
        if is_counter:
            result += _reset_correction(vs, p.offsets, first, last, ok)
        t_first, t_last = ts[first], ts[last]
        to_start = (t_first - (m.ends - m.range_ms)[None, :]).astype(np.float64)
        to_start /= 1000
        to_end = (m.ends[None, :] - t_last).astype(np.float64)
        to_end /= 1000
        sampled = (t_last - t_first).astype(np.float64)
        sampled /= 1000
        avg = sampled / np.maximum(count - 1, 1)
        if is_counter:
            to_zero = v_first / result
            to_zero *= sampled
            clamp = (result > 0) & (v_first >= 0) & (to_zero < to_start)
            np.copyto(to_start, to_zero, where=clamp)
        threshold = avg * 1.1
        avg /= 2
        interval = np.where(to_start < threshold, to_start, avg)
        interval += sampled
        interval += np.where(to_end < threshold, to_end, avg)
        interval /= sampled  # one factor, as Prometheus: same rounding
        if is_rate:
            interval /= m.range_ms / 1000
        interval *= result
        return interval, ok

    return fn


def _reset_correction(vs: F64, offsets: I64, first: I64, last: I64, ok: Bools) -> F64:
    """Sum of the values before each counter reset in ``(first, last]`` (per window).

    A reset at ``i`` (``vs[i] < vs[i - 1]``) adds ``vs[i - 1]``, as Prometheus does
    sample by sample. A series' first sample is never a reset of the one before it
    (another series), so its entry is zero; the sums run inside each window, never
    across series.
    """
    with np.errstate(invalid="ignore"):
        drop = vs[1:] < vs[:-1]  # drop[i - 1]: a reset at i
    later = offsets[1:-1]  # the first samples of the series after the first one
    drop[later[(later > 0) & (later < len(vs))] - 1] = False
    if not drop.any():  # the common case: no counter reset anywhere
        return np.zeros(first.shape)
    at = np.flatnonzero(drop) + 1
    corr = np.zeros(len(vs))
    corr[at] = vs[at - 1]
    if not corr.any():
        return np.zeros(first.shape)
    return window_sum(corr, first + 1, last + 1, ok)


def instant_value(is_rate: bool) -> PackedFn:
    """``irate``/``idelta``: from the last two samples of the window."""

    def fn(p: Packed, lo: I64, hi: I64, m: Matrix) -> tuple[F64, Bools]:
        ok = hi - lo >= 2
        last, prev = np.where(ok, hi - 1, 0), np.where(ok, hi - 2, 0)
        if len(p.values) == 0:
            return np.zeros(lo.shape), ok
        vl, vp = p.values[last], p.values[prev]
        dt = (p.timestamps[last] - p.timestamps[prev]).astype(np.float64)
        ok &= dt != 0
        res = np.where(vl < vp, vl, vl - vp) / (dt / 1000) if is_rate else vl - vp
        return res, ok

    return fn


def count_changes(resets: bool) -> PackedFn:
    """``resets``/``changes``: counted pairwise inside each window (0/1 sums are exact)."""

    def fn(p: Packed, lo: I64, hi: I64, m: Matrix) -> tuple[F64, Bools]:
        vs = p.values
        if resets:
            hit = vs[1:] < vs[:-1]
        else:
            hit = (vs[1:] != vs[:-1]) & ~(np.isnan(vs[1:]) & np.isnan(vs[:-1]))
        cum = _cumsum0(hit.astype(np.float64))
        ok = hi - lo >= 1
        a, b = np.where(ok, lo, 0), np.where(ok, hi - 1, 0)
        return cum[b] - cum[a], ok

    return fn


def over_time(window: WindowFn, min_len: int = 1) -> Callable[..., tuple[F64, np.ndarray]]:
    def fn(s: RangeSeries, lo: I64, hi: I64, m: Matrix) -> tuple[F64, np.ndarray]:
        return _per_window(s, lo, hi, window, min_len), hi - lo >= min_len

    return fn


def sum_over_time(p: Packed, lo: I64, hi: I64, m: Matrix) -> tuple[F64, Bools]:
    ok = hi - lo >= 1
    return window_sum(p.values, lo, hi, ok), ok


def avg_over_time(p: Packed, lo: I64, hi: I64, m: Matrix) -> tuple[F64, Bools]:
    ok = hi - lo >= 1
    vs = p.values
    if np.isfinite(vs).all() and (np.abs(vs) < 1e300).all():
        return window_sum(vs, lo, hi, ok) / np.maximum(hi - lo, 1), ok
    out = np.zeros(lo.shape)
    for idx in zip(*np.nonzero(ok), strict=True):
        out[idx] = avg(vs[lo[idx] : hi[idx]])
    return out, ok


def extreme_over_time(largest: bool) -> PackedFn:
    """``max_over_time``/``min_over_time`` for all series and steps with one sparse table.

    ``fmax``/``fmin`` skip NaN, so a window is NaN only when all its samples are,
    as in Prometheus.
    """
    pick = np.fmax if largest else np.fmin

    def fn(p: Packed, lo: I64, hi: I64, m: Matrix) -> tuple[F64, Bools]:
        ok = hi - lo >= 1
        return window_reduce(p.values, lo, hi, ok, pick=pick, fill=np.nan), ok

    return fn


def count_over_time(p: Packed, lo: I64, hi: I64, m: Matrix) -> tuple[F64, Bools]:
    return (hi - lo).astype(np.float64), hi - lo >= 1


def last_over_time(p: Packed, lo: I64, hi: I64, m: Matrix) -> tuple[F64, Bools]:
    ok = hi - lo >= 1
    return p.values[np.where(ok, hi - 1, 0)] if len(p.values) else np.zeros(lo.shape), ok


def first_over_time(p: Packed, lo: I64, hi: I64, m: Matrix) -> tuple[F64, Bools]:
    ok = hi - lo >= 1
    return p.values[np.where(ok, lo, 0)] if len(p.values) else np.zeros(lo.shape), ok


def ts_of_last_over_time(p: Packed, lo: I64, hi: I64, m: Matrix) -> tuple[F64, Bools]:
    ok = hi - lo >= 1
    if not len(p.values):
        return np.zeros(lo.shape), ok
    return p.timestamps[np.where(ok, hi - 1, 0)].astype(np.float64) / 1000, ok


def ts_of_extreme(largest: bool) -> WindowFn:
    """Timestamp (s) of the last sample holding the window's max (min); NaN never wins."""

    def fn(ts: I64, vs: F64) -> float:
        clean = np.where(np.isnan(vs), -np.inf if largest else np.inf, vs)
        best = clean.max() if largest else clean.min()
        if np.isnan(vs).all():
            return float(ts[-1]) / 1000
        return float(ts[np.nonzero(clean == best)[0][-1]]) / 1000

    return fn


def present_over_time(p: Packed, lo: I64, hi: I64, m: Matrix) -> tuple[F64, Bools]:
    return np.ones(lo.shape), hi - lo >= 1


def avg(values: F64) -> float:
    """Prometheus' incremental mean: no overflow for huge values, Inf rules kept."""
    total = float(np.sum(values))
    if math.isfinite(total):
        return total / len(values)
    mean, count = 0.0, 0.0
    for v in values.tolist():
        count += 1
        if math.isinf(mean):
            if math.isinf(v) and (mean > 0) == (v > 0):
                continue
            if not math.isinf(v) and not math.isnan(v):
                continue
        mean += v / count - mean / count
    return mean


def kahan_inc(inc: float, total: float, comp: float) -> tuple[float, float]:
    """Prometheus 2.x's ``kahanSumInc`` (Neumaier's variant; an overflow makes it NaN)."""
    t = total + inc
    if abs(total) >= abs(inc):
        comp += (total - t) + inc
    else:
        comp += (inc - t) + total
    return t, comp


def variance(values: F64) -> float:
    """Prometheus' ``stdvar_over_time``: Welford's update with Kahan-compensated sums."""
    count = mean = c_mean = aux = c_aux = 0.0
    for v in values.tolist():
        count += 1
        delta = v - (mean + c_mean)
        mean, c_mean = kahan_inc(delta / count, mean, c_mean)
        aux, c_aux = kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux)
    return (aux + c_aux) / count


def quantile(q: float, values: F64) -> float:
    """Prometheus' ``quantile``: linear interpolation between closest ranks."""
    n = len(values)
    if n == 0 or math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    nans = values[np.isnan(values)]
    ordered = np.concatenate((nans, np.sort(values[~np.isnan(values)])))
    rank = q * (n - 1)
    lower = max(0, math.floor(rank))
    upper = min(n - 1, lower + 1)
    weight = rank - math.floor(rank)
    return float(ordered[lower] * (1 - weight) + ordered[upper] * weight)


def linear_regression(ts: I64, vs: F64, intercept_ms: int) -> tuple[float, float]:
    """Least squares like Prometheus' ``linearRegression`` (slope per second)."""
    if (vs == vs[0]).all():
        if math.isinf(vs[0]):
            return math.nan, math.nan
        return 0.0, float(vs[0])
    x = (ts - intercept_ms).astype(np.float64) / 1000
    n = float(len(vs))
    sum_x, sum_y = float(x.sum()), float(vs.sum())
    cov_xy = float((x * vs).sum()) - sum_x * sum_y / n
    var_x = float((x * x).sum()) - sum_x * sum_x / n
    slope = cov_xy / var_x if var_x != 0 else math.nan
    return slope, sum_y / n - slope * sum_x / n


def mad(values: F64) -> float:
    median = quantile(0.5, values)
    return quantile(0.5, np.abs(values - median))


def double_exponential_smoothing(values: F64, sf: float, tf: float) -> float:
    """Prometheus' ``holt_winters``/``double_exponential_smoothing``."""
    if len(values) < 2:
        return math.nan
    s0, s1 = 0.0, float(values[0])
    b = float(values[1] - values[0])
    for i in range(1, len(values)):
        if i > 1:
            b = tf * (s1 - s0) + (1 - tf) * b
        x = sf * float(values[i])
        s0 = s1
        s1 = x + (1 - sf) * (s1 + b)
    return s1
