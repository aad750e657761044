from __future__ import annotations

import pytest

from shared.duration import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0),
        ("15s", 15),
        ("500ms", 0.5),
        ("1h30m", 5400),
        ("90d", 90 * 86400),
        ("3y", 3 * 365 * 86400),
        ("1w2d", 9 * 86400),
        ("1m1s1ms", 61.001),
    ],
)
def test_parses_prometheus_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "1", "1.5h", "5x", "1m1h", "1s1s", "-1s", "1 h"])
def test_rejects_what_prometheus_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="cannot parse duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (5400, "1h30m"), (0.5, "500ms"), (86400 * 8, "1w1d")]
)
def test_formats_like_prometheus(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)
