"""Pure parts of ingest: series identity, the cache, row building, back-off."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from ingest.backoff import Backoff, RetryBudget
from ingest.cache import SeriesCache
from ingest.rows import FastKey, FetchRows, encode_copy_binary, minute_starts
from ingest.seriesid import SeriesKey, canonical_labels, series_hash
from shared.errors import DecodeError
from shared.wire import STALE_NAN, BatchBuilder


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
