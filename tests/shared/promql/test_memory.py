"""MemoryStorage: the Storage contract over in-memory series."""

from __future__ import annotations

import math

import pytest

from shared.promql.errors import BadData
from shared.promql.memory import MemoryStorage
from shared.promql.storage import LabelMatcher
from shared.wire import STALE_NAN, STALE_NAN_BITS


def _st() -> MemoryStorage:
    st = MemoryStorage()
    st.add({"__name__": "m", "env": "prod", "host": "a"}, 1_000, 1.0)
    st.add({"__name__": "m", "host": "b"}, 1_000, 2.0)
    st.add({"__name__": "other", "env": "dev"}, 5_000, 3.0)
    return st


async def _hosts(st: MemoryStorage, *matchers: LabelMatcher) -> list[str]:
    found = await st.select([LabelMatcher("__name__", "=", "m"), *matchers], 0, 10_000)
    return sorted(s.labels["host"] for s in found)


async def test_empty_equality_matches_series_without_the_label() -> None:
    assert await _hosts(_st(), LabelMatcher("env", "=", "")) == ["b"]


async def test_not_empty_matches_series_with_the_label() -> None:
    assert await _hosts(_st(), LabelMatcher("env", "!=", "")) == ["a"]


async def test_regex_is_fully_anchored() -> None:
    st = _st()
    assert await _hosts(st, LabelMatcher("env", "=~", "pro")) == []
    assert await _hosts(st, LabelMatcher("env", "=~", "pro.*")) == ["a"]
    assert await _hosts(st, LabelMatcher("env", "=~", ".*")) == ["a", "b"]
    assert await _hosts(st, LabelMatcher("env", "!~", "p.*")) == ["b"]


async def test_invalid_regex_is_bad_data() -> None:
    with pytest.raises(BadData):
        await _hosts(_st(), LabelMatcher("env", "=~", "(unclosed"))


async def test_select_honours_the_inclusive_time_range() -> None:
    st = MemoryStorage()
    st.add_series({"__name__": "x"}, [(t, float(t)) for t in range(0, 10_000, 1_000)])
    got = await st.select([LabelMatcher("__name__", "=", "x")], 2_000, 4_000)
    assert got[0].timestamps_ms.tolist() == [2_000, 3_000, 4_000]
    assert await st.select([LabelMatcher("__name__", "=", "x")], 20_000, 30_000) == []


async def test_out_of_order_appends_are_sorted_and_last_write_wins() -> None:
    st = MemoryStorage()
    st.add_series({"__name__": "x"}, [(3, 3.0), (1, 1.0), (3, 4.0), (2, 2.0)])
    got = await st.select([LabelMatcher("__name__", "=", "x")], 0, 10)
    assert got[0].timestamps_ms.tolist() == [1, 2, 3]
    assert got[0].values.tolist() == [1.0, 2.0, 4.0]


async def test_staleness_marker_bits_survive() -> None:
    st = MemoryStorage()
    st.add({"__name__": "x"}, 0, STALE_NAN)
    got = await st.select([LabelMatcher("__name__", "=", "x")], 0, 0)
    assert math.isnan(got[0].values[0])
    assert int(got[0].values.view("uint64")[0]) == STALE_NAN_BITS


async def test_label_names_values_and_series() -> None:
    st = _st()
    assert await st.label_names([], 0, 10_000) == ["__name__", "env", "host"]
    assert await st.label_values("env", [], 0, 10_000) == ["dev", "prod"]
    only_m = [[LabelMatcher("__name__", "=", "m")]]
    assert await st.label_values("env", only_m, 0, 10_000) == ["prod"]
    assert len(await st.series(only_m, 0, 10_000)) == 2
    assert await st.series(only_m, 2_000, 3_000) == []


async def test_drop_before_trims_samples_and_forgets_empty_series() -> None:
    st = MemoryStorage()
    st.add_series({"__name__": "x", "a": "1"}, [(1, 1.0), (5, 5.0)])
    st.add_series({"__name__": "x", "a": "2"}, [(2, 2.0)])
    st.drop_before(3)
    got = await st.select([LabelMatcher("__name__", "=", "x")], 0, 10)
    assert [(s.labels["a"], s.timestamps_ms.tolist()) for s in got] == [("1", [5])]
    st.add({"__name__": "x", "a": "2"}, 7, 7.0)  # the series may come back
    assert len(await st.select([LabelMatcher("__name__", "=", "x")], 0, 10)) == 2


async def test_select_sees_samples_added_after_a_previous_select() -> None:
    st = MemoryStorage()
    st.add({"__name__": "x"}, 1, 1.0)
    await st.select([LabelMatcher("__name__", "=", "x")], 0, 10)
    st.add({"__name__": "x"}, 2, 2.0)
    got = await st.select([LabelMatcher("__name__", "=", "x")], 0, 10)
    assert got[0].values.tolist() == [1.0, 2.0]
