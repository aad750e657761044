"""Series ids per (host, series table): repeated tables skip lookups, only after commit."""

from __future__ import annotations

import numpy as np
import pytest

from ingest.cache import SeriesCache
from ingest.rows import FastKey, FetchRows, Metadata
from ingest.tableids import TableEntry, TableIds
from shared.codec import BatchDecoder, encode_batch
from shared.errors import DecodeError
from shared.wire import BatchBuilder, DecodeLimits, MetricBatch

NOW = 1_714_564_800_000
DECODER_SERIES = 1000


def encoded(seq: int, *, cpus: int = 3, nul: bool = False) -> bytes:
    b = BatchBuilder()
    for cpu in range(cpus):
        labels = {"cpu": str(cpu), "mode": "idle\x00" if nul and cpu else "idle"}
        b.add("node_cpu_seconds_total", labels, NOW + seq, float(seq), type="counter")
    return encode_batch(b.build("agent-1", seq))


def committed(rows: FetchRows, cache: SeriesCache[FastKey], first_id: int) -> dict[FastKey, int]:
    """What the writer does around a commit: resolve, fill, then fill the caches."""
    resolved = {key: first_id + i for i, key in enumerate(rows.missing)}
    rows.fill(resolved)
    for key, sid in resolved.items():
        cache.put(key, sid)
    rows.remember_tables()
    return resolved


def entry(n: int) -> TableEntry[Metadata]:
    return TableEntry(np.arange(n, dtype=np.int64), {})


def test_table_ids_are_bounded_by_series_least_recently_used_first() -> None:
    tables: TableIds[Metadata] = TableIds(7)
    tables.put(("h", b"a"), entry(3))
    tables.put(("h", b"b"), entry(3))
    assert tables.get(("h", b"a")) is not None
    tables.put(("h", b"c"), entry(3))
    assert ("h", b"a") in tables
    assert ("h", b"b") not in tables
    assert tables.series_held == 6
    tables.put(("h", b"big"), entry(8))  # larger than the whole cache: not kept
    assert ("h", b"big") not in tables
    assert len(tables) == 2
    with pytest.raises(ValueError, match="table-id cache"):
        TableIds(0)


def test_a_repeated_table_takes_its_ids_whole_once_its_first_fetch_committed() -> None:
    decoder = BatchDecoder(DecodeLimits(), max_series=DECODER_SERIES)
    cache: SeriesCache[FastKey] = SeriesCache(100)
    tables: TableIds[Metadata] = TableIds(100)

    def fetch(*batches: tuple[str, MetricBatch]) -> FetchRows:
        rows = FetchRows(cache, tables)
        for host, batch in batches:
            rows.add(host, batch)
        return rows

    # The same table twice in one fetch: looked up once, the ids shared.
    first = fetch(
        ("h", decoder.decode(encoded(0), now_ms=NOW)),
        ("h", decoder.decode(encoded(1), now_ms=NOW)),
    )
    assert len(first.missing) == 3
    assert (cache.hits, cache.misses) == (0, 6)
    # Not committed yet: a concurrent fetch of the same table must not trust it.
    concurrent = fetch(("h", decoder.decode(encoded(1), now_ms=NOW)))
    assert len(tables) == 0
    assert len(concurrent.missing) == 3
    committed(first, cache, 10)
    assert first.columns()[1].tolist() == [10, 11, 12] * 2
    assert len(tables) == 1

    hits = cache.hits
    again = fetch(
        ("h", decoder.decode(encoded(2), now_ms=NOW)),
        ("other", decoder.decode(encoded(3), now_ms=NOW)),  # same table, another host
    )
    assert cache.hits - hits == 3
    assert (tables.hits, tables.misses) == (1, 3)
    assert [k[0] for k in again.missing] == ["other"] * 3
    committed(again, cache, 20)
    ts, sids, values = again.columns()
    assert sids.tolist() == [10, 11, 12, 20, 21, 22]
    assert ts.tolist() == [NOW + 2] * 3 + [NOW + 3] * 3
    assert values.tolist() == [2.0] * 3 + [3.0] * 3
    assert again.metadata["node_cpu_seconds_total"].type == "counter"
    assert again.agents == {"h": "agent-1", "other": "agent-1"}
    assert again.samples == 6
    assert len(tables) == 2


def test_a_table_with_a_nul_is_rejected_every_time_and_never_remembered() -> None:
    decoder = BatchDecoder(DecodeLimits(), max_series=DECODER_SERIES)
    cache: SeriesCache[FastKey] = SeriesCache(100)
    tables: TableIds[Metadata] = TableIds(100)
    for seq in range(2):
        rows = FetchRows(cache, tables)
        with pytest.raises(DecodeError) as info:
            rows.add("h", decoder.decode(encoded(seq, nul=True), now_ms=NOW))
        assert info.value.reason == "nul_character"
        committed(rows, cache, 1)
        assert rows.samples == 0
    assert len(tables) == 0
    assert len(decoder) == 1  # the wire accepts NUL; storage is what refuses it
