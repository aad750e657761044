"""The all-series range functions agree with a naive per-series, per-window computation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from shared.promql import rangefuncs as rf
from shared.promql.packed import Packed
from shared.promql.selectors import range_matrix
from shared.promql.storage import Series
from shared.wire import STALE_NAN


def _series(seed: int, count: int = 12, *, specials: bool = True) -> list[Series]:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        n = int(rng.integers(0, 40))
        ts = np.sort(rng.choice(np.arange(0, 600_000, 5_000), size=n, replace=False)).astype(
            np.int64
        )
        vs = np.cumsum(rng.integers(0, 50, size=n)).astype(np.float64) * (k + 1)
        if specials and n:
            for _ in range(int(rng.integers(0, 3))):  # counter resets
                vs[int(rng.integers(0, n)) :] -= vs[int(rng.integers(0, n))]
            if k % 4 == 1:
                vs[int(rng.integers(0, n))] = math.nan
            if k % 4 == 2:
                vs[int(rng.integers(0, n))] = STALE_NAN
            if k % 5 == 3:
                vs[int(rng.integers(0, n))] = math.inf
        out.append(Series({"__name__": "m", "k": str(k)}, ts, vs))
    return [s for s in out if len(s.timestamps_ms)]


def _naive_rate(
    ts: np.ndarray, vs: np.ndarray, start: int, end: int, *, counter: bool, rate: bool
) -> float:
    vs = vs.astype(object).astype(float)  # Python floats: IEEE results, no numpy warnings
    ts = ts.astype(float)
    result = vs[-1] - vs[0]
    if counter:
        last = 0.0
        for v in vs:
            if v < last:
                result += last
            last = v
    to_start = (ts[0] - start) / 1000
    to_end = (end - ts[-1]) / 1000
    sampled = (ts[-1] - ts[0]) / 1000
    avg = sampled / (len(vs) - 1)
    if counter and result > 0 and vs[0] >= 0:
        to_zero = sampled * (vs[0] / result)
        to_start = min(to_start, to_zero)
    threshold = avg * 1.1
    interval = sampled + (to_start if to_start < threshold else avg / 2)
    interval += to_end if to_end < threshold else avg / 2
    factor = interval / sampled
    if rate:
        factor /= (end - start) / 1000
    return float(result * factor)


def _naive(name: str, ts: np.ndarray, vs: np.ndarray, start: int, end: int) -> float | None:
    if name in ("rate", "increase", "delta"):
        if len(vs) < 2:
            return None
        with np.errstate(all="ignore"):
            return _naive_rate(ts, vs, start, end, counter=name != "delta", rate=name == "rate")
    if len(vs) == 0:
        return None
    table = {
        "sum_over_time": lambda: float(sum(vs.tolist())),
        "count_over_time": lambda: float(len(vs)),
        "max_over_time": lambda: float(np.nanmax(vs)) if not np.isnan(vs).all() else math.nan,
        "min_over_time": lambda: float(np.nanmin(vs)) if not np.isnan(vs).all() else math.nan,
        "last_over_time": lambda: float(vs[-1]),
        "first_over_time": lambda: float(vs[0]),
        "resets": lambda: float(sum(b < a for a, b in itertools.pairwise(vs))),
        "avg_over_time": lambda: rf.avg(vs),
    }
    return table[name]()


_FUNCS = {
    "rate": rf.extrapolated_rate(is_counter=True, is_rate=True),
    "increase": rf.extrapolated_rate(is_counter=True, is_rate=False),
    "delta": rf.extrapolated_rate(is_counter=False, is_rate=False),
    "sum_over_time": rf.sum_over_time,
    "avg_over_time": rf.avg_over_time,
    "count_over_time": rf.count_over_time,
    "max_over_time": rf.extreme_over_time(largest=True),
    "min_over_time": rf.extreme_over_time(largest=False),
    "last_over_time": rf.last_over_time,
    "first_over_time": rf.first_over_time,
    "resets": rf.count_changes(resets=True),
}


def _close(got: float, want: float) -> bool:
    if math.isnan(want):
        return math.isnan(got)
    if math.isinf(want):
        return got == want
    return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.parametrize("name", sorted(_FUNCS))
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(
    ("range_ms", "step_ms"), [(60_000, 15_000), (300_000, 45_000), (5_000, 5_000)]
)
def test_all_series_functions_equal_naive_windows(
    name: str, seed: int, range_ms: int, step_ms: int
) -> None:
    series = _series(seed)
    ends = np.arange(0, 700_001, step_ms, dtype=np.int64)
    m = range_matrix(series, ends, range_ms)
    vec = rf.apply_packed(m, _FUNCS[name], keep_name=True)
    rows = {lab["k"]: i for i, lab in enumerate(vec.labels)}
    for rs in m.series:
        i = rows.get(rs.labels["k"])
        for j, end in enumerate(ends.tolist()):
            sel = (rs.timestamps >= end - range_ms) & (rs.timestamps <= end)
            want = _naive(name, rs.timestamps[sel], rs.values[sel], end - range_ms, end)
            if want is None:
                assert i is None or not vec.present[i, j]
                continue
            assert i is not None, (rs.labels, end)
            assert vec.present[i, j], (rs.labels, end)
            assert _close(float(vec.values[i, j]), want), (rs.labels, end, vec.values[i, j], want)


def test_windows_fall_back_per_series_when_times_span_too_much() -> None:
    far = np.array([-(2**61), 0, 2**61], dtype=np.int64)
    p = Packed.of([far, far + 1], [np.zeros(3), np.ones(3)])
    ends = np.array([0, 2**61], dtype=np.int64)
    lo, hi = p.windows(ends, 10)
    assert lo.tolist() == [[1, 2], [4, 5]]
    assert hi.tolist() == [[2, 3], [4, 5]]


def test_stale_markers_are_dropped_and_series_stay_views_of_the_packed_arrays() -> None:
    s = Series(
        {"__name__": "m"}, np.array([1, 2, 3], dtype=np.int64), np.array([1.0, STALE_NAN, 3.0])
    )
    m = range_matrix([s, s], np.array([3], dtype=np.int64), 10)
    p = m.packed()
    assert p.offsets.tolist() == [0, 2, 4]
    assert p.values.tolist() == [1.0, 3.0, 1.0, 3.0]
    assert m.series[1].timestamps.tolist() == [1, 3]


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("grid", ["even", "uneven", "unsorted", "single", "repeated"])
def test_window_strategies_agree_with_per_series_searches(seed: int, grid: str) -> None:
    """Counting (ascending ends, evenly spaced or not) and the shifted search (any ends)
    find the same windows as one search per series."""
    series = _series(seed, specials=False)
    p = Packed.of([s.timestamps_ms for s in series], [s.values for s in series])
    rng = np.random.default_rng(seed)
    ends = {
        "even": np.arange(-20_000, 700_001, 15_000),
        "uneven": np.sort(rng.integers(-50_000, 700_000, 40)),
        "unsorted": rng.integers(-50_000, 700_000, 40),
        "single": np.array([300_000]),
        "repeated": np.full(7, 120_000),
    }[grid].astype(np.int64)
    for range_ms in (0, 1, 60_000, 300_000):
        lo, hi = p.windows(ends, range_ms)
        want_lo, want_hi = p._windows_per_series(ends, range_ms)  # the reference
        assert np.array_equal(lo, want_lo), (grid, range_ms)
        assert np.array_equal(hi, want_hi), (grid, range_ms)
