"""Refresh and retention planning, without a database."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from ingest.rollup.plan import (
    HOUR,
    MINUTE,
    coalesce_ranges,
    floor_to,
    plan_batch,
    ready_cutoff,
    retention_cutoff,
    retention_plan,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_floor_to_aligns_to_the_epoch_like_time_bucket() -> None:
    assert floor_to(at(7.5), MINUTE) == at(7)
    assert floor_to(at(59), HOUR) == T0
    assert floor_to(T0, HOUR) == T0


def test_a_bucket_is_due_once_it_ended_and_settled() -> None:
    settle = timedelta(seconds=30)
    # The 12:05 minute ends 12:06 and settles 12:06:30.
    assert ready_cutoff(at(6.5), MINUTE, settle) == at(5)
    assert ready_cutoff(at(6.49), MINUTE, settle) == at(4)
    assert ready_cutoff(at(61), HOUR, timedelta(0)) == T0
    assert ready_cutoff(at(59), HOUR, timedelta(0)) == T0 - HOUR


def test_adjacent_buckets_merge_into_ascending_ranges() -> None:
    starts = [at(5), at(3), at(4), at(4), at(9), at(10.5)]
    assert coalesce_ranges(starts, MINUTE) == [(at(3), at(6)), (at(9), at(11))]
    assert coalesce_ranges([], MINUTE) == []


def test_a_batch_deletes_every_row_it_read_and_marks_each_hour_once() -> None:
    rows = [(7, at(3)), (2, at(3)), (9, at(61)), (4, at(4))]
    batch = plan_batch(rows, MINUTE, HOUR)
    assert batch.ids == [2, 4, 7, 9]
    assert batch.ranges == [(at(3), at(5)), (at(61), at(62))]
    assert batch.parents == [T0, T0 + HOUR]
    assert plan_batch(rows, MINUTE, None).parents == []


@given(st.lists(st.integers(min_value=0, max_value=500), max_size=60))
def test_ranges_cover_exactly_the_dirty_buckets(minutes: list[int]) -> None:
    ranges = coalesce_ranges([at(m) for m in minutes], MINUTE)
    covered = {
        start + i * MINUTE for start, end in ranges for i in range(round((end - start) / MINUTE))
    }
    assert covered == {at(m) for m in minutes}
    assert all(a[1] < b[0] for a, b in itertools.pairwise(ranges))


def test_retention_keeps_raw_data_a_pending_rollup_needs() -> None:
    now = datetime(2024, 6, 1, tzinfo=UTC)
    keep = timedelta(days=15)
    assert retention_cutoff(now, keep, None) == now - keep
    assert retention_cutoff(now, keep, now - timedelta(days=20)) == now - timedelta(days=20)
    assert retention_cutoff(now, keep, now - timedelta(days=1)) == now - keep


def test_retention_plan_protects_each_level_from_its_pending_parents() -> None:
    now = datetime(2024, 6, 1, tzinfo=UTC)
    old_minute = now - timedelta(days=100, minutes=30)
    plan = dict(
        retention_plan(
            now,
            keep_raw=timedelta(days=15),
            keep_1m=timedelta(days=90),
            keep_1h=timedelta(days=1000),
            oldest_dirty_minute=old_minute,
            oldest_dirty_hour=None,
        )
    )
    assert plan == {
        "samples": old_minute,
        "samples_1m": floor_to(old_minute, HOUR),
        "samples_1h": now - timedelta(days=1000),
    }
