"""Capacity report: filesystems and memory, a linear trend, the projected date full.

For every filesystem (``node_filesystem_avail_bytes`` paired with
``node_filesystem_size_bytes`` of the same labels; pseudo filesystems such as
tmpfs left out) and every host's memory (``node_memory_MemAvailable_bytes``
with ``node_memory_MemTotal_bytes``):

- the trend is a least-squares line through the rollup buckets of the
  available bytes over the lookback: ``samples_1h`` when the lookback is at
  least ``HOURLY_MIN_MS``, else (or when hours give fewer than 3 points)
  ``samples_1m``; each complete bucket is one point at its middle with the
  bucket's mean, which is exact for a linear series;
- current usage is the latest raw sample (the last bucket when raw data
  has expired);
- ``days_left = available / consumption per day`` from the current value,
  so a clean-up shows at once; ``full_at`` is now plus that.

Status: ``full`` (nothing available), ``filling`` (a date), ``never`` (the
trend is flat, improving, or not significant: the slope is within two
standard errors of 0, or moves less than a millionth of the size over the
lookback), ``unknown`` (fewer than 3 points). Items are sorted by urgency:
full, then filling soonest first, then never, then unknown; ties by usage.

Stale: a filesystem or memory whose newest sample is older than
``stale_after_ms`` (the router passes ``visualization.query_lookback_delta``,
the age past which an instant query no longer returns a series: a host that
stopped reporting) is not projected, since its last value says nothing about
now. It gets the status ``stale`` and goes to the report's separate ``stale``
list, newest first, never among the urgent ones.

:func:`linear_trend` and :func:`projection` are the arithmetic, pure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from shared.promql.rollupfuncs import WIDTHS_MS
from web.reports.data import (
    Database,
    Points,
    SeriesRef,
    find_pairs,
    last_values,
    rollup_points,
)
from web.reports.periods import DAY_MS

HOURLY_MIN_MS = 2 * DAY_MS
MIN_POINTS = 3
MAX_CHART_POINTS = 400
PSEUDO_FSTYPES = "tmpfs|ramfs|devtmpfs|overlay|squashfs|nsfs|proc|sysfs|autofs|fuse\\..*"


@dataclass(frozen=True, slots=True)
class Trend:
    """``value(t) = intercept + slope_per_ms * (t - t0_ms)``, fitted on ``n`` points."""

    t0_ms: float
    intercept: float
    slope_per_ms: float
    stderr_per_ms: float
    n: int

    def at(self, t_ms: float) -> float:
        return self.intercept + self.slope_per_ms * (t_ms - self.t0_ms)


def linear_trend(times_ms: npt.ArrayLike, values: npt.ArrayLike) -> Trend | None:
    """Least squares over finite points (times centred for precision); None under 3 points."""
    t = np.asarray(times_ms, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(t) & np.isfinite(y)
    t, y = t[ok], y[ok]
    n = len(t)
    if n < MIN_POINTS:
        return None
    t0 = float(t.mean())
    dx = t - t0
    sxx = float((dx * dx).sum())
    if sxx == 0:
        return None
    mean = float(y.mean())
    slope = float((dx * (y - mean)).sum()) / sxx
    resid = y - (mean + slope * dx)
    stderr = math.sqrt(float((resid * resid).sum()) / (n - 2) / sxx) if n > 2 else math.inf
    return Trend(t0, mean, slope, stderr, n)


@dataclass(frozen=True, slots=True)
class Projection:
    status: str
    """``full``, ``filling``, ``never``, ``unknown`` or ``stale``."""
    full_at_ms: float | None
    days_left: float | None
    growth_per_day: float | None
    """Consumption: how much the available amount shrinks per day (negative: it grows)."""


def projection(
    trend: Trend | None, available: float, size: float, now_ms: int, span_ms: float
) -> Projection:
    """When ``available`` reaches 0 at the trend's pace, from ``now_ms``."""
    if available <= 0:
        growth = -trend.slope_per_ms * DAY_MS if trend else None
        return Projection("full", float(now_ms), 0.0, growth)
    if trend is None:
        return Projection("unknown", None, None, None)
    growth = -trend.slope_per_ms * DAY_MS
    consuming = -trend.slope_per_ms
    flat = consuming * span_ms < 1e-6 * max(size, available)
    insignificant = consuming < 2 * trend.stderr_per_ms
    if consuming <= 0 or flat or insignificant:
        return Projection("never", None, None, growth)
    left_ms = available / consuming
    return Projection("filling", now_ms + left_ms, left_ms / DAY_MS, growth)


@dataclass(frozen=True, slots=True)
class Item:
    kind: str
    """``filesystem`` or ``memory``."""
    labels: dict[str, str]
    size: float | None
    available: float | None
    source: str
    trend: Trend | None
    projection: Projection
    points: Points
    last_seen_ms: int
    """Time of the newest sample of the available amount (raw, else the last bucket's end)."""

    @property
    def used_ratio(self) -> float | None:
        if self.size is None or self.available is None or self.size <= 0:
            return None
        return 1.0 - self.available / self.size


_ORDER = {"full": 0, "filling": 1, "never": 2, "unknown": 3, "stale": 4}


def urgency(item: Item) -> tuple[int, float, float]:
    """Sort key: status, then time left, then usage (fuller first)."""
    p = item.projection
    return (_ORDER[p.status], p.full_at_ms or math.inf, -(item.used_ratio or 0.0))


async def _trend_points(
    db: Database, ids: list[int], lookback_ms: int, now_ms: int
) -> dict[int, tuple[str, Points]]:
    """Complete rollup buckets of the lookback, as (table, (bucket middles, means))."""
    out: dict[int, tuple[str, Points]] = {}
    tables = ["samples_1h", "samples_1m"] if lookback_ms >= HOURLY_MIN_MS else ["samples_1m"]
    for table in tables:
        todo = [i for i in ids if i not in out]
        if not todo:
            break
        width = WIDTHS_MS[table]
        start = -(-(now_ms - lookback_ms) // width) * width
        end = now_ms // width * width  # buckets that ended by now
        got = await rollup_points(db, table, todo, start, end)
        for sid, (t, v) in got.items():
            if len(t) >= MIN_POINTS or table == tables[-1]:
                out[sid] = (table, (t + width // 2, v))
    return out


def stale_projection(trend: Trend | None) -> Projection:
    """No date for a series that stopped reporting; the growth it had, for the record."""
    return Projection("stale", None, None, -trend.slope_per_ms * DAY_MS if trend else None)


@dataclass(frozen=True, slots=True)
class CapacityReport:
    items: list[Item]
    """Series still reporting, sorted by :func:`urgency`."""
    stale: list[Item]
    """Series whose newest sample is older than ``stale_after_ms``, newest first."""
    stale_after_ms: int


async def capacity_report(
    db: Database, *, lookback_ms: int, now_ms: int, kinds: frozenset[str], stale_after_ms: int
) -> CapacityReport:
    """Every filesystem and memory of ``kinds`` seen in the lookback: live ones by urgency,
    stale ones apart."""
    pairs: list[tuple[str, SeriesRef, SeriesRef]] = []
    if "filesystem" in kinds:
        found = await find_pairs(
            db,
            "node_filesystem_avail_bytes",
            "node_filesystem_size_bytes",
            {"fstype": PSEUDO_FSTYPES},
        )
        pairs += [("filesystem", a, s) for a, s in found]
    if "memory" in kinds:
        found = await find_pairs(db, "node_memory_MemAvailable_bytes", "node_memory_MemTotal_bytes")
        pairs += [("memory", a, s) for a, s in found]
    avail_ids = [a.id for _, a, _ in pairs]
    every = avail_ids + [s.id for _, _, s in pairs]
    latest = await last_values(db, every, now_ms - lookback_ms, now_ms)
    trends = await _trend_points(db, avail_ids, lookback_ms, now_ms)
    empty: Points = (np.zeros(0, np.int64), np.zeros(0, np.float64))
    items: list[Item] = []
    stale: list[Item] = []
    for kind, avail, size in pairs:
        table, (t, v) = trends.get(avail.id, ("none", empty))
        current = latest.get(avail.id)
        total = latest.get(size.id)
        size_value = total[1] if total else None
        if current:
            seen_ms, available = current
        elif len(v):  # raw samples expired: the last bucket (t is its middle)
            seen_ms, available = int(t[-1]) + WIDTHS_MS[table] // 2, float(v[-1])
        else:
            continue  # nothing in the lookback: not a live filesystem
        trend = linear_trend(t, v)
        if now_ms - seen_ms > stale_after_ms:
            proj = stale_projection(trend)
        else:
            proj = projection(trend, available, size_value or 0.0, now_ms, float(lookback_ms))
        item = Item(kind, avail.labels, size_value, available, table, trend, proj, (t, v), seen_ms)
        (stale if proj.status == "stale" else items).append(item)
    items.sort(key=urgency)
    stale.sort(key=lambda i: -i.last_seen_ms)
    return CapacityReport(items, stale, stale_after_ms)


def item_json(item: Item) -> dict[str, Any]:
    """One item as the API answers it (times in epoch seconds, amounts in bytes)."""
    t, v = item.points
    step = max(1, -(-len(t) // MAX_CHART_POINTS))
    p = item.projection
    trend = item.trend
    return {
        "kind": item.kind,
        "labels": item.labels,
        "size_bytes": item.size,
        "available_bytes": item.available,
        "used_ratio": item.used_ratio,
        "status": p.status,
        "full_at": None if p.full_at_ms is None else p.full_at_ms / 1000,
        "days_left": p.days_left,
        "growth_bytes_per_day": p.growth_per_day,
        "source": item.source,
        "last_seen": item.last_seen_ms / 1000,
        "trend": None
        if trend is None
        else {
            "points": trend.n,
            "slope_bytes_per_day": trend.slope_per_ms * DAY_MS,
            "stderr_bytes_per_day": trend.stderr_per_ms * DAY_MS,
            "t0": trend.t0_ms / 1000,
            "value_at_t0": trend.intercept,
        },
        "history": [
            [ts / 1000, val] for ts, val in zip(t[::step].tolist(), v[::step].tolist(), strict=True)
        ],
    }
