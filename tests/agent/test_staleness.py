"""The staleness state machine: disappeared series are returned, failures mark nothing."""

from __future__ import annotations

from collections.abc import Mapping

from agent.staleness import SeriesKey, StalenessTracker, series_key


def seen(*series: tuple[str, dict[str, str]]) -> dict[SeriesKey, Mapping[str, str]]:
    return {series_key(n, labels): labels for n, labels in series}


A = ("up", {"job": "a"})
B = ("up", {"job": "b"})


def test_a_series_missing_from_the_next_cycle_is_returned_once() -> None:
    t = StalenessTracker()
    assert t.observe(seen(A, B)) == []
    assert t.observe(seen(A)) == [B]
    assert t.observe(seen(A)) == []


def test_a_failed_cycle_marks_nothing_and_keeps_the_live_set() -> None:
    t = StalenessTracker()
    t.observe(seen(A, B))
    assert t.failed() == []
    assert t.observe(seen(A)) == [B]


def test_end_returns_every_live_series_and_empties_the_set() -> None:
    t = StalenessTracker()
    t.observe(seen(A, B))
    assert sorted(t.end(), key=lambda s: s[1]["job"]) == [A, B]
    assert len(t) == 0
    assert t.end() == []


def test_a_label_change_is_a_new_series_and_ends_the_old_one() -> None:
    t = StalenessTracker()
    t.observe(seen(A))
    assert t.observe(seen(("up", {"job": "a", "x": "1"}))) == [A]
