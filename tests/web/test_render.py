"""Rendering values and timestamps the way Prometheus' JSON does, and request parameters."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from shared.promql.errors import BadData
from shared.promql.result import Result, Sample, SeriesResult
from tests.web.conftest import float_from_bits
from web.params import parse_duration_ms, parse_selector, parse_time
from web.render import format_timestamp, format_value, format_values, render_result


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1"),
        (0.1, "0.1"),
        (-2.5, "-2.5"),
        (1e21, "1000000000000000000000"),
        (1e-7, "0.0000001"),
        (123456789012345680.0, "123456789012345680"),
        (5e-324, "0." + "0" * 323 + "5"),
        (-0.0, "-0"),
        (0.0, "0"),
        (math.nan, "NaN"),
        (float_from_bits(0x7FF0000000000002), "NaN"),  # the staleness marker
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (1 / 3, "0.3333333333333333"),
    ],
)
def test_format_value_is_go_strconv_f_minus_1(value: float, text: str) -> None:
    assert format_value(value) == text


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_format_value_round_trips_without_exponent(value: float) -> None:
    text = format_value(value)
    assert "e" not in text
    assert float(text) == value


@given(
    st.lists(st.floats(), max_size=60)
    | st.lists(st.sampled_from([0.0, -0.0, 1.0, 0.5, 1e20, math.nan]), max_size=60)
)
@example([0.0] * 20 + [-0.0])
@example([1.0] * 40)
def test_format_values_equals_format_value_elementwise(values: list[float]) -> None:
    arr = np.array(values, dtype=np.float64)
    assert format_values(arr) == [format_value(v) for v in values]


@pytest.mark.parametrize(
    ("t_ms", "text"),
    [
        (1_700_000_000_000, "1700000000"),
        (1_700_000_000_500, "1700000000.500"),
        (1_700_000_000_007, "1700000000.007"),
        (-1_500, "-1.500"),
        (0, "0"),
    ],
)
def test_format_timestamp_like_prometheus(t_ms: int, text: str) -> None:
    assert format_timestamp(t_ms) == text


def test_matrix_with_gaps_and_empty_series() -> None:
    ts = np.array([1000, 2000, 4000], dtype=np.int64)
    r = Result(
        "matrix",
        matrix=[
            SeriesResult({"a": "1"}, ts, np.array([1.0, math.nan, 2.5])),
            SeriesResult({"a": "2"}, ts[:2], np.array([3.0, 3.0])),
            SeriesResult({"a": "3"}, ts[:0], np.array([], dtype=np.float64)),
        ],
    )
    assert render_result(r) == (
        '{"resultType":"matrix","result":['
        '{"metric":{"a":"1"},"values":[[1,"1"],[2,"NaN"],[4,"2.5"]]},'
        '{"metric":{"a":"2"},"values":[[1,"3"],[2,"3"]]},'
        '{"metric":{"a":"3"},"values":[]}]}'
    )


def test_vector_escapes_label_values() -> None:
    r = Result("vector", vector=[Sample({"v": 'q"\\\n✓'}, 1000, 1.0)])
    assert render_result(r) == (
        '{"resultType":"vector","result":[{"metric":{"v":"q\\"\\\\\\n✓"},"value":[1,"1"]}]}'
    )


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("1700000000", 1_700_000_000_000),
        ("1700000000.123", 1_700_000_000_123),
        ("1.7e9", 1_700_000_000_000),
        ("2023-11-14T22:13:20Z", 1_700_000_000_000),
        ("2023-11-14T22:13:20.123456789Z", 1_700_000_000_123),
        ("2023-11-14T23:13:20+01:00", 1_700_000_000_000),
        ("-1.5", -1_500),
    ],
)
def test_parse_time(text: str, ms: int) -> None:
    assert parse_time("time", text) == ms


@pytest.mark.parametrize("text", ["", "now", "2023-11-14", "2023-11-14T22:13:20", "nan", "1_000"])
def test_parse_time_rejects(text: str) -> None:
    with pytest.raises(
        BadData, match=r'invalid parameter "time": cannot parse ".*" to a valid timestamp'
    ):
        parse_time("time", text)


@pytest.mark.parametrize(
    ("text", "ms"),
    [("15", 15_000), ("0.5", 500), ("1m30s", 90_000), ("2h", 7_200_000), ("100ms", 100)],
)
def test_parse_duration(text: str, ms: int) -> None:
    assert parse_duration_ms("step", text) == ms


def test_parse_duration_overflow_message() -> None:
    with pytest.raises(BadData, match="It overflows int64"):
        parse_duration_ms("step", "1e300")


def test_selector_with_name_and_or_alternatives() -> None:
    sets = parse_selector('up{a="x" or b=~"y.*"}')
    assert [[(m.name, m.op, m.value) for m in s] for s in sets] == [
        [("__name__", "=", "up"), ("a", "=", "x")],
        [("__name__", "=", "up"), ("b", "=~", "y.*")],
    ]
    with pytest.raises(BadData, match="expected a series selector"):
        parse_selector("sum(up)")
