"""A range vector's samples packed into flat arrays, and its windows for all series at once.

``Packed`` concatenates every series' timestamps and values (series ``k`` holds the
indices ``[offsets[k], offsets[k + 1])``). ``windows`` answers, for every series and
every step, the half-open index range ``[lo, hi)`` of the samples in
``[end - range, end]`` with one ``np.searchsorted`` over the whole array: series ``k``'s
timestamps are shifted by ``k * span`` (``span`` larger than every time involved), which
makes the concatenation sorted. So the functions of ``rangefuncs`` compute a
``series x steps`` matrix with a handful of numpy calls and no per-series Python loop.

A window never crosses a series boundary: ``lo`` and ``hi`` of series ``k`` lie in
``[offsets[k], offsets[k + 1]]``, so cumulative sums and sparse tables over the packed
arrays are safe as long as they only combine indices inside one window.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from shared.promql.values import F64, I64, Bools

_KEY_LIMIT = 1 << 62


@dataclass(slots=True)
class Packed:
    timestamps: I64
    values: F64
    offsets: I64
    """``len(series) + 1`` indices: series ``k`` is ``[offsets[k], offsets[k + 1])``."""
    extra: dict[str, F64] = field(default_factory=dict)
    """Further per-point columns (rollups), packed like ``values``."""

    @staticmethod
    def of(timestamps: Sequence[I64], values: Sequence[F64]) -> Packed:
        sizes = np.fromiter((len(t) for t in timestamps), dtype=np.int64, count=len(timestamps))
        offsets = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
        if len(timestamps) == 0:
            return Packed(np.zeros(0, dtype=np.int64), np.zeros(0), offsets)
        ts = np.concatenate(timestamps).astype(np.int64, copy=False)
        vs = np.concatenate(values).astype(np.float64, copy=False)
        return Packed(ts, vs, offsets)

    @property
    def count(self) -> int:
        return len(self.offsets) - 1

    def windows(self, ends: I64, range_ms: int) -> tuple[I64, I64]:
        """Per series and step (shape ``series x steps``), ``[lo, hi)`` of ``[end - range, end]``."""
        n, steps = self.count, len(ends)
        if n == 0 or steps == 0:
            empty = np.zeros((n, steps), dtype=np.int64)
            return empty, empty.copy()
        starts = ends - range_ms
        if steps == 1 or bool((ends[1:] >= ends[:-1]).all()):
            return self._windows_by_counts(starts, ends)
        lows = [int(starts.min())]
        highs = [int(ends.max())]
        if len(self.timestamps):
            lows.append(int(self.timestamps.min()))
            highs.append(int(self.timestamps.max()))
        base, span = min(lows), max(highs) - min(lows) + 2
        if span * n >= _KEY_LIMIT:
            return self._windows_per_series(ends, range_ms)
        shift = np.arange(n, dtype=np.int64) * span
        owner = np.repeat(shift, np.diff(self.offsets))
        keys = self.timestamps - base + owner
        lo = np.searchsorted(keys, (starts - base)[None, :] + shift[:, None], side="left")
        hi = np.searchsorted(keys, (ends - base)[None, :] + shift[:, None], side="right")
        return lo.astype(np.int64, copy=False), hi.astype(np.int64, copy=False)

    def _windows_by_counts(self, starts: I64, ends: I64) -> tuple[I64, I64]:
        """``windows`` for ascending ``ends`` (every evaluation grid): counts, not searches.

        ``lo`` is the number of a series' samples before the window's start, ``hi`` the
        number up to its end (plus the series' offset). Each sample is looked up once in
        the small, ascending step arrays (the first step whose window it precedes), then
        a histogram per series and step, summed along the steps, gives the counts for
        every step: no search over all samples per step.
        """
        n, steps = self.count, len(ends)
        owner = np.repeat(np.arange(n, dtype=np.int64), np.diff(self.offsets)) * (steps + 1)
        base = self.offsets[:-1, None]

        def counts(first_step: I64) -> I64:
            hist = np.bincount(owner + first_step, minlength=n * (steps + 1))
            table = hist.astype(np.int64, copy=False).reshape(n, steps + 1)
            np.cumsum(table, axis=1, out=table)  # in place: one series x steps table
            table += base
            return np.ascontiguousarray(table[:, :steps])

        step = int(ends[1] - ends[0]) if steps > 1 else 0
        if step > 0 and bool((np.diff(ends) == step).all()):
            # An evenly spaced grid: the step of each sample by integer arithmetic.
            ts = self.timestamps
            after = np.clip((ts - int(starts[0])) // step + 1, 0, steps)
            reached = np.clip(-((int(ends[0]) - ts) // step), 0, steps)
        else:
            after = np.searchsorted(starts, self.timestamps, side="right")
            reached = np.searchsorted(ends, self.timestamps, side="left")
        return counts(after), counts(reached)

    def _windows_per_series(self, ends: I64, range_ms: int) -> tuple[I64, I64]:
        lo = np.empty((self.count, len(ends)), dtype=np.int64)
        hi = np.empty_like(lo)
        for k in range(self.count):
            a, b = int(self.offsets[k]), int(self.offsets[k + 1])
            ts = self.timestamps[a:b]
            lo[k] = np.searchsorted(ts, ends - range_ms, side="left") + a
            hi[k] = np.searchsorted(ts, ends, side="right") + a
        return lo, hi


def window_reduce(
    values: F64, lo: I64, hi: I64, ok: Bools, *, pick: Callable[[F64, F64], F64], fill: float
) -> F64:
    """``pick``-reduction (``np.fmax``, ``np.fmin``) of ``values[lo:hi]`` for every window.

    A sparse table over the packed values, only as deep as the longest window:
    ``table[j][i]`` reduces ``values[i : i + 2**j]``; a window of length ``L`` is the
    reduction of two (overlapping) entries of level ``floor(log2(L))``. Windows where
    ``ok`` is false get ``fill``.
    """
    out = np.full(lo.shape, fill)
    if not ok.any():
        return out
    length = np.where(ok, hi - lo, 1)
    longest = int(length.max())
    table = [values]
    width = 1
    while 2 * width <= longest:
        prev = table[-1]
        table.append(pick(prev[:-width], prev[width:]))
        width *= 2
    level = np.zeros(lo.shape, dtype=np.int64)
    if longest > 1:
        level = np.floor(np.log2(length)).astype(np.int64)
    for lev in np.unique(level[ok]).tolist():
        sel = ok & (level == lev)
        row = table[lev]
        out[sel] = pick(row[lo[sel]], row[hi[sel] - (1 << lev)])
    return out


def window_sum(values: F64, lo: I64, hi: I64, ok: Bools) -> F64:
    """``sum(values[lo:hi])`` for every window, added in time order (IEEE: NaN, ±Inf kept).

    Windows where ``ok`` is false answer 0; where it is true, ``lo < hi`` must hold
    (``reduceat`` answers ``values[lo]`` for an empty window).

    ``np.add.reduceat`` over the interleaved bounds ``lo0, hi0, lo1, hi1, ...``: the
    even results are the windows (the odd ones, between windows, are discarded). Its
    cost is the total length of the windows; no cumulative sum runs across series,
    so a large series cannot cost a small one its precision.
    """
    out = np.zeros(lo.shape)
    if not ok.any() or len(values) == 0:
        return out
    a, b = lo[ok], hi[ok]
    ext = np.append(values, 0.0)  # ``hi`` may be len(values): keep it a valid index
    bounds = np.empty(2 * len(a), dtype=np.int64)
    bounds[0::2], bounds[1::2] = a, b
    out[ok] = np.add.reduceat(ext, bounds)[0::2]
    return out
