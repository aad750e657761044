"""Range functions over rollup buckets (``Matrix.rollup``) instead of raw samples.

A storage may answer a range selector from per-bucket aggregates when the
evaluation allows it (``SelectHints``: range, step and end whole buckets). Each
point is then one bucket of width ``W``: its timestamp is the bucket's last
instant (``start + W - 1 ms``), ``values`` holds the first column the storage
names in ``Matrix.rollup`` (``"<table>.<col>+<col>..."``) and ``Packed.extra``
the others. A window ``[t - range, t]`` holds exactly the buckets that start in
``[t - range, t)``.

What each function reads, and how close it is to Prometheus over the raw samples:

- ``max``/``min``/``sum_over_time``: ``max``/``min``/``sum``, reduced like samples.
- ``count_over_time``: the sum of ``count``; ``avg_over_time``: ``sum`` / ``count``.
  These five are exact up to the window edges: a raw window includes a sample lying
  exactly on ``t`` (rollups put it in the next bucket), and NaN samples are left out
  of rollups (a raw ``max_over_time`` over NaN may answer NaN).
- ``increase``/``rate``: the counter-reset-adjusted increase of the window is exact:
  the buckets' ``increase`` plus the step from each bucket's ``last`` to the next
  one's ``first`` (``vigil_counter_step``: ``cur - prev``, or ``cur`` after a reset).
  Prometheus then extrapolates to the window's edges from the first and last sample
  *times*, which rollups do not keep. They are estimated from the counts: the ``n``
  samples are taken as evenly spread over the buckets holding data (from the start
  of the first to the end of the last, span ``C``), interval ``I = C / n``, first
  sample ``I / 2`` after the first bucket's start, last ``I / 2`` before the last
  one's end; Prometheus' formula (threshold ``1.1 * I``, zero clamp with the first
  bucket's ``first``) runs on these times. For samples at a regular interval that
  divides the bucket, covering the window, this equals Prometheus exactly (both give
  ``increase * n / (n - 1)`` when a window holds ``n`` samples); jitter, gaps and
  series starting or stopping inside a window make it an estimate. That is why the
  storage serves these two only when asked to (``rollup_funcs``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from shared.promql import rangefuncs as rf
from shared.promql.errors import ExecutionError
from shared.promql.packed import Packed, window_sum
from shared.promql.values import F64, I64, Bools, Matrix

_WIDTHS_MS = {"samples_1m": 60_000, "samples_1h": 3_600_000}


def _count(p: Packed, lo: I64, hi: I64, m: Matrix) -> tuple[F64, Bools]:
    ok = hi - lo >= 1
    return window_sum(p.values, lo, hi, ok), ok


def _avg(p: Packed, lo: I64, hi: I64, m: Matrix) -> tuple[F64, Bools]:
    ok = hi - lo >= 1
    return window_sum(p.values, lo, hi, ok) / window_sum(p.extra["count"], lo, hi, ok), ok


def _increase(is_rate: bool) -> rf.PackedFn:
    def fn(p: Packed, lo: I64, hi: I64, m: Matrix) -> tuple[F64, Bools]:
        width = _width_ms(m)
        first, last, count = p.extra["first"], p.extra["last"], p.extra["count"]
        has = hi - lo >= 1
        n = window_sum(count, lo, hi, has)
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
        # Estimated sample times (seconds), see the module docstring.
        bucket_first = (p.timestamps[a] - width + 1).astype(np.float64) / 1000
        bucket_end = (p.timestamps[b] + 1).astype(np.float64) / 1000
        interval = (bucket_end - bucket_first) / np.maximum(n, 1)
        t_first = bucket_first + interval / 2
        t_last = bucket_end - interval / 2
        range_start = (m.ends - m.range_ms).astype(np.float64)[None, :] / 1000
        range_end = m.ends.astype(np.float64)[None, :] / 1000
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
    "max_over_time": (("max",), rf.extreme_over_time(largest=True)),
    "min_over_time": (("min",), rf.extreme_over_time(largest=False)),
    "sum_over_time": (("sum",), rf.sum_over_time),
    "count_over_time": (("count",), _count),
    "avg_over_time": (("sum", "count"), _avg),
    "increase": (("increase", "first", "last", "count"), _increase(is_rate=False)),
    "rate": (("increase", "first", "last", "count"), _increase(is_rate=True)),
}


def _width_ms(m: Matrix) -> int:
    table = (m.rollup or "").split(".", 1)[0]
    width = _WIDTHS_MS.get(table)
    if width is None:
        raise ExecutionError(f"BUG: cannot read rollup {m.rollup}: unknown table")
    return width


def function(name: str, m: Matrix) -> Callable[[Packed, I64, I64, Matrix], tuple[F64, Bools]]:
    """The function ``name`` over the rollup matrix ``m``; a storage that answered with
    columns other than the ones ``name`` needs is a bug, never a silent wrong answer."""
    table, _, columns = (m.rollup or "").partition(".")
    entry = _FUNCS.get(name)
    if entry is None or table not in _WIDTHS_MS or tuple(columns.split("+")) != entry[0]:
        raise ExecutionError(f"BUG: cannot evaluate {name}() over rollup {m.rollup}")
    return entry[1]
