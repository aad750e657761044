"""Selectors: turn stored series into instant vectors (lookback, staleness) and range vectors.

Prometheus 2.x semantics: an instant selector at time ``t`` takes the latest sample in
``[t - lookback, t]`` unless that sample is a staleness marker; a range selector takes
every sample in ``[t - range, t]`` except staleness markers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from shared.promql.errors import ExecutionError
from shared.promql.packed import Packed
from shared.promql.storage import Series
from shared.promql.values import I64, Matrix, RangeSeries, Vector, label_key
from shared.wire import STALE_NAN_BITS


def stale_mask(values: np.ndarray) -> np.ndarray:
    return np.asarray(values.view(np.uint64) == STALE_NAN_BITS)


def dedupe(series: Sequence[Series]) -> list[Series]:
    """Series sorted by labels with duplicates (from ``or`` matcher sets) removed."""
    seen: dict[tuple[tuple[str, str], ...], Series] = {}
    for s in series:
        seen.setdefault(label_key(s.labels), s)
    return [seen[k] for k in sorted(seen)]


def instant(
    series: Sequence[Series], times: I64, lookback_ms: int, *, with_timestamps: bool = False
) -> tuple[Vector, I64 | None]:
    """The instant vector of ``series`` at each of ``times`` (already offset/``@``-adjusted)."""
    n, steps = len(series), len(times)
    values = np.zeros((n, steps))
    present = np.zeros((n, steps), dtype=bool)
    stamps = np.zeros((n, steps), dtype=np.int64) if with_timestamps else None
    for i, s in enumerate(series):
        ts = np.asarray(s.timestamps_ms, dtype=np.int64)
        if len(ts) == 0:
            continue
        vs = np.asarray(s.values, dtype=np.float64)
        idx = np.searchsorted(ts, times, side="right") - 1
        ok = idx >= 0
        safe = np.where(ok, idx, 0)
        found = ts[safe]
        ok &= found >= times - lookback_ms
        ok &= ~stale_mask(vs)[safe]
        values[i] = vs[safe]
        present[i] = ok
        if stamps is not None:
            stamps[i] = found
    return Vector([dict(s.labels) for s in series], values, present), stamps


def range_matrix(series: Sequence[Series], ends: I64, range_ms: int) -> Matrix:
    """The range vector of ``series``: windows ``[end - range, end]`` per step, markers dropped.

    The samples are packed once (``shared.promql.packed``); each ``RangeSeries`` is a
    view into the packed arrays. Series answered from a rollup (all of them or none:
    one selection has one plan) keep their bucket columns (``Matrix.rollup``).
    """
    if not series:
        return Matrix([], range_ms, ends)
    rollups = {s.rollup for s in series}
    if len(rollups) > 1:
        raise ExecutionError(
            f"BUG: cannot mix rollups in one selection: {sorted(map(str, rollups))}"
        )
    rollup = rollups.pop()
    ts = np.concatenate([np.asarray(s.timestamps_ms, dtype=np.int64) for s in series])
    vs = np.concatenate([np.asarray(s.values, dtype=np.float64) for s in series])
    sizes = np.fromiter((len(s.timestamps_ms) for s in series), dtype=np.int64, count=len(series))
    bounds = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
    extra = {}
    if rollup is not None:  # rollups hold no staleness markers: NaN are left out of them
        extra = {c: np.concatenate([s.extra[c] for s in series]) for c in series[0].extra}
    else:
        keep = ~stale_mask(vs)
        if not keep.all():
            kept = np.concatenate(([0], np.cumsum(keep))).astype(np.int64)
            ts, vs = ts[keep], vs[keep]
            bounds = kept[bounds]
    edges = bounds.tolist()
    out = [
        RangeSeries(dict(s.labels), ts[a:b], vs[a:b])
        for s, a, b in zip(series, edges[:-1], edges[1:], strict=True)
    ]
    return Matrix(out, range_ms, ends, Packed(ts, vs, bounds, extra), rollup)
