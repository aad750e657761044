"""Range functions over rollup buckets (``Matrix.rollup``) instead of raw samples.

A storage may answer a range selector from per-bucket aggregates when the
evaluation allows it (``SelectHints``: range, step and end whole buckets). Each
point is then one bucket of width ``W``: its timestamp is the bucket's last
instant (``start + W - 1 ms``), ``values`` holds the first column the storage
names in ``Matrix.rollup`` (``"<table>.<col>+<col>...+head"``) and ``Packed.extra``
the others. A window ``[t - range, t]`` holds exactly the buckets that start in
``[t - range, t)``: they cover ``[t - range, t)``, Prometheus 2.x's closed window
also holds a sample lying exactly on ``t``. The storage adds it: ``head`` is, per
bucket, the raw sample lying exactly on the bucket's start (NaN: none; kept by the
rollup tables, ``ingest.rollup.aggregates``). The sample on ``t``
is the head of the bucket ``[t, t + W)``, the point just after the window; it is
folded into the window ending at ``t`` (and, being in that bucket, into the windows
ending later, as in Prometheus, whose window ``[t, t + range]`` holds it too). A
window with no bucket but a sample on ``t`` answers from that sample alone.

What each function reads, and how close it is to Prometheus over the raw samples:

- ``max``/``min``/``sum_over_time``: ``max``/``min``/``sum``, reduced like samples,
  and the sample on ``t``.
- ``count_over_time``: the sum of ``count`` (+1 for a sample on ``t``);
  ``avg_over_time``: the two sums divided.
  These five equal the raw answers (sums within rounding: the buckets' sums are
  added, not the samples one by one), except for NaN values: rollups leave them
  (and staleness markers, which raw range vectors drop too) out of every column, so
  a raw ``sum``/``count``/``avg_over_time`` over a NaN sample (NaN, or one more) and
  a raw ``max``/``min_over_time`` over NaN samples only (NaN) differ.
- ``increase``/``rate``: the counter-reset-adjusted increase of the window is exact:
  the buckets' ``increase``, plus the step from each bucket's ``last`` to the next
  one's ``first`` (``vigil_counter_step``: ``cur - prev``, or ``cur`` after a reset),
  plus the step from the last bucket's ``last`` to the sample on ``t``. Prometheus
  then extrapolates to the window's edges from the first and last sample *times*,
  which rollups do not keep. Where a sample lies exactly on the window's start (the
  first bucket's ``head``) or end (``t``), that time is known; otherwise it is
  estimated from the counts: the ``n`` samples of the buckets are taken as evenly
  spread over the buckets holding data (from the start of the first to the end of
  the last, span ``C``), interval ``I = C / n``, first sample ``I / 2`` after the
  first bucket's start, last ``I / 2`` before the last one's end. Prometheus'
  formula (threshold ``1.1 * I``, zero clamp with the first bucket's ``first``) runs
  on these times. So the answer is exact when samples lie on both ends of every
  window (a scrape interval dividing the bucket, aligned to it), and for samples at
  a regular interval that divides the bucket, covering the window (both give
  ``increase * n / (n - 1)`` when a window holds ``n`` samples); jitter, gaps, a
  missing (or stale) edge sample and series starting or stopping inside a window
  make it an estimate. That is why the storage serves these two only when asked to
  (``rollup_funcs``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from shared.promql import rangefuncs as rf
from shared.promql.errors import ExecutionError
from shared.promql.packed import Packed, window_reduce, window_sum
from shared.promql.values import F64, I64, Bools, Matrix

WIDTHS_MS = {"samples_1m": 60_000, "samples_1h": 3_600_000}
"""Bucket width of each rollup table (``ingest.rollup.aggregates``)."""
HEAD = "head"
"""The column holding, per bucket, the raw sample exactly on its start (NaN: none)."""


def _edge(p: Packed, lo: I64, hi: I64, m: Matrix) -> tuple[F64, Bools]:
    """Per window, the sample lying exactly on its end ``t``, and where there is one.

    The buckets of a window end at ``t`` (exclusive); the raw window also holds a sample
    at ``t``, which is the head of the bucket starting at ``t``: the point after the
    window (index ``hi``) if that is the bucket ``[t, t + W)`` of the same series.
    """
    width = _width_ms(m)
    nxt = np.minimum(hi, len(p.timestamps) - 1)
    ok = (hi < p.offsets[1:, None]) & (p.timestamps[nxt] == m.ends[None, :] + width - 1)
    head = p.extra[HEAD][nxt]
    ok &= ~np.isnan(head)
    return np.where(ok, head, 0.0), ok


def _start_edge(p: Packed, lo: I64, hi: I64, m: Matrix) -> Bools:
    """Per window, whether a sample lies exactly on its start ``t - range`` (the head of
    its first bucket): then the first sample's time is known, not estimated."""
    first = np.minimum(lo, len(p.timestamps) - 1)
    start = m.ends[None, :] - m.range_ms + _width_ms(m) - 1
    found: Bools = (hi > lo) & (p.timestamps[first] == start) & ~np.isnan(p.extra[HEAD][first])
    return found


def _extreme(largest: bool) -> rf.PackedFn:
    pick = np.fmax if largest else np.fmin

    def fn(p: Packed, lo: I64, hi: I64, m: Matrix) -> tuple[F64, Bools]:
        ok = hi - lo >= 1
        edge, on_edge = _edge(p, lo, hi, m)
        inner = window_reduce(p.values, lo, hi, ok, pick=pick, fill=np.nan)
        return pick(inner, np.where(on_edge, edge, np.nan)), ok | on_edge

    return fn


def _sum(p: Packed, lo: I64, hi: I64, m: Matrix) -> tuple[F64, Bools]:
    return _sum_with(p, lo, hi, *_edge(p, lo, hi, m))


def _sum_with(p: Packed, lo: I64, hi: I64, edge: F64, on_edge: Bools) -> tuple[F64, Bools]:
    """The windows' sums of ``values`` plus the sample on each window's end."""
    ok = hi - lo >= 1
    inner = window_sum(p.values, lo, hi, ok)
    return np.where(ok, np.where(on_edge, inner + edge, inner), edge), ok | on_edge


def _count(p: Packed, lo: I64, hi: I64, m: Matrix) -> tuple[F64, Bools]:
    ok = hi - lo >= 1
    _, on_edge = _edge(p, lo, hi, m)
    return window_sum(p.values, lo, hi, ok) + on_edge, ok | on_edge


def _avg(p: Packed, lo: I64, hi: I64, m: Matrix) -> tuple[F64, Bools]:
    edge, on_edge = _edge(p, lo, hi, m)
    total, ok = _sum_with(p, lo, hi, edge, on_edge)
    count = window_sum(p.extra["count"], lo, hi, hi - lo >= 1) + on_edge
    return total / np.maximum(count, 1), ok


def _increase(is_rate: bool) -> rf.PackedFn:
    def fn(p: Packed, lo: I64, hi: I64, m: Matrix) -> tuple[F64, Bools]:
        width = _width_ms(m)
        first, last, count = p.extra["first"], p.extra["last"], p.extra["count"]
        has = hi - lo >= 1
        edge, on_edge = _edge(p, lo, hi, m)
        on_edge &= has
        on_start = _start_edge(p, lo, hi, m)
        n_buckets = window_sum(count, lo, hi, has)
        n = n_buckets + on_edge
        ok = has & (n >= 2)
        a, b = np.where(ok, lo, 0), np.where(ok, hi - 1, 0)
        # The steps between consecutive buckets of one series (never across series).
        prev_last = np.concatenate(([0.0], last[:-1]))
        step = np.where(first >= prev_last, first - prev_last, first)
        starts = p.offsets[:-1]
        step[starts[starts < len(step)]] = 0.0
        result = window_sum(p.values, lo, hi, ok) + window_sum(
            step, lo + 1, hi, ok & (hi - lo >= 2)
        )
        # The step from the last bucket's last sample to the sample on the window's end.
        v_last = last[b]
        result += np.where(on_edge, np.where(edge >= v_last, edge - v_last, edge), 0.0)
        # Sample times (seconds): exact on an edge that holds a sample, else estimated
        # from the counts (see the module docstring).
        bucket_first = (p.timestamps[a] - width + 1).astype(np.float64) / 1000
        bucket_end = (p.timestamps[b] + 1).astype(np.float64) / 1000
        interval = (bucket_end - bucket_first) / np.maximum(n_buckets, 1)
        range_start = (m.ends - m.range_ms).astype(np.float64)[None, :] / 1000
        range_end = m.ends.astype(np.float64)[None, :] / 1000
        t_first = np.where(on_start, range_start, bucket_first + interval / 2)
        t_last = np.where(on_edge, range_end, bucket_end - interval / 2)
        to_start = t_first - range_start
        to_end = range_end - t_last
        sampled = t_last - t_first
        avg = sampled / np.maximum(n - 1, 1)
        v_first = first[a]
        clamp = (result > 0) & (v_first >= 0)
        to_zero = sampled * (v_first / result)
        to_start = np.where(clamp & (to_zero < to_start), to_zero, to_start)
        threshold = avg * 1.1
        span = sampled.copy()
        span += np.where(to_start < threshold, to_start, avg / 2)
        span += np.where(to_end < threshold, to_end, avg / 2)
        factor = span / sampled
        if is_rate:
            factor = factor / (m.range_ms / 1000)
        return result * factor, ok

    return fn


_FUNCS: dict[str, tuple[tuple[str, ...], rf.PackedFn]] = {
    "max_over_time": (("max", HEAD), _extreme(largest=True)),
    "min_over_time": (("min", HEAD), _extreme(largest=False)),
    "sum_over_time": (("sum", HEAD), _sum),
    "count_over_time": (("count", HEAD), _count),
    "avg_over_time": (("sum", "count", HEAD), _avg),
    "increase": (("increase", "first", "last", "count", HEAD), _increase(is_rate=False)),
    "rate": (("increase", "first", "last", "count", HEAD), _increase(is_rate=True)),
}


def _width_ms(m: Matrix) -> int:
    table = (m.rollup or "").split(".", 1)[0]
    width = WIDTHS_MS.get(table)
    if width is None:
        raise ExecutionError(f"BUG: cannot read rollup {m.rollup}: unknown table")
    return width


def function(name: str, m: Matrix) -> Callable[[Packed, I64, I64, Matrix], tuple[F64, Bools]]:
    """The function ``name`` over the rollup matrix ``m``; a storage that answered with
    columns other than the ones ``name`` needs is a bug, never a silent wrong answer."""
    table, _, columns = (m.rollup or "").partition(".")
    entry = _FUNCS.get(name)
    if entry is None or table not in WIDTHS_MS or tuple(columns.split("+")) != entry[0]:
        raise ExecutionError(f"BUG: cannot evaluate {name}() over rollup {m.rollup}")
    return entry[1]
