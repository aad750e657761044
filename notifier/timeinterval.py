"""Alertmanager's time intervals (``time_intervals`` / ``mute_time_intervals``).

A ``TimeInterval`` holds optional ``times``, ``weekdays``, ``days_of_month``,
``months`` and ``years``; an instant is inside it when every field that is
given contains it (a field left out contains everything), evaluated in the
interval's ``location`` (IANA name, ``Local`` or UTC by default). Ranges are
inclusive (``monday:friday``, ``1:5``), except ``times``, whose ``end_time``
is exclusive (``00:00``-``24:00`` is the whole day). ``days_of_month`` may
count from the end of the month with negative numbers (``-1`` is the last
day). A named interval is a list of such ``TimeInterval``s and contains an
instant when any of them does.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

WEEKDAYS = {
    name: i
    for i, name in enumerate(
        ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
    )
}
MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_TIME = re.compile(r"^(\d\d):(\d\d)$")


@dataclass(frozen=True, slots=True)
class Span:
    """An inclusive range of integers."""

    start: int
    end: int

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int) and self.start <= value <= self.end


_RANGE = re.compile(r"^\s*(-?\w+)\s*:\s*(-?\w+)\s*$")


def _split(text: str) -> tuple[str, str]:
    m = _RANGE.match(text)
    if m is not None:
        return m.group(1), m.group(2)
    return text.strip(), text.strip()


def _named(value: str, names: dict[str, int], what: str, lo: int, hi: int) -> int:
    key = value.lower()
    if key in names:
        return names[key]
    if key.lstrip("-").isdigit():
        number = int(key)
        if lo <= number <= hi:
            return number
    raise ValueError(f"{value!r} is not a valid {what}")


def _spans(values: Any, parse: Any) -> list[Span]:
    if not isinstance(values, list):
        raise ValueError("must be a list of strings")  # noqa: TRY004 - pydantic wants ValueError
    return [parse(str(v)) for v in values]


def _weekday(text: str) -> Span:
    a, b = _split(text)
    start = _named(a, WEEKDAYS, "weekday", -1, -1)
    end = _named(b, WEEKDAYS, "weekday", -1, -1)
    if end < start:
        raise ValueError(f"start day cannot be after end day in {text!r}")
    return Span(start, end)


def _day_of_month(text: str) -> Span:
    a, b = _split(text)
    start = _named(a, {}, "day of month", -31, 31)
    end = _named(b, {}, "day of month", -31, 31)
    if start == 0 or end == 0:
        raise ValueError(f"0 is not a valid day of the month in {text!r}")
    if (start > 0) == (end > 0) and end < start:
        raise ValueError(f"end day must be after start day in {text!r}")
    return Span(start, end)


def _month(text: str) -> Span:
    a, b = _split(text)
    start = _named(a, MONTHS, "month", 1, 12)
    end = _named(b, MONTHS, "month", 1, 12)
    if end < start:
        raise ValueError(f"end month {b!r} is before start month {a!r}")
    return Span(start, end)


def _year(text: str) -> Span:
    a, b = _split(text)
    start = _named(a, {}, "year", 1, 9999)
    end = _named(b, {}, "year", 1, 9999)
    if end < start:
        raise ValueError(f"end year {b!r} is before start year {a!r}")
    return Span(start, end)


def _minutes(text: str, *, end: bool) -> int:
    m = _TIME.match(text)
    if m is None:
        raise ValueError(f"invalid time {text!r}: expected HH:MM")
    hours, minutes = int(m.group(1)), int(m.group(2))
    total = hours * 60 + minutes
    if minutes >= 60 or total > 24 * 60 or (total == 24 * 60 and not end):
        raise ValueError(f"invalid time {text!r}")
    return total


class TimeRange(BaseModel):
    """``start_time``-``end_time`` in minutes of the day; the end is exclusive."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start_time: str
    end_time: str

    @field_validator("start_time")
    @classmethod
    def _start(cls, v: str) -> str:
        _minutes(v, end=False)
        return v

    @field_validator("end_time")
    @classmethod
    def _end(cls, v: str) -> str:
        _minutes(v, end=True)
        return v

    @property
    def span(self) -> tuple[int, int]:
        start, end = _minutes(self.start_time, end=False), _minutes(self.end_time, end=True)
        if end <= start:
            raise ValueError("end_time must be after start_time")
        return start, end


class TimeInterval(BaseModel):
    """One entry of a named interval's ``time_intervals`` list."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    times: list[TimeRange] = Field(default_factory=list)
    weekdays: list[Span] = Field(default_factory=list)
    days_of_month: list[Span] = Field(default_factory=list)
    months: list[Span] = Field(default_factory=list)
    years: list[Span] = Field(default_factory=list)
    location: str | None = None

    @field_validator("times")
    @classmethod
    def _times(cls, v: list[TimeRange]) -> list[TimeRange]:
        for t in v:
            _ = t.span
        return v

    @field_validator("weekdays", mode="before")
    @classmethod
    def _weekdays(cls, v: Any) -> list[Span]:
        return _spans(v, _weekday)

    @field_validator("days_of_month", mode="before")
    @classmethod
    def _days(cls, v: Any) -> list[Span]:
        return _spans(v, _day_of_month)

    @field_validator("months", mode="before")
    @classmethod
    def _months(cls, v: Any) -> list[Span]:
        return _spans(v, _month)

    @field_validator("years", mode="before")
    @classmethod
    def _years(cls, v: Any) -> list[Span]:
        return _spans(v, _year)

    @field_validator("location")
    @classmethod
    def _location(cls, v: str | None) -> str | None:
        if v is not None:
            _zone(v)
        return v

    def contains(self, when: datetime) -> bool:
        """Whether the aware datetime ``when`` lies inside this interval."""
        local = when.astimezone(_zone(self.location) if self.location else ZoneInfo("UTC"))
        if self.times:
            minute = local.hour * 60 + local.minute
            if not any(s <= minute < e for s, e in (t.span for t in self.times)):
                return False
        if self.weekdays:
            weekday = (local.weekday() + 1) % 7  # Python: Monday=0; Go: Sunday=0
            if not any(weekday in s for s in self.weekdays):
                return False
        if self.days_of_month and not _in_days_of_month(local, self.days_of_month):
            return False
        if self.months and not any(local.month in s for s in self.months):
            return False
        return not self.years or any(local.year in s for s in self.years)


def _in_days_of_month(local: datetime, spans: list[Span]) -> bool:
    last = calendar.monthrange(local.year, local.month)[1]
    for s in spans:
        start = s.start if s.start > 0 else last + s.start + 1
        end = s.end if s.end > 0 else last + s.end + 1
        start, end = max(start, 1), min(end, last)
        if start <= local.day <= end:
            return True
    return False


def _zone(name: str) -> tzinfo:
    if name == "Local":
        return datetime.now().astimezone().tzinfo or ZoneInfo("UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"cannot find time zone {name!r}") from exc


def any_contains(intervals: Iterable[TimeInterval], when: datetime) -> bool:
    return any(i.contains(when) for i in intervals)
