"""Functions of a range vector: the rate family and the ``*_over_time`` family.

Each function maps a window of raw samples to one value per step; windows are the
half-open index ranges ``[lo, hi)`` that ``Matrix.windows`` finds with ``searchsorted``,
so most functions are computed for every step of a series at once from cumulative sums.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from shared.promql.values import F64, I64, Matrix, RangeSeries, Vector, drop_name

WindowFn = Callable[[I64, F64], float]


def _per_window(s: RangeSeries, lo: I64, hi: I64, fn: WindowFn, min_len: int = 1) -> F64:
    out = np.full(len(lo), np.nan)
    for j in np.nonzero(hi - lo >= min_len)[0]:
        a, b = lo[j], hi[j]
        out[j] = fn(s.timestamps[a:b], s.values[a:b])
    return out


def _cumsum0(x: F64) -> F64:
    return np.concatenate(([0.0], np.cumsum(x)))


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


def extrapolated_rate(is_counter: bool, is_rate: bool) -> Callable[..., tuple[F64, np.ndarray]]:
    """Prometheus' ``extrapolatedRate`` (2.x) for ``rate``, ``increase`` and ``delta``."""

    def fn(s: RangeSeries, lo: I64, hi: I64, m: Matrix) -> tuple[F64, np.ndarray]:
        ok = hi - lo >= 2
        if not ok.any():
            return np.zeros(len(lo)), ok
        first, last = np.where(ok, lo, 0), np.where(ok, hi - 1, 0)
        vs, ts = s.values, s.timestamps
        result = vs[last] - vs[first]
        if is_counter:
            prev = np.concatenate(([0.0], vs[:-1]))
            with np.errstate(invalid="ignore"):
                corr = np.where(vs < prev, prev, 0.0)
            if np.isfinite(corr).all():
                cum = np.cumsum(corr)
                result = result + cum[last] - cum[first]
            else:
                for j in np.nonzero(ok)[0]:
                    result[j] += corr[first[j] + 1 : last[j] + 1].sum()
        range_start = (m.ends - m.range_ms).astype(np.float64)
        range_end = m.ends.astype(np.float64)
        t_first, t_last = ts[first].astype(np.float64), ts[last].astype(np.float64)
        to_start = (t_first - range_start) / 1000
        to_end = (range_end - t_last) / 1000
        sampled = (t_last - t_first) / 1000
        count = (hi - lo).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            avg = sampled / np.maximum(count - 1, 1)
            if is_counter:
                clamp = (result > 0) & (vs[first] >= 0)
                to_zero = sampled * (vs[first] / result)
                to_start = np.where(clamp & (to_zero < to_start), to_zero, to_start)
            threshold = avg * 1.1
            interval = sampled.copy()
            interval += np.where(to_start < threshold, to_start, avg / 2)
            interval += np.where(to_end < threshold, to_end, avg / 2)
            factor = interval / sampled  # one factor, as Prometheus: same rounding
            if is_rate:
                factor = factor / (m.range_ms / 1000)
        return result * factor, ok

    return fn


def instant_value(is_rate: bool) -> Callable[..., tuple[F64, np.ndarray]]:
    """``irate``/``idelta``: from the last two samples of the window."""

    def fn(s: RangeSeries, lo: I64, hi: I64, m: Matrix) -> tuple[F64, np.ndarray]:
        ok = hi - lo >= 2
        last, prev = np.where(ok, hi - 1, 0), np.where(ok, hi - 2, 0)
        vl, vp = s.values[last], s.values[prev]
        dt = (s.timestamps[last] - s.timestamps[prev]).astype(np.float64)
        ok &= dt != 0
        with np.errstate(invalid="ignore", divide="ignore"):
            res = np.where(vl < vp, vl, vl - vp) / (dt / 1000) if is_rate else vl - vp
        return res, ok

    return fn


def count_changes(resets: bool) -> Callable[..., tuple[F64, np.ndarray]]:
    def fn(s: RangeSeries, lo: I64, hi: I64, m: Matrix) -> tuple[F64, np.ndarray]:
        vs = s.values
        with np.errstate(invalid="ignore"):
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


def sum_over_time(s: RangeSeries, lo: I64, hi: I64, m: Matrix) -> tuple[F64, np.ndarray]:
    ok = hi - lo >= 1
    if np.isfinite(s.values).all():
        cum = _cumsum0(s.values)
        return cum[hi] - cum[lo], ok
    return _per_window(s, lo, hi, lambda _t, v: float(np.sum(v))), ok


def avg_over_time(s: RangeSeries, lo: I64, hi: I64, m: Matrix) -> tuple[F64, np.ndarray]:
    ok = hi - lo >= 1
    if np.isfinite(s.values).all() and (np.abs(s.values) < 1e300).all():
        cum = _cumsum0(s.values)
        return (cum[hi] - cum[lo]) / np.maximum(hi - lo, 1), ok
    return _per_window(s, lo, hi, lambda _t, v: avg(v)), ok


def extreme_over_time(largest: bool) -> Callable[..., tuple[F64, np.ndarray]]:
    """``max_over_time``/``min_over_time`` for all steps at once with a sparse table.

    ``fmax``/``fmin`` skip NaN, so a window is NaN only when all its samples are,
    as in Prometheus.
    """
    pick = np.fmax if largest else np.fmin

    def fn(s: RangeSeries, lo: I64, hi: I64, m: Matrix) -> tuple[F64, np.ndarray]:
        ok = hi - lo >= 1
        out = np.full(len(lo), np.nan)
        if not ok.any():
            return out, ok
        table = [s.values]
        width = 1
        while 2 * width <= len(s.values):
            prev = table[-1]
            table.append(pick(prev[:-width], prev[width:]))
            width *= 2
        length = np.where(ok, hi - lo, 1)
        level = np.floor(np.log2(length)).astype(np.int64)
        for lev in np.unique(level[ok]):
            sel = ok & (level == lev)
            row = table[lev]
            out[sel] = pick(row[lo[sel]], row[hi[sel] - (1 << lev)])
        return out, ok

    return fn


def count_over_time(s: RangeSeries, lo: I64, hi: I64, m: Matrix) -> tuple[F64, np.ndarray]:
    return (hi - lo).astype(np.float64), hi - lo >= 1


def last_over_time(s: RangeSeries, lo: I64, hi: I64, m: Matrix) -> tuple[F64, np.ndarray]:
    ok = hi - lo >= 1
    return s.values[np.where(ok, hi - 1, 0)] if len(s.values) else np.zeros(len(lo)), ok


def first_over_time(s: RangeSeries, lo: I64, hi: I64, m: Matrix) -> tuple[F64, np.ndarray]:
    ok = hi - lo >= 1
    return s.values[np.where(ok, lo, 0)] if len(s.values) else np.zeros(len(lo)), ok


def ts_of_last_over_time(s: RangeSeries, lo: I64, hi: I64, m: Matrix) -> tuple[F64, np.ndarray]:
    ok = hi - lo >= 1
    if not len(s.values):
        return np.zeros(len(lo)), ok
    return s.timestamps[np.where(ok, hi - 1, 0)].astype(np.float64) / 1000, ok


def ts_of_extreme(largest: bool) -> WindowFn:
    """Timestamp (s) of the last sample holding the window's max (min); NaN never wins."""

    def fn(ts: I64, vs: F64) -> float:
        clean = np.where(np.isnan(vs), -np.inf if largest else np.inf, vs)
        best = clean.max() if largest else clean.min()
        if np.isnan(vs).all():
            return float(ts[-1]) / 1000
        return float(ts[np.nonzero(clean == best)[0][-1]]) / 1000

    return fn


def present_over_time(s: RangeSeries, lo: I64, hi: I64, m: Matrix) -> tuple[F64, np.ndarray]:
    return np.ones(len(lo)), hi - lo >= 1


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
