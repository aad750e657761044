"""SLA report: availability, error budget and downtime of 0/1 series over periods.

Definition (docs/reports.md says it for users)
    A series is a probe's or a target's result over time: 1 (or any value
    >= 0.5) is up, 0 is down. Each sample counts from its own time until the
    next sample, but for at most ``max_gap``; what no sample covers is a gap
    without data, and so is the time after a NaN (a staleness marker: the
    series ended). Time before the series' first sample in the period is not
    monitored and counts nowhere. With ``gaps_down`` (the default) gaps count
    as downtime, else they are left out.

    availability = up / (up + down [+ gaps])

    The error budget of a period is ``(1 - objective)`` of the time counted;
    what is left is the budget minus the downtime (negative: overspent).
    Downtime intervals are maximal runs of time that counted as down (a down
    sample's coverage or a gap), adjacent runs joined.

Sources
    Periods up to ``RAW_MAX_MS`` read raw samples. Longer ones read rollups
    (``samples_1m`` up to ``MINUTE_MAX_MS``, else ``samples_1h``) whose bucket
    mean (sum / count: the fraction of samples that were up, for a 0/1
    series) counts for the whole bucket (and until the next bucket when that
    comes within ``max_gap``), then raw samples for the last
    ``FRESH_MS`` that the rollup jobs may not have reached yet. A bucket with
    a mean below 1 is a downtime interval one bucket wide whose ``down``
    is its share of the bucket.

:func:`availability` is the arithmetic, pure; :func:`sla_report` reads and
assembles. JSON and CSV both render :func:`summary_rows` (web/reports/export.py).
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from shared.promql.rollupfuncs import WIDTHS_MS
from shared.promql.storage import LabelMatcher
from web.reports.data import (
    Database,
    Points,
    SeriesRef,
    find_series,
    raw_points,
    rollup_points,
)
from web.reports.periods import DAY_MS, Period

RAW_MAX_MS = 2 * DAY_MS
MINUTE_MAX_MS = 8 * DAY_MS
FRESH_MS = 2 * 3_600_000
"""Raw samples are read for the last two hours of a rollup-backed period."""
MAX_SERIES = 500
MAX_INTERVALS = 1000
"""Downtime intervals returned per series and period (the latest ones)."""


@dataclass(frozen=True, slots=True)
class Downtime:
    """A run of time counted as down: ``[start_ms, end_ms)``, of which ``down_ms`` was down."""

    start_ms: int
    end_ms: int
    down_ms: float
    reason: str
    """``down`` (samples said so), ``no data`` (a gap) or ``down, no data``."""


@dataclass(frozen=True, slots=True)
class Availability:
    up_ms: float
    down_ms: float
    """Time covered by samples that said down."""
    gap_ms: float
    """Time without data after monitoring began."""
    unmonitored_ms: float
    """Time before the first sample."""
    gaps_down: bool
    downtime: list[Downtime] = field(default_factory=list)

    @property
    def counted_ms(self) -> float:
        return self.up_ms + self.down_ms + (self.gap_ms if self.gaps_down else 0.0)

    @property
    def downtime_ms(self) -> float:
        return self.down_ms + (self.gap_ms if self.gaps_down else 0.0)

    @property
    def ratio(self) -> float | None:
        """up / counted time; None when nothing was counted."""
        counted = self.counted_ms
        return self.up_ms / counted if counted > 0 else None


def availability(
    times_ms: npt.ArrayLike,
    up: npt.ArrayLike,
    cap_ms: npt.ArrayLike,
    start_ms: int,
    end_ms: int,
    *,
    bridge_ms: npt.ArrayLike | None = None,
    gaps_down: bool = True,
) -> Availability:
    """Time-weighted availability over ``[start_ms, end_ms)``.

    ``times_ms`` ascending; ``up`` the fraction up at each point (0..1, NaN for
    no data). A point counts until the next one when that comes within
    ``bridge_ms``, else for ``cap_ms`` (scalars or one per point; ``bridge_ms``
    defaults to ``cap_ms``: a raw sample holds until the next for at most the
    max gap; a rollup bucket bridges to the next within the max gap, else
    covers its own width). Points before ``start_ms`` count for their overlap.
    """
    t = np.asarray(times_ms, dtype=np.int64)
    u = np.asarray(up, dtype=np.float64)
    cap = np.broadcast_to(np.asarray(cap_ms, dtype=np.int64), t.shape)
    bridge = cap if bridge_ms is None else np.broadcast_to(np.asarray(bridge_ms, np.int64), t.shape)
    keep = t < end_ms
    t, u, cap, bridge = t[keep], u[keep], cap[keep], bridge[keep]
    span = float(end_ms - start_ms)
    if len(t) == 0:
        return Availability(0.0, 0.0, 0.0, span, gaps_down)
    nxt = np.minimum(np.append(t[1:], end_ms), end_ms)
    valid = ~np.isnan(u)
    reach = np.where(nxt - t <= bridge, nxt, np.minimum(t + cap, nxt))
    cover_end = np.where(valid, reach, t)
    a, b = np.clip(t, start_ms, end_ms), np.clip(cover_end, start_ms, end_ms)
    dur = (b - a).astype(np.float64)
    frac = np.where(valid, np.clip(u, 0.0, 1.0), 1.0)
    lost = dur * (1.0 - frac)
    ga, gb = b, np.clip(nxt, start_ms, end_ms)
    gap = (gb - ga).astype(np.float64)
    unmonitored = float(a[0] - start_ms)

    # Segments in time order: each point's coverage, then the gap after it.
    starts = np.stack([a, ga], axis=1).ravel()
    ends = np.stack([b, gb], axis=1).ravel()
    down = np.stack([lost, gap if gaps_down else np.zeros_like(gap)], axis=1).ravel()
    kind = np.tile(np.array([0, 1]), len(t))
    intervals: list[Downtime] = []
    cur: list[Any] | None = None
    for i in np.flatnonzero(down > 0).tolist():
        s, e, d, k = int(starts[i]), int(ends[i]), float(down[i]), int(kind[i])
        if cur is not None and s <= cur[1]:
            cur[1], cur[2] = max(cur[1], e), cur[2] + d
            cur[3].add(k)
            continue
        if cur is not None:
            intervals.append(_downtime(cur))
        cur = [s, e, d, {k}]
    if cur is not None:
        intervals.append(_downtime(cur))
    return Availability(
        up_ms=float((dur * frac).sum()),
        down_ms=float(lost.sum()),
        gap_ms=float(gap.sum()),
        unmonitored_ms=unmonitored,
        gaps_down=gaps_down,
        downtime=intervals,
    )


def _downtime(cur: list[Any]) -> Downtime:
    reasons = ", ".join(r for k, r in ((0, "down"), (1, "no data")) if k in cur[3])
    return Downtime(cur[0], cur[1], cur[2], reasons)


def source_plan(period: Period, now_ms: int) -> tuple[str | None, int]:
    """(rollup table or None, the time from which raw samples are read)."""
    if period.span_ms <= RAW_MAX_MS:
        return None, period.start_ms
    table = "samples_1m" if period.span_ms <= MINUTE_MAX_MS else "samples_1h"
    width = WIDTHS_MS[table]
    cut = (min(period.end_ms, now_ms) - FRESH_MS) // width * width
    if cut <= period.start_ms:
        return None, period.start_ms
    return table, min(cut, period.end_ms)


def _as_up(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.where(np.isnan(values), np.nan, (values >= 0.5).astype(np.float64))


@dataclass(frozen=True, slots=True)
class PeriodResult:
    period: Period
    source: str
    """``raw``, or ``samples_1m+raw`` / ``samples_1h+raw``."""
    result: Availability


@dataclass(frozen=True, slots=True)
class TargetReport:
    series: SeriesRef
    periods: list[PeriodResult]


@dataclass(frozen=True, slots=True)
class SlaReport:
    objective: float
    max_gap_ms: int
    gaps_down: bool
    periods: list[Period]
    targets: list[TargetReport]


async def _period(
    db: Database, ids: list[int], period: Period, *, now_ms: int, max_gap_ms: int, gaps_down: bool
) -> tuple[str, dict[int, Availability]]:
    table, raw_from = source_plan(period, now_ms)
    rolled: dict[int, Points] = {}
    if table is not None:
        width = WIDTHS_MS[table]
        rolled = await rollup_points(db, table, ids, period.start_ms // width * width, raw_from)
        raw = await raw_points(db, ids, raw_from, period.end_ms)
    else:
        raw = await raw_points(db, ids, period.start_ms - max_gap_ms, period.end_ms)
    out: dict[int, Availability] = {}
    empty = (np.zeros(0, np.int64), np.zeros(0, np.float64))
    for sid in ids:
        rt, rv = rolled.get(sid, empty)
        st, sv = raw.get(sid, empty)
        width = WIDTHS_MS[table] if table else 0
        times = np.concatenate([rt, st])
        up = np.concatenate([np.clip(rv, 0.0, 1.0), _as_up(sv)])
        cap = np.concatenate([np.full(len(rt), width), np.full(len(st), max_gap_ms)])
        bridge = np.concatenate(
            [np.full(len(rt), max(width, max_gap_ms)), np.full(len(st), max_gap_ms)]
        )
        res = availability(
            times,
            up,
            cap,
            period.start_ms,
            period.end_ms,
            bridge_ms=bridge,
            gaps_down=gaps_down,
        )
        out[sid] = res
    return (f"{table}+raw" if table else "raw"), out


async def sla_report(
    db: Database,
    matcher_sets: Sequence[Sequence[LabelMatcher]],
    periods: Sequence[Period],
    *,
    objective: float,
    max_gap_ms: int,
    gaps_down: bool,
    now_ms: int,
) -> SlaReport:
    """Every matching series over every period (periods are read concurrently)."""
    series = await find_series(db, matcher_sets, MAX_SERIES)
    ids = [s.id for s in series]
    done = await asyncio.gather(
        *(
            _period(db, ids, p, now_ms=now_ms, max_gap_ms=max_gap_ms, gaps_down=gaps_down)
            for p in periods
        )
    )
    targets = [
        TargetReport(
            s,
            [PeriodResult(p, src, res[s.id]) for p, (src, res) in zip(periods, done, strict=True)],
        )
        for s in series
    ]
    return SlaReport(objective, max_gap_ms, gaps_down, list(periods), targets)


def series_key(series: SeriesRef) -> str:
    """The series' identity as text, ``metric{name="value",...}`` with names sorted and
    values quoted as JSON strings: the same for the same series whatever the report's
    order, so a link can name the target it shows."""
    inner = ",".join(
        f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in sorted(series.labels.items())
    )
    return f"{series.metric}{{{inner}}}"


def target_name(series: SeriesRef) -> str:
    """``instance``, else ``job``, else the labels: what a person calls the target."""
    labels = series.labels
    for key in ("instance", "job"):
        if labels.get(key):
            return labels[key]
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{series.metric}{{{inner}}}"


def summary_rows(report: SlaReport) -> list[dict[str, Any]]:
    """One row per series and period: the numbers both the JSON and the CSV carry."""
    rows: list[dict[str, Any]] = []
    for index, target in enumerate(report.targets):
        for pr in target.periods:
            r = pr.result
            ratio = r.ratio
            budget = (1.0 - report.objective) * r.counted_ms
            left = budget - r.downtime_ms
            rows.append(
                {
                    "target_index": index,
                    "target": target_name(target.series),
                    "period": pr.period.name,
                    "start": pr.period.start_ms / 1000,
                    "end": pr.period.end_ms / 1000,
                    "source": pr.source,
                    "availability": ratio,
                    "objective": report.objective,
                    "met": None if ratio is None else ratio >= report.objective,
                    "up_seconds": r.up_ms / 1000,
                    "down_seconds": r.down_ms / 1000,
                    "no_data_seconds": r.gap_ms / 1000,
                    "unmonitored_seconds": r.unmonitored_ms / 1000,
                    "budget_seconds": budget / 1000,
                    "budget_left_seconds": left / 1000,
                    "budget_left": left / budget if budget > 0 else None,
                    "downtime_intervals": len(r.downtime),
                }
            )
    return rows


def downtime_rows(report: SlaReport) -> list[dict[str, Any]]:
    """One row per downtime interval (the latest ``MAX_INTERVALS`` per series and period)."""
    rows: list[dict[str, Any]] = []
    for index, target in enumerate(report.targets):
        for pr in target.periods:
            rows.extend(
                {
                    "target_index": index,
                    "target": target_name(target.series),
                    "period": pr.period.name,
                    "start": d.start_ms / 1000,
                    "end": d.end_ms / 1000,
                    "duration_seconds": (d.end_ms - d.start_ms) / 1000,
                    "down_seconds": d.down_ms / 1000,
                    "reason": d.reason,
                }
                for d in pr.result.downtime[-MAX_INTERVALS:]
            )
    return rows


def finite(value: float | None) -> float | None:
    """None for NaN and infinities, which JSON cannot carry."""
    return value if value is not None and math.isfinite(value) else None
