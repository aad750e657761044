"""Refresh and retention planning for apache mode: pure functions, no database.

The jobs (:mod:`ingest.rollup.refresh`, :mod:`ingest.rollup.retention`) read
the dirty logs, ask these functions what to do, and do it:

- :func:`ready_cutoff`: which buckets are due. A bucket is rolled up once it
  is over and ``settle`` has passed, so the minute being written is not
  recomputed on every run; a later write marks it dirty again and it is
  recomputed then (late data is never lost, only not rushed).
- :func:`plan_batch`: one transaction's work from dirty rows: the ids to
  delete, the bucket ranges to recompute (consecutive buckets merged, in time
  order, so each range is one statement that chunk exclusion keeps to a few
  chunks) and the parent buckets (hours) to mark dirty.
- :func:`retention_cutoff`: how old a chunk must be to go, never dropping
  data a pending rollup still needs.

Times are timezone-aware UTC datetimes; buckets are aligned to the Unix epoch,
as ``time_bucket`` aligns minutes and hours.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def floor_to(ts: datetime, width: timedelta) -> datetime:
    """Start of the ``width`` bucket holding ``ts``."""
    return ts - (ts - EPOCH) % width


def ready_cutoff(now: datetime, width: timedelta, settle: timedelta) -> datetime:
    """Latest bucket start that is due: the bucket ended at least ``settle`` before ``now``."""
    return floor_to(now - width - settle, width)


@dataclass(frozen=True, slots=True)
class Batch:
    """One transaction of refresh work."""

    ids: list[int]
    """Dirty rows to delete once the ranges are recomputed."""
    ranges: list[tuple[datetime, datetime]]
    """Half-open ``[start, end)`` ranges of whole buckets, ascending, disjoint."""
    parents: list[datetime]
    """Starts of the coarser buckets containing the recomputed ones, ascending."""


def coalesce_ranges(
    starts: Iterable[datetime], width: timedelta
) -> list[tuple[datetime, datetime]]:
    """Bucket starts as ascending ``[start, end)`` ranges, adjacent buckets merged."""
    ranges: list[tuple[datetime, datetime]] = []
    for start in sorted({floor_to(s, width) for s in starts}):
        if ranges and ranges[-1][1] == start:
            ranges[-1] = (ranges[-1][0], start + width)
        else:
            ranges.append((start, start + width))
    return ranges


def plan_batch(
    rows: Sequence[tuple[int, datetime]], width: timedelta, parent: timedelta | None
) -> Batch:
    """The work for dirty ``rows`` (id, bucket start) of buckets ``width`` wide."""
    starts = [bucket for _, bucket in rows]
    parents = sorted({floor_to(s, parent) for s in starts}) if parent is not None else []
    return Batch(
        ids=sorted(row_id for row_id, _ in rows),
        ranges=coalesce_ranges(starts, width),
        parents=parents,
    )


def retention_cutoff(now: datetime, keep: timedelta, oldest_pending: datetime | None) -> datetime:
    """Drop chunks wholly older than this: ``now - keep``, or earlier while a bucket
    from before then still waits to be rolled up from this data."""
    cutoff = now - keep
    if oldest_pending is not None and oldest_pending < cutoff:
        return oldest_pending
    return cutoff


def retention_plan(
    now: datetime,
    *,
    keep_raw: timedelta,
    keep_1m: timedelta,
    keep_1h: timedelta,
    oldest_dirty_minute: datetime | None,
    oldest_dirty_hour: datetime | None,
) -> list[tuple[str, datetime]]:
    """``(hypertable, older_than)`` for ``drop_chunks``, finest first.

    Raw samples stay while a minute from before the cutoff waits to be rolled
    up; minute rows stay while an hour they feed waits (the hour of a waiting
    minute included).
    """
    pending_hours = [
        t
        for t in (
            oldest_dirty_hour,
            floor_to(oldest_dirty_minute, HOUR) if oldest_dirty_minute is not None else None,
        )
        if t is not None
    ]
    return [
        ("samples", retention_cutoff(now, keep_raw, oldest_dirty_minute)),
        ("samples_1m", retention_cutoff(now, keep_1m, min(pending_hours, default=None))),
        ("samples_1h", now - keep_1h),
    ]
