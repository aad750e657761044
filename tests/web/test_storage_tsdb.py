"""TimescaleStorage against a real, migrated TimescaleDB."""

from __future__ import annotations

import asyncio
import math
import re

import asyncpg
import numpy as np
import pytest

from shared.promql.errors import BadData, StorageFailure
from shared.promql.seriessql import anchored_regex
from shared.promql.storage import LabelMatcher, SelectHints, Series
from shared.wire import STALE_NAN_BITS
from tests.web.conftest import add_samples, add_series, bits_of, float_from_bits
from web.storage_tsdb import POOL_OPTIONS, TimescaleStorage

pytestmark = pytest.mark.timescale

T0 = 1_700_000_000_000
NASTY = [
    "it's",
    'say "hi"',
    "back\\slash",
    "\\'; DROP TABLE series; --",
    "a.b*c+d?(e)[f]{g}|h^$",
    "100%",
    "under_score",
    "%",
    "_",
    "ünïcødé ✓",
    "$1",
    "::jsonb",
    "new\nline",
]


def M(name: str, op: str, value: str) -> LabelMatcher:  # noqa: N802 - reads like a matcher literal
    return LabelMatcher(name, op, value)  # type: ignore[arg-type]


@pytest.fixture
async def loaded(pool: asyncpg.Pool) -> TimescaleStorage:
    """A fixed data set, reloaded for each test (series rows upsert, samples do nothing twice)."""
    async with pool.acquire() as conn:
        a = await add_series(conn, "cpu", {"host": "a", "mode": "idle"})
        b = await add_series(conn, "cpu", {"host": "b", "mode": "user"})
        c = await add_series(conn, "cpu", {"host": "c"})  # no mode label
        mem = await add_series(conn, "mem", {"host": "a"})
        for sid, base in ((a, 0.0), (b, 100.0), (c, 200.0), (mem, 1e9)):
            await add_samples(conn, sid, [(T0 + i * 15_000, base + i) for i in range(40)])
        for value in NASTY:
            sid = await add_series(conn, "nasty", {"host": "n", "v": value})
            await add_samples(conn, sid, [(T0, float(len(value)))])
        await conn.execute(
            "INSERT INTO metadata (metric, type, help, unit) VALUES"
            " ('cpu', 'counter', 'CPU seconds.', 'seconds'), ('mem', 'gauge', NULL, NULL)"
            " ON CONFLICT DO NOTHING"
        )
    return TimescaleStorage(pool)


def hosts(series: list[Series]) -> list[str]:
    return sorted(s.labels["host"] for s in series)


async def test_select_equality_uses_metric_and_labels(loaded: TimescaleStorage) -> None:
    found = await loaded.select(
        [M("__name__", "=", "cpu"), M("mode", "=", "idle")], T0, T0 + 600_000
    )
    assert [s.labels for s in found] == [{"__name__": "cpu", "host": "a", "mode": "idle"}]
    s = found[0]
    assert s.timestamps_ms.dtype == np.int64
    assert s.values.dtype == np.float64
    assert s.timestamps_ms.tolist() == [T0 + i * 15_000 for i in range(40)]
    assert s.values.tolist() == [float(i) for i in range(40)]
    assert s.rollup is None


async def test_select_range_is_inclusive_at_both_ends(loaded: TimescaleStorage) -> None:
    found = await loaded.select([M("__name__", "=", "mem")], T0 + 15_000, T0 + 45_000)
    assert found[0].timestamps_ms.tolist() == [T0 + 15_000, T0 + 30_000, T0 + 45_000]


async def test_select_omits_series_without_samples_in_range(loaded: TimescaleStorage) -> None:
    assert await loaded.select([M("__name__", "=", "cpu")], T0 - 10_000, T0 - 1) == []


@pytest.mark.parametrize(
    ("matcher", "expected"),
    [
        (M("mode", "!=", "idle"), ["b", "c"]),
        (M("mode", "=", ""), ["c"]),
        (M("mode", "!=", ""), ["a", "b"]),
        (M("mode", "=~", "id.*"), ["a"]),
        (M("mode", "=~", "id"), []),  # anchored: no partial match
        (M("mode", "=~", "idle|"), ["a", "c"]),  # matches "" so the label-less series too
        (M("mode", "!~", ".+"), ["c"]),
        (M("mode", "!~", "user"), ["a", "c"]),
        (M("host", "=~", "a|b"), ["a", "b"]),
        (M("mode", "=~", "(?i)IDLE"), ["a"]),
        (M("mode", "=~", r"\w+"), ["a", "b"]),
    ],
)
async def test_matcher_semantics_follow_prometheus(
    loaded: TimescaleStorage, matcher: LabelMatcher, expected: list[str]
) -> None:
    found = await loaded.select([M("__name__", "=", "cpu"), matcher], T0, T0 + 600_000)
    assert hosts(found) == expected


@pytest.mark.parametrize("op", ["=~", "!~", "!="])
async def test_name_matchers_other_than_equality(loaded: TimescaleStorage, op: str) -> None:
    found = await loaded.select(
        [M("__name__", op, "cpu|mem" if "~" in op else "cpu"), M("host", "=", "a")],
        T0,
        T0 + 600_000,
    )
    names = sorted(s.labels["__name__"] for s in found)
    assert names == (["cpu", "mem"] if op == "=~" else ["mem"] if op == "!=" else [])


@pytest.mark.parametrize("value", NASTY)
async def test_label_values_cannot_change_the_sql(loaded: TimescaleStorage, value: str) -> None:
    """Each hostile value selects exactly its own series with =, and the others with !=."""
    eq = await loaded.select([M("__name__", "=", "nasty"), M("v", "=", value)], T0, T0)
    assert [s.labels["v"] for s in eq] == [value]
    ne = await loaded.select([M("__name__", "=", "nasty"), M("v", "!=", value)], T0, T0)
    assert sorted(s.labels["v"] for s in ne) == sorted(v for v in NASTY if v != value)
    # As a regex, the escaped value matches itself only (metacharacters are not SQL).
    rx = await loaded.select([M("__name__", "=", "nasty"), M("v", "=~", re.escape(value))], T0, T0)
    assert [s.labels["v"] for s in rx] == [value]
    # A hostile label name is a bind parameter too.
    odd = await loaded.select([M("__name__", "=", "nasty"), M(value, "=", "x")], T0, T0)
    assert odd == []
    assert await loaded.select([M(value, "=", value)], T0, T0) == []
    async with loaded._pool.acquire() as conn:  # the table is still there
        assert await conn.fetchval("SELECT count(*) FROM series WHERE metric = 'nasty'") == len(
            NASTY
        )


async def test_like_wildcards_are_literal(loaded: TimescaleStorage) -> None:
    found = await loaded.select([M("__name__", "=", "nasty"), M("v", "=", "%")], T0, T0)
    assert [s.labels["v"] for s in found] == ["%"]
    found = await loaded.select([M("__name__", "=", "nasty"), M("v", "=~", "_")], T0, T0)
    assert [s.labels["v"] for s in found] == ["_"]


async def test_nul_in_values_matches_nothing_or_everything(loaded: TimescaleStorage) -> None:
    cpu = M("__name__", "=", "cpu")
    assert await loaded.select([cpu, M("host", "=", "a\x00")], T0, T0) == []
    assert hosts(await loaded.select([cpu, M("host", "!=", "a\x00")], T0, T0)) == ["a", "b", "c"]
    with pytest.raises(BadData):
        await loaded.select([cpu, M("host", "=~", "a\x00")], T0, T0)


async def test_invalid_regex_is_bad_data(loaded: TimescaleStorage) -> None:
    with pytest.raises(BadData, match="invalid regular expression"):
        await loaded.select([M("host", "=~", "(?P<x>a)")], T0, T0)


def test_regexes_are_anchored_and_flags_move_first() -> None:
    assert anchored_regex("a|b") == "^(?:a|b)$"
    assert anchored_regex("(?i)a") == "(?i)^(?:a)$"
    assert anchored_regex("(?s)a.b") == "^(?:a.b)$"


async def test_nan_payloads_and_staleness_markers_survive(pool: asyncpg.Pool) -> None:
    stale = float_from_bits(STALE_NAN_BITS)
    odd_nan = float_from_bits(0x7FF8000000000ABC)
    async with pool.acquire() as conn:
        sid = await add_series(conn, "nan_test", {"host": "z"})
        await add_samples(
            conn,
            sid,
            [(T0, 1.0), (T0 + 1, stale), (T0 + 2, odd_nan), (T0 + 3, math.inf), (T0 + 4, -0.0)],
        )
    found = await TimescaleStorage(pool).select([M("__name__", "=", "nan_test")], T0, T0 + 10)
    bits = [bits_of(v) for v in found[0].values.tolist()]
    assert bits == [
        bits_of(1.0),
        STALE_NAN_BITS,
        0x7FF8000000000ABC,
        bits_of(math.inf),
        bits_of(-0.0),
    ]


async def test_bulk_select_many_series(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        ids = [await add_series(conn, "bulk", {"host": f"h{i:03d}"}) for i in range(200)]
        await conn.execute(
            "INSERT INTO samples (time, series_id, value)"
            " SELECT to_timestamp(($2::int8 + k * 10000) / 1000.0), sid, sid * 1000 + k"
            " FROM unnest($1::int8[]) AS sid, generate_series(0, 359) AS k ON CONFLICT DO NOTHING",
            ids,
            T0,
        )
    found = await TimescaleStorage(pool).select([M("__name__", "=", "bulk")], T0, T0 + 3_600_000)
    # The second select of the same matchers is split in 3 statements (it read 72,000
    # samples the first time): the same answer.
    split = TimescaleStorage(pool, parallel=3, parallel_min_samples=1000)
    for _ in range(2):
        again = await split.select([M("__name__", "=", "bulk")], T0, T0 + 3_600_000)
        assert [s.labels for s in again] == [s.labels for s in found]
        for a, b in zip(found, again, strict=True):
            assert np.array_equal(a.timestamps_ms, b.timestamps_ms)
            assert np.array_equal(a.values, b.values)
    assert split.splits == {1: 1, 3: 1}
    assert len(found) == 200
    by_host = {s.labels["host"]: s for s in found}
    for i, sid in enumerate(ids):
        s = by_host[f"h{i:03d}"]
        assert len(s.values) == 360
        assert s.values[0] == sid * 1000
        assert s.values[-1] == sid * 1000 + 359
        assert np.all(np.diff(s.timestamps_ms) == 10_000)


async def test_label_names_values_and_series(loaded: TimescaleStorage) -> None:
    cpu = [[M("__name__", "=", "cpu")]]
    assert await loaded.label_names(cpu, T0, T0 + 600_000) == ["__name__", "host", "mode"]
    names = await loaded.label_names([], T0, T0 + 600_000)
    assert {"__name__", "host", "mode", "v"} <= set(names)
    assert names == sorted(names)
    assert await loaded.label_values("mode", cpu, T0, T0 + 600_000) == ["idle", "user"]
    assert await loaded.label_values("host", [[M("mode", "=~", ".+")]], T0, T0) == ["a", "b"]
    values = await loaded.label_values("__name__", [], T0, T0 + 600_000)
    assert {"cpu", "mem", "nasty"} <= set(values)
    # Out of the time range: nothing.
    assert await loaded.label_values("mode", cpu, T0 - 100_000, T0 - 1) == []
    series = await loaded.series(cpu, T0, T0 + 600_000)
    assert series == [
        {"__name__": "cpu", "host": "a", "mode": "idle"},
        {"__name__": "cpu", "host": "b", "mode": "user"},
        {"__name__": "cpu", "host": "c"},
    ]
    # Several match[] sets are a union.
    either = await loaded.series(
        [[M("__name__", "=", "mem")], [M("__name__", "=", "cpu"), M("host", "=", "c")]],
        T0,
        T0 + 600_000,
    )
    assert either == [{"__name__": "cpu", "host": "c"}, {"__name__": "mem", "host": "a"}]


async def test_metadata(loaded: TimescaleStorage) -> None:
    meta = await loaded.metadata(None, None)
    assert meta["cpu"] == [{"type": "counter", "help": "CPU seconds.", "unit": "seconds"}]
    assert meta["mem"] == [{"type": "gauge", "help": "", "unit": ""}]
    assert list(await loaded.metadata("mem", None)) == ["mem"]
    assert len(await loaded.metadata(None, 1)) == 1


async def test_database_down_is_storage_failure() -> None:
    dead = await asyncpg.create_pool(
        "postgresql://nobody@127.0.0.1:1/none", min_size=0, max_size=1, timeout=2
    )
    try:
        with pytest.raises(StorageFailure, match="cannot select series"):
            await TimescaleStorage(dead).select([M("__name__", "=", "x")], 0, 1)
    finally:
        await dead.close()


async def test_rollups_serve_over_time_only_on_whole_buckets(pool: asyncpg.Pool) -> None:
    hour = 3_600_000
    base = (T0 // hour) * hour - 30 * 86_400_000
    async with pool.acquire() as conn:
        sid = await add_series(conn, "rolled", {"host": "r"})
        await add_samples(conn, sid, [(base + i * 60_000 + 5_000, float(i)) for i in range(180)])
        await conn.execute(
            "INSERT INTO samples_1m (bucket, series_id, min, max, sum, count, first, last, increase)"
            " SELECT time_bucket('1 minute', time), series_id, min(value), max(value), sum(value),"
            " count(*), min(value), max(value), 0 FROM samples WHERE series_id = $1"
            " GROUP BY 1, 2 ON CONFLICT DO NOTHING",
            sid,
        )
    storage = TimescaleStorage(pool, rollups=True)
    matchers = [M("__name__", "=", "rolled")]
    end = base + 3 * hour
    hints = SelectHints(
        start_ms=base + hour, end_ms=end, step_ms=60_000, func="max_over_time", range_ms=hour
    )
    found = await storage.select(matchers, base, end, hints)
    assert found[0].rollup == "samples_1m.max+head"
    assert len(found[0].values) == 180
    assert np.isnan(found[0].extra["head"]).all()  # no sample on a minute's start
    assert found[0].timestamps_ms[0] == base + 60_000 - 1
    # Range and step of whole hours: the hour table (empty here: refreshes have not run).
    hourly = SelectHints(base + hour, end, hour, "max_over_time", hour)
    assert await storage.select(matchers, base, end, hourly) == []
    # A step that is not a whole bucket, or rate(), read raw samples.
    raw = await storage.select(
        matchers, base, end, SelectHints(base, end, 15_000, "max_over_time", hour)
    )
    assert raw[0].rollup is None
    for func in ("rate", "count_over_time", "avg_over_time", None):
        raw = await storage.select(matchers, base, end, SelectHints(base, end, hour, func, hour))
        assert raw[0].rollup is None
    # Recent data: raw (rollups lag).
    recent = TimescaleStorage(pool, rollups=True, clock_ms=lambda: end + 3_600_000)
    assert (await recent.select(matchers, base, end, hints))[0].rollup is None
    # Rollups off: raw.
    off = await TimescaleStorage(pool).select(matchers, base, end, hints)
    assert off[0].rollup is None


async def test_concurrent_selects_share_the_pool(loaded: TimescaleStorage) -> None:
    cpu = [M("__name__", "=", "cpu")]
    answers = await asyncio.gather(*(loaded.select(cpu, T0, T0 + 600_000) for _ in range(20)))
    assert all(hosts(a) == ["a", "b", "c"] for a in answers)


async def test_repeated_selects_hand_out_fresh_label_sets(loaded: TimescaleStorage) -> None:
    cpu = [M("__name__", "=", "cpu")]
    first = await loaded.select(cpu, T0, T0 + 600_000)
    for s in first:
        s.labels["host"] = "changed"
    again = await loaded.select(cpu, T0, T0 + 600_000)
    assert hosts(again) == ["a", "b", "c"]
    assert all(s.labels["__name__"] == "cpu" for s in again)


async def test_pool_options_keep_answers_past_the_generic_plan_threshold(
    migrated_db: str, loaded: TimescaleStorage
) -> None:
    """No reset on release, no JIT, a custom plan per execution: the same answers on
    one connection, run more often than PostgreSQL's five custom plans."""
    pool = await asyncpg.create_pool(migrated_db, min_size=1, max_size=1, **POOL_OPTIONS)
    try:
        async with pool.acquire() as conn:
            assert await conn.fetchval("SHOW plan_cache_mode") == "force_custom_plan"
            assert await conn.fetchval("SHOW jit") == "off"
        storage = TimescaleStorage(pool)
        want = await loaded.select([M("__name__", "=", "cpu")], T0, T0 + 600_000)
        for _ in range(8):
            got = await storage.select([M("__name__", "=", "cpu")], T0, T0 + 600_000)
            assert [s.labels for s in got] == [s.labels for s in want]
            for a, b in zip(got, want, strict=True):
                assert np.array_equal(a.timestamps_ms, b.timestamps_ms)
                assert np.array_equal(a.values, b.values)
    finally:
        await pool.close()
