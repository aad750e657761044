"""Engine behaviour with hand-computed expectations: errors, limits, step alignment, results."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shared.promql.engine import Engine
from shared.promql.errors import BadData, ExecutionError, QueryTimeout, TooManySamples
from shared.promql.memory import MemoryStorage
from shared.wire import STALE_NAN


def _storage() -> MemoryStorage:
    st = MemoryStorage()
    for i in range(11):  # every 60 s, 0..600 s
        st.add({"__name__": "up", "job": "a"}, i * 60_000, 1.0)
        st.add({"__name__": "up", "job": "b"}, i * 60_000, float(i % 2))
        st.add({"__name__": "req_total", "job": "a"}, i * 60_000, 10.0 * i)
    return st


@pytest.fixture
def engine() -> Engine:
    return Engine(_storage())


async def test_parse_error_is_bad_data_with_the_parser_message(engine: Engine) -> None:
    with pytest.raises(BadData, match="unclosed left parenthesis"):
        await engine.instant("sum(up", 0)


async def test_holt_winters_is_bad_data_because_the_parser_does_not_know_it(
    engine: Engine,
) -> None:
    with pytest.raises(BadData, match="holt_winters"):
        await engine.instant("holt_winters(up[5m], 0.5, 0.5)", 600_000)


async def test_range_query_of_a_range_vector_is_bad_data(engine: Engine) -> None:
    with pytest.raises(BadData, match="range vector"):
        await engine.range("up[5m]", 0, 600_000, 60_000)


async def test_range_query_rejects_non_positive_step(engine: Engine) -> None:
    with pytest.raises(BadData):
        await engine.range("up", 0, 600_000, 0)


async def test_range_steps_start_at_start_and_stop_at_or_before_end(engine: Engine) -> None:
    result = await engine.range('up{job="a"}', 10_000, 200_000, 45_000)
    assert result.kind == "matrix"
    assert result.matrix[0].timestamps_ms.tolist() == [10_000, 55_000, 100_000, 145_000, 190_000]


async def test_range_result_is_sorted_by_labels(engine: Engine) -> None:
    result = await engine.range("up", 0, 120_000, 60_000)
    assert [s.labels["job"] for s in result.matrix] == ["a", "b"]


async def test_instant_vector_samples_carry_the_evaluation_time(engine: Engine) -> None:
    result = await engine.instant('up{job="a"}', 90_000)
    assert [(s.t_ms, s.v) for s in result.vector] == [(90_000, 1.0)]


async def test_scalar_and_string_results(engine: Engine) -> None:
    assert (await engine.instant("1 + 2", 5_000)).scalar == (5_000, 3.0)
    assert (await engine.instant('"hello"', 5_000)).string == (5_000, "hello")
    scalar_range = await engine.range("time()", 0, 120_000, 60_000)
    assert scalar_range.matrix[0].labels == {}
    assert scalar_range.matrix[0].values.tolist() == [0.0, 60.0, 120.0]


async def test_instant_range_vector_returns_raw_samples_in_the_window(engine: Engine) -> None:
    result = await engine.instant('up{job="b"}[2m]', 300_000)
    assert result.kind == "matrix"
    assert result.matrix[0].timestamps_ms.tolist() == [180_000, 240_000, 300_000]


async def test_lookback_ends_five_minutes_after_the_last_sample(engine: Engine) -> None:
    assert len((await engine.instant('up{job="a"}', 900_000)).vector) == 1
    assert (await engine.instant('up{job="a"}', 900_001)).vector == []


async def test_lookback_is_configurable() -> None:
    engine = Engine(_storage(), lookback_ms=30_000)
    assert (await engine.instant('up{job="a"}', 630_001)).vector == []


async def test_staleness_marker_hides_the_series_until_the_next_sample() -> None:
    st = MemoryStorage()
    st.add_series({"__name__": "m"}, [(0, 1.0), (10_000, STALE_NAN), (30_000, 2.0)])
    engine = Engine(st)
    assert (await engine.instant("m", 5_000)).vector[0].v == 1.0
    assert (await engine.instant("m", 20_000)).vector == []
    assert (await engine.instant("m", 30_000)).vector[0].v == 2.0
    counted = await engine.instant("count_over_time(m[1m])", 30_000)
    assert counted.vector[0].v == 2.0  # the marker is not a sample of a range vector


async def test_nan_is_a_value_not_an_absence() -> None:
    st = MemoryStorage()
    st.add({"__name__": "m"}, 0, math.nan)
    result = await Engine(st).instant("m", 1_000)
    assert len(result.vector) == 1
    assert math.isnan(result.vector[0].v)


async def test_rate_extrapolates_like_prometheus(engine: Engine) -> None:
    # 10/min counter, window [300 s, 600 s] holds 6 samples exactly on its edges.
    result = await engine.instant("rate(req_total[5m])", 600_000)
    assert result.vector[0].labels == {"job": "a"}
    assert result.vector[0].v == pytest.approx(10 / 60)


async def test_increase_clamps_extrapolation_at_zero_for_counters() -> None:
    st = MemoryStorage()
    st.add_series({"__name__": "c"}, [(60_000, 1.0), (120_000, 3.0)])
    # window [0, 180 s]: increase 2 over 60 s, 60 s to either edge (< 1.1 x 60 s, so both
    # extrapolate), but zero is reached 30 s before the first sample: 2 * (60 + 30 + 60) / 60.
    result = await Engine(st).instant("increase(c[3m])", 180_000)
    assert result.vector[0].v == pytest.approx(5.0)


async def test_many_to_many_matching_is_an_execution_error() -> None:
    st = MemoryStorage()
    st.add({"__name__": "a", "x": "1", "y": "1"}, 0, 1.0)
    st.add({"__name__": "b", "x": "1", "y": "2"}, 0, 1.0)
    st.add({"__name__": "b", "x": "1", "y": "3"}, 0, 1.0)
    with pytest.raises(ExecutionError, match="many-to-many matching not allowed"):
        await Engine(st).instant("a + on(x) b", 0)


async def test_duplicate_label_sets_after_dropping_the_name_are_an_error() -> None:
    st = MemoryStorage()
    st.add({"__name__": "a", "x": "1"}, 0, 1.0)
    st.add({"__name__": "b", "x": "1"}, 0, 2.0)
    with pytest.raises(ExecutionError, match="same labelset"):
        await Engine(st).instant('abs({__name__=~"a|b"})', 0)


async def test_too_many_samples_uses_prometheus_message() -> None:
    engine = Engine(_storage(), max_samples=5)
    with pytest.raises(TooManySamples, match="query processing would load too many samples"):
        await engine.range("up", 0, 600_000, 60_000)


async def test_timeout_raises_query_timeout() -> None:
    engine = Engine(_storage(), timeout_s=0.0)
    with pytest.raises(QueryTimeout):
        await engine.instant("up", 0)


async def test_subquery_default_step_is_configurable() -> None:
    engine = Engine(_storage(), default_subquery_step_ms=30_000)
    result = await engine.instant('count_over_time(up{job="a"}[2m:])', 600_000)
    assert result.vector[0].v == 5.0  # 480, 510, 540, 570, 600 s
    default = await Engine(_storage()).instant('count_over_time(up{job="a"}[2m:])', 600_000)
    assert default.vector[0].v == 3.0


async def test_at_start_and_end_refer_to_the_range_query_bounds(engine: Engine) -> None:
    result = await engine.range("req_total @ end() - req_total @ start()", 60_000, 300_000, 60_000)
    assert np.all(result.matrix[0].values == 40.0)


async def test_topk_instant_result_is_ordered_by_value(engine: Engine) -> None:
    query = 'topk(2, up or label_replace(req_total, "job", "c", "", ""))'
    result = await engine.instant(query, 300_000)
    assert [s.v for s in result.vector] == [50.0, 1.0]


async def test_sort_desc_orders_an_instant_vector(engine: Engine) -> None:
    result = await engine.instant("sort_desc(up)", 120_000)  # a=1, b=0 at 120 s
    assert [s.labels["job"] for s in result.vector] == ["a", "b"]
    result = await engine.instant("sort(up)", 120_000)
    assert [s.labels["job"] for s in result.vector] == ["b", "a"]


async def test_comparison_filter_keeps_the_metric_name_and_bool_drops_it(engine: Engine) -> None:
    kept = await engine.instant("up > 0", 60_000)
    assert [s.labels for s in kept.vector] == [
        {"__name__": "up", "job": "a"},
        {"__name__": "up", "job": "b"},
    ]
    as_bool = await engine.instant("up > bool 0", 0)
    assert sorted((s.labels["job"], s.v) for s in as_bool.vector) == [("a", 1.0), ("b", 0.0)]
    assert all("__name__" not in s.labels for s in as_bool.vector)


async def test_absent_takes_labels_from_equality_matchers(engine: Engine) -> None:
    result = await engine.instant('absent(nothing{job="x", env=~"p.*"})', 0)
    assert [(s.labels, s.v) for s in result.vector] == [({"job": "x"}, 1.0)]
    assert (await engine.instant("absent(up)", 0)).vector == []


async def test_histogram_quantile_interpolates_within_the_bucket() -> None:
    st = MemoryStorage()
    for le, count in (("0.1", 10.0), ("0.5", 30.0), ("1", 40.0), ("+Inf", 40.0)):
        st.add({"__name__": "h_bucket", "le": le}, 0, count)
    result = await Engine(st).instant("histogram_quantile(0.5, h_bucket)", 0)
    # rank 20 falls in (0.1, 0.5] holding 20 observations: 0.1 + 0.4 * (10 / 20).
    assert result.vector[0].v == pytest.approx(0.3)
    assert result.vector[0].labels == {}


async def test_label_replace_and_label_join(engine: Engine) -> None:
    replaced = await engine.instant('label_replace(up{job="a"}, "dst", "x-$1", "job", "(.*)")', 0)
    assert replaced.vector[0].labels == {"__name__": "up", "job": "a", "dst": "x-a"}
    joined = await engine.instant('label_join(up{job="a"}, "j", "-", "job", "job")', 0)
    assert joined.vector[0].labels["j"] == "a-a"


async def test_date_functions_use_utc() -> None:
    engine = Engine(MemoryStorage())
    t = 1_709_164_800_000  # 2024-02-29T00:00:00Z, a leap day and a Thursday
    for fn, want in (
        ("year", 2024),
        ("month", 2),
        ("day_of_month", 29),
        ("days_in_month", 29),
        ("day_of_week", 4),
        ("day_of_year", 60),
        ("hour", 0),
        ("minute", 0),
    ):
        result = await engine.instant(f"{fn}()", t)
        assert result.vector[0].v == want, fn


async def test_one_to_one_filter_counts_only_matches_that_pass_the_comparison() -> None:
    st = MemoryStorage()
    st.add({"__name__": "m", "job": "a", "i": "1"}, 0, 1.0)
    st.add({"__name__": "m", "job": "b", "i": "1"}, 0, 5.0)
    st.add({"__name__": "t", "i": "1"}, 0, 3.0)
    engine = Engine(st)
    # Both left series match the one right series, but only job="b" passes the filter;
    # the ignored label leaves the result (Prometheus' resultMetric for one-to-one).
    result = await engine.instant("m > ignoring(job) t", 0)
    assert [(s.labels, s.v) for s in result.vector] == [({"__name__": "m", "i": "1"}, 5.0)]
    with pytest.raises(ExecutionError, match="many-to-one matching must be explicit"):
        await engine.instant("m + ignoring(job) t", 0)
