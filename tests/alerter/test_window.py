"""The alerter's windows: only selected series, only as long as rules need, ~16 B/sample."""

from __future__ import annotations

import math

import numpy as np

from alerter.window import WindowStore, selectors_of
from shared.promql.engine import Engine
from shared.promql.memory import MemoryStorage
from shared.wire import STALE_NAN, is_stale


def test_selectors_carry_range_offset_and_lookback() -> None:
    sels = selectors_of('rate(a{x="1"}[10m] offset 1m) > on() b', lookback_ms=300_000)
    by_name = {s.metric: s.history_ms for s in sels}
    assert by_name == {"a": 660_000, "b": 300_000}


def test_selectors_of_subquery_add_its_range() -> None:
    (sel,) = selectors_of("max_over_time(rate(c[1m])[30m:1m])")
    assert sel.history_ms == 31 * 60_000


def test_or_matchers_give_one_selector_per_alternative() -> None:
    sels = selectors_of('{__name__="m", a="1" or b="2"}')
    assert len(sels) == 2


def test_store_keeps_only_selected_series() -> None:
    store = WindowStore(selectors_of('cpu{mode="idle"} < 1'))
    store.add({"__name__": "cpu", "mode": "idle"}, 1000, 1.0)
    store.add({"__name__": "cpu", "mode": "user"}, 1000, 1.0)
    store.add({"__name__": "mem"}, 1000, 1.0)
    assert store.series_count == 1


def test_store_trims_to_retention_and_stays_near_16_bytes_per_sample() -> None:
    store = WindowStore(selectors_of("rate(x[5m])"), slack_ms=0)
    for i in range(10_000):
        store.add({"__name__": "x", "i": str(i % 50)}, i // 50 * 1000, float(i))
    held = store.sample_count
    assert held <= 50 * 302  # 5 minutes at 1 s, plus the boundary samples
    assert store.bytes_per_sample() <= 32


def test_series_cap_refuses_new_series() -> None:
    store = WindowStore(selectors_of("x"), max_series=2)
    for i in range(3):
        store.add({"__name__": "x", "i": str(i)}, 1000, 1.0)
    assert store.series_count == 2
    assert store.refused_series == 1


def test_out_of_order_dropped_equal_timestamp_overwrites() -> None:
    store = WindowStore(selectors_of("x"))
    labels = {"__name__": "x"}
    store.add(labels, 2000, 1.0)
    store.add(labels, 1000, 5.0)
    store.add(labels, 2000, 3.0)
    assert store.out_of_order == 1
    assert store.sample_count == 1


async def test_engine_over_windows_agrees_with_memory_storage() -> None:
    exprs = ["rate(x[1m])", "x > 5", "max_over_time(x[2m])", "absent(y)", "count(x)"]
    sels = [s for e in exprs for s in selectors_of(e)]
    win, mem = WindowStore(sels), MemoryStorage()
    rng = np.random.default_rng(1)
    for t in range(0, 600_000, 10_000):
        for host in ("a", "b"):
            v = float(rng.integers(0, 10)) if t != 300_000 else STALE_NAN
            labels = {"__name__": "x", "host": host}
            win.add(labels, t, v)
            mem.add(labels, t, v)
    for expr in exprs:
        got = await Engine(win).instant(expr, 590_000)
        want = await Engine(mem).instant(expr, 590_000)
        assert [(s.labels, s.v) for s in got.vector] == [(s.labels, s.v) for s in want.vector]


async def test_staleness_marker_survives_the_window() -> None:
    store = WindowStore(selectors_of("x"))
    store.add({"__name__": "x"}, 1000, STALE_NAN)
    (series,) = await store.select(selectors_of("x")[0].matchers, 0, 2000)
    assert is_stale(float(series.values[0]))
    assert math.isnan(series.values[0])


def test_new_selectors_drop_series_no_longer_wanted() -> None:
    store = WindowStore(selectors_of("x + y"))
    store.add({"__name__": "x"}, 1000, 1.0)
    store.add({"__name__": "y"}, 1000, 1.0)
    store.set_selectors(selectors_of("x"))
    assert store.series_count == 1


async def test_merged_history_dedupes_by_timestamp_keeping_the_held_sample() -> None:
    store = WindowStore(selectors_of("rate(x[1h])"), slack_ms=0)
    labels = {"__name__": "x", "host": "a"}
    for t in (50, 60, 70):  # from the stream
        store.add(labels, t * 1000, float(t))
    older = np.array([t * 1000 for t in range(0, 61, 10)], dtype=np.int64)
    added = store.merge(labels, older, np.full(len(older), -1.0), 70_000)
    assert added == 5  # 0..40; 50 and 60 already held
    (series,) = await store.select([], 0, 100_000)
    assert series.timestamps_ms.tolist() == [t * 1000 for t in range(0, 71, 10)]
    assert series.values.tolist() == [-1.0] * 5 + [50.0, 60.0, 70.0]
    store.add(labels, 80_000, 80.0)  # the stream goes on after a merge
    assert store.sample_count == 9


def test_merge_skips_unwanted_series_and_samples_past_retention() -> None:
    store = WindowStore(selectors_of("x"), slack_ms=0)  # retention: the 5m lookback
    ts = np.array([0, 400_000], dtype=np.int64)
    vals = np.array([1.0, 2.0])
    assert store.merge({"__name__": "y"}, ts, vals, 400_000) == 0
    assert store.merge({"__name__": "x"}, ts, vals, 400_000) == 1
    assert store.sample_count == 1
