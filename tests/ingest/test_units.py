"""Pure parts of ingest: series identity, the cache, row building, back-off."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from ingest.backoff import Backoff, RetryBudget
from ingest.cache import SeriesCache
from ingest.rows import FastKey, FetchRows, encode_copy_binary, index_order, minute_starts
from ingest.seriesid import SeriesKey, canonical_labels, series_hash
from shared.errors import DecodeError
from shared.wire import STALE_NAN, BatchBuilder, MetricBatch


def test_series_hash_ignores_label_order_and_is_stable() -> None:
    a = series_hash("up", {"job": "x", "host": "h"})
    assert a == series_hash("up", {"host": "h", "job": "x"})
    assert len(a) == 16
    assert a.hex() == series_hash("up", {"host": "h", "job": "x"}).hex()
    assert a != series_hash("up", {"host": "h", "job": "y"})
    assert series_hash("a", {"b": "c"}) != series_hash("ab", {"": "c"})


def test_subject_host_overrides_a_host_label_from_the_batch() -> None:
    assert canonical_labels("real", {"host": "liar", "a": "1"}) == {"a": "1", "host": "real"}
    assert SeriesKey.of("real", "up", {"host": "liar"}) == SeriesKey.of("real", "up", {})


def test_cache_is_bounded_and_keeps_recently_used_entries() -> None:
    cache: SeriesCache[int] = SeriesCache(4)
    for k in range(4):
        cache.put(k, k * 10)
    assert len(cache) <= 4
    assert cache.get(3) == 30
    for k in range(4, 100):
        cache.put(k, k)
        assert cache.get(k) == k
        assert len(cache) <= 4
    assert cache.get(0) is None
    assert cache.misses == 1
    with pytest.raises(ValueError, match="at least 2"):
        SeriesCache(1)


def test_fetch_rows_gathers_ids_per_sample_and_asks_once_per_missing_series() -> None:
    cache: SeriesCache[FastKey] = SeriesCache(100)
    b = BatchBuilder()
    b.add("m", {"a": "1"}, 60_000, 1.0, type="gauge")
    b.add("m", {"a": "2"}, 60_001, STALE_NAN)
    b.add("m", {"a": "1"}, 120_000, 3.0)
    rows = FetchRows(cache)
    rows.add("h", b.build("ag", 0))
    assert len(rows.missing) == 2
    rows.fill({k: i + 7 for i, k in enumerate(rows.missing)})
    ts, sids, values = rows.columns()
    assert ts.tolist() == [60_000, 60_001, 120_000]
    assert sids.tolist() == [7, 8, 7]
    assert struct.pack("<d", values[1]) == struct.pack("<d", STALE_NAN)
    assert minute_starts(ts) == [60_000, 120_000]
    assert rows.metadata["m"].type == "gauge"
    assert rows.agents == {"h": "ag"}


def test_fetch_rows_rejects_nul_in_label_values_whole() -> None:
    b = BatchBuilder()
    b.add("m", {"a": "ok"}, 1, 1.0)
    b.add("m", {"a": "x\x00y"}, 1, 1.0)
    rows = FetchRows(SeriesCache(100))
    with pytest.raises(DecodeError) as info:
        rows.add("h", b.build("ag", 0))
    assert info.value.reason == "nul_character"
    assert rows.missing == {}
    assert rows.samples == 0


def test_binary_copy_encoding_keeps_value_bits() -> None:
    values = np.array([STALE_NAN, -0.0, float("inf")], dtype=np.float64)
    data = encode_copy_binary(
        np.array([946_684_800_000, 1, 2], dtype=np.int64),
        np.array([5, 6, 7], dtype=np.int64),
        values,
    )
    assert data.startswith(b"PGCOPY\n\xff\r\n\x00")
    assert data.endswith(b"\xff\xff")
    first = data[19 : 19 + 38]
    assert first[:2] == b"\x00\x03"
    assert struct.unpack(">q", first[6:14])[0] == 0  # 2000-01-01 is PostgreSQL's zero
    assert first[-8:].hex() == "7ff0000000000002"


def test_backoff_doubles_to_a_cap_and_reports_outage_edges() -> None:
    b = Backoff(0.1, 1.0)
    assert b.failed(10.0) == (0.1, True)
    assert b.failed(11.0) == (0.2, False)
    for _ in range(10):
        delay, first = b.failed(12.0)
    assert (delay, first) == (1.0, False)
    assert b.succeeded(15.0) == 5.0
    assert b.succeeded(16.0) is None


def test_retry_budget_allows_a_bounded_number_of_tries() -> None:
    budget = RetryBudget(3)
    assert budget.try_again()
    assert budget.try_again()
    assert not budget.try_again()


def test_cache_get_many_counts_and_promotes_like_get() -> None:
    one: SeriesCache[int] = SeriesCache(4)
    many: SeriesCache[int] = SeriesCache(4)
    for cache in (one, many):
        for k in range(4):
            cache.put(k, k * 10)  # 0, 1 now cold; 2, 3 hot
    keys = [3, 0, 9, 2, 1, 9]  # promoting 0 turns hot into cold and drops 1
    assert many.get_many(keys) == [one.get(k) for k in keys] == [30, 0, None, 20, None, None]
    assert (many.hits, many.misses) == (one.hits, one.misses) == (3, 3)
    assert len(many) <= 4
    assert many.get_many([]) == []


def test_fetch_rows_keys_tell_label_sets_apart_and_hit_the_cache_next_time() -> None:
    def batch(seq: int) -> MetricBatch:
        b = BatchBuilder()
        b.add("m", {"a": "1", "b": "2"}, 60_000, 1.0)
        b.add("m", {"a": "12"}, 60_001, 2.0)
        b.add("m", {"a1": "2"}, 60_002, 3.0)
        b.add("m", {"a": "1", "b": "2"}, 60_003, 4.0)
        return b.build("ag", seq)

    cache: SeriesCache[FastKey] = SeriesCache(100)
    rows = FetchRows(cache)
    rows.add("h", batch(0))
    assert len(rows.missing) == 3
    assert len({k.hash for k in rows.missing.values()}) == 3
    ids = {fast: 5 + i for i, fast in enumerate(rows.missing)}
    rows.fill(ids)
    for fast, sid in ids.items():
        cache.put(fast, sid)
    again = FetchRows(cache)
    again.add("h", batch(1))
    assert again.missing == {}
    assert again.columns()[1].tolist() == rows.columns()[1].tolist() == [5, 6, 7, 5]


def test_index_order_sorts_by_series_then_time_keeping_rows_together() -> None:
    ts = np.array([3, 1, 2, 1, 9], dtype=np.int64)
    sids = np.array([2, 2, 1, 1, 0], dtype=np.int64)
    values = np.array([0.3, 0.1, 0.2, 0.0, 0.9], dtype=np.float64)
    o_ts, o_sids, o_values = index_order(ts, sids, values)
    assert list(zip(o_sids.tolist(), o_ts.tolist(), o_values.tolist(), strict=True)) == [
        (0, 9, 0.9), (1, 1, 0.0), (1, 2, 0.2), (2, 1, 0.1), (2, 3, 0.3),
    ]  # fmt: skip
    # Spans too wide for one packed int64 key take the two-key sort: same order.
    wide_ts = np.array([2**62, -(2**62), 0], dtype=np.int64)
    wide_sids = np.array([2**40, 2**40, 1], dtype=np.int64)
    got = index_order(wide_ts, wide_sids, np.array([1.0, 2.0, 3.0]))
    assert got[1].tolist() == [1, 2**40, 2**40]
    assert got[0].tolist() == [0, -(2**62), 2**62]
    assert got[2].tolist() == [3.0, 2.0, 1.0]


def test_minute_starts_are_distinct_and_ascending_for_near_and_far_timestamps() -> None:
    near = np.array([120_001, 60_000, 119_999, 60_000, 180_000], dtype=np.int64)
    assert minute_starts(near) == [60_000, 120_000, 180_000]
    far = np.array([10**12, 0, 10**12 + 1, -60_001], dtype=np.int64)
    assert minute_starts(far) == [-120_000, 0, (10**12 // 60_000) * 60_000]
    assert minute_starts(np.empty(0, dtype=np.int64)) == []
