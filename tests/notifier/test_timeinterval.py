from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from notifier.timeinterval import TimeInterval


def _ti(**kw: object) -> TimeInterval:
    return TimeInterval.model_validate(kw)


def test_times_end_is_exclusive_and_24_00_ends_the_day() -> None:
    ti = _ti(times=[{"start_time": "09:00", "end_time": "17:00"}])
    assert ti.contains(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    assert ti.contains(datetime(2026, 1, 5, 16, 59, tzinfo=UTC))
    assert not ti.contains(datetime(2026, 1, 5, 17, 0, tzinfo=UTC))
    day = _ti(times=[{"start_time": "00:00", "end_time": "24:00"}])
    assert day.contains(datetime(2026, 1, 5, 23, 59, tzinfo=UTC))


def test_weekday_ranges_and_location() -> None:
    ti = _ti(
        weekdays=["monday:friday"],
        times=[{"start_time": "09:00", "end_time": "17:00"}],
        location="Europe/Berlin",
    )
    assert ti.contains(datetime(2026, 1, 5, 8, 30, tzinfo=UTC))  # Monday 09:30 in Berlin
    assert not ti.contains(datetime(2026, 1, 5, 7, 30, tzinfo=UTC))
    assert not ti.contains(datetime(2026, 1, 4, 10, 0, tzinfo=UTC))  # Sunday
    assert _ti(weekdays=["sunday"]).contains(datetime(2026, 1, 4, 10, 0, tzinfo=UTC))


def test_negative_days_of_month_count_from_the_end() -> None:
    ti = _ti(days_of_month=["-1"])
    assert ti.contains(datetime(2026, 2, 28, tzinfo=UTC))
    assert not ti.contains(datetime(2026, 2, 27, tzinfo=UTC))
    assert _ti(days_of_month=["1:3"]).contains(datetime(2026, 3, 2, tzinfo=UTC))


def test_months_and_years() -> None:
    ti = _ti(months=["december", "1:2"], years=["2026"])
    assert ti.contains(datetime(2026, 2, 1, tzinfo=UTC))
    assert not ti.contains(datetime(2026, 3, 1, tzinfo=UTC))
    assert not ti.contains(datetime(2027, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    "kw",
    [
        {"weekdays": ["friday:monday"]},
        {"weekdays": ["funday"]},
        {"days_of_month": ["0"]},
        {"days_of_month": ["5:2"]},
        {"months": ["13"]},
        {"times": [{"start_time": "10:00", "end_time": "09:00"}]},
        {"times": [{"start_time": "25:00", "end_time": "26:00"}]},
        {"location": "Mars/Olympus"},
    ],
)
def test_invalid_intervals_are_rejected(kw: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        _ti(**kw)
