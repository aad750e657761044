"""Queries answered from rollups agree with the same queries over raw samples.

Rollups are built with ingest's own SELECTs (``ingest.rollup.aggregates``), as the
refresh jobs build them. Tolerances, stated per case:

- ``*_over_time`` (max, min, sum, count, avg): relative 1e-9 (summation order only),
  on ``roll_*`` data, whose samples never lie on a bucket edge;
- ``rate``/``increase`` of a counter scraped every 15 s (resets included), covering
  every window: relative 1e-9 (Prometheus' extrapolation is reproduced exactly);
- the same counter with up to 3 s of jitter per scrape: relative 2 % (the sample
  times are estimated from counts, see ``shared.promql.rollupfuncs``).

And on samples lying exactly on bucket edges (``edge_*``: every 15 s from a whole
hour, so on every window's start and end), which the rollup rows keep as their
``head``: relative 1e-9 for every served function, instant and range queries,
with staleness markers on edges, a series starting and one stopping on an edge, NaN
on edges (``max``/``min`` only: rollups leave NaN out everywhere, see
``web.storage_tsdb``), and ``rate``/``increase`` of a counter sampled on both ends of
every window (then the first and last sample times are known: no estimate).
"""

from __future__ import annotations

import math

import asyncpg
import numpy as np
import pytest

from ingest.rollup.aggregates import COLUMNS, HOUR, MINUTE
from shared.promql.engine import Engine
from shared.promql.result import Result
from shared.wire import STALE_NAN_BITS
from tests.web.conftest import T0, add_samples, add_series
from web.storage_tsdb import ALL_ROLLUP_FUNCS, TimescaleStorage

HOUR_MS = 3_600_000
BASE = (T0 // HOUR_MS) * HOUR_MS - 30 * 86_400_000
END = BASE + 48 * HOUR_MS


@pytest.fixture
async def loaded(pool: asyncpg.Pool) -> asyncpg.Pool:
    rng = np.random.default_rng(7)
    times = np.arange(BASE, END, 15_000, dtype=np.int64) + 5_000  # never on a bucket edge
    async with pool.acquire() as conn:
        if await conn.fetchval("SELECT count(*) FROM series WHERE metric = 'roll_gauge'"):
            return pool
        for host in ("a", "b", "c"):
            sid = await add_series(conn, "roll_gauge", {"host": host})
            values = rng.normal(50, 20, len(times))
            await add_samples(conn, sid, list(zip(times.tolist(), values.tolist(), strict=True)))
        for kind, jitter in (("regular", 0), ("jitter", 3_000)):
            for host in ("a", "b"):
                sid = await add_series(conn, "roll_total", {"host": host, "kind": kind})
                stamps = times + rng.integers(-jitter, jitter + 1, len(times)) if jitter else times
                counter = 10_000 + np.cumsum(rng.integers(0, 20, len(times))).astype(np.float64)
                for at in rng.choice(len(times), 4, replace=False):  # counter resets
                    counter[at:] -= counter[at] - rng.integers(1, 5)
                points = list(zip(stamps.tolist(), counter.tolist(), strict=True))
                await add_samples(conn, sid, points)
        await _add_edge_series(conn, rng)
        cols = ", ".join(COLUMNS)
        await conn.execute(f"INSERT INTO samples_1m ({cols}) {MINUTE.query()}")
        await conn.execute(f"INSERT INTO samples_1h ({cols}) {HOUR.query()}")
    return pool


STALE = np.array([STALE_NAN_BITS], dtype=np.uint64).view(np.float64)[0]


async def _add_edge_series(conn: asyncpg.Connection, rng: np.random.Generator) -> None:
    """``edge_*`` series: samples every 15 s from a whole hour, so on every bucket edge."""
    times = np.arange(BASE, END + 1, 15_000, dtype=np.int64)
    on_hour = times % HOUR_MS == 0
    on_minute = times % 60_000 == 0
    series: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    series["edge_gauge", "plain"] = times, rng.normal(50, 20, len(times))
    stale = rng.normal(50, 20, len(times))
    stale[on_hour & (times // HOUR_MS % 3 == 0)] = STALE
    stale[on_minute & (times // 60_000 % 7 == 0)] = STALE
    series["edge_gauge", "stale"] = times, stale
    late = (times >= BASE + 10 * HOUR_MS) & (times <= BASE + 30 * HOUR_MS)
    series["edge_gauge", "late"] = times[late], rng.normal(50, 20, int(late.sum()))
    nan = rng.normal(50, 20, len(times))
    nan[on_hour & (times // HOUR_MS % 2 == 0)] = np.nan
    series["edge_nan", "nan"] = times, nan
    counter = 100 + np.cumsum(rng.integers(0, 20, len(times))).astype(np.float64)
    for at in [*rng.choice(len(times), 3, replace=False), int(np.flatnonzero(on_hour)[20])]:
        counter[at:] -= counter[at] - rng.integers(1, 5)  # resets, one on an hour edge
    series["edge_total", "aligned"] = times, counter
    for (metric, kind), (stamps, values) in series.items():
        sid = await add_series(conn, metric, {"kind": kind})
        await add_samples(conn, sid, list(zip(stamps.tolist(), values.tolist(), strict=True)))


def _by_labels(result: Result) -> dict[tuple[tuple[str, str], ...], dict[int, float]]:
    return {
        tuple(sorted(s.labels.items())): dict(
            zip(s.timestamps_ms.tolist(), s.values.tolist(), strict=True)
        )
        for s in result.matrix
    }


def _assert_close(rolled: Result, raw: Result, rel: float) -> None:
    a, b = _by_labels(rolled), _by_labels(raw)
    assert a.keys() == b.keys()
    for key, points in b.items():
        assert a[key].keys() == points.keys(), key
        for t, want in points.items():
            got = a[key][t]
            assert math.isclose(got, want, rel_tol=rel), (key, t, got, want)


@pytest.mark.parametrize(
    ("query", "step_ms", "table", "rel"),
    [
        ("max_over_time(roll_gauge[1h])", HOUR_MS, "samples_1h.max", 1e-9),
        ("min_over_time(roll_gauge[3h])", HOUR_MS, "samples_1h.min", 1e-9),
        ("sum_over_time(roll_gauge[2h])", HOUR_MS, "samples_1h.sum", 1e-9),
        ("count_over_time(roll_gauge[1h])", HOUR_MS, "samples_1h.count", 1e-9),
        ("avg_over_time(roll_gauge[5m])", 300_000, "samples_1m.sum+count", 1e-9),
        (
            'rate(roll_total{kind="regular"}[1h])',
            HOUR_MS,
            "samples_1h.increase+first+last+count",
            1e-9,
        ),
        (
            'increase(roll_total{kind="regular"}[10m])',
            60_000,
            "samples_1m.increase+first+last+count",
            1e-9,
        ),
        (
            'rate(roll_total{kind="jitter"}[1h])',
            HOUR_MS,
            "samples_1h.increase+first+last+count",
            0.02,
        ),
        (
            'increase(roll_total{kind="jitter"}[30m])',
            600_000,
            "samples_1m.increase+first+last+count",
            0.02,
        ),
    ],
)
async def test_rollups_answer_like_raw_samples(
    loaded: asyncpg.Pool, query: str, step_ms: int, table: str, rel: float
) -> None:
    rolled_storage = TimescaleStorage(loaded, rollups=True, rollup_funcs=ALL_ROLLUP_FUNCS)
    start, end = BASE + 6 * HOUR_MS, END - 2 * HOUR_MS
    rolled = await Engine(rolled_storage).range(query, start, end, step_ms)
    raw = await Engine(TimescaleStorage(loaded)).range(query, start, end, step_ms)
    assert rolled_storage.served == {table: 1}
    assert raw.matrix
    _assert_close(rolled, raw, rel)


async def test_rate_is_raw_unless_its_rollups_are_asked_for(loaded: asyncpg.Pool) -> None:
    storage = TimescaleStorage(loaded, rollups=True)
    await Engine(storage).range("rate(roll_total[1h])", BASE + 6 * HOUR_MS, END, HOUR_MS)
    assert storage.served == {"raw": 1}


def test_unknown_rollup_function_is_refused(pool: asyncpg.Pool) -> None:
    with pytest.raises(ValueError, match="quantile_over_time"):
        TimescaleStorage(pool, rollup_funcs=frozenset({"quantile_over_time"}))


_EDGE_QUERIES = [
    ("max_over_time(edge_gauge[1h])", HOUR_MS, "samples_1h.max"),
    ("min_over_time(edge_gauge[3h])", HOUR_MS, "samples_1h.min"),
    ("sum_over_time(edge_gauge[2h])", HOUR_MS, "samples_1h.sum"),
    ("count_over_time(edge_gauge[1h])", 2 * HOUR_MS, "samples_1h.count"),
    ("avg_over_time(edge_gauge[3h])", HOUR_MS, "samples_1h.sum+count"),
    ("max_over_time(edge_gauge[5m])", 60_000, "samples_1m.max"),
    ("min_over_time(edge_gauge[1m])", 300_000, "samples_1m.min"),
    ("sum_over_time(edge_gauge[10m])", 300_000, "samples_1m.sum"),
    ("count_over_time(edge_gauge[2m])", 60_000, "samples_1m.count"),
    ("avg_over_time(edge_gauge[5m])", 300_000, "samples_1m.sum+count"),
    ("max_over_time(edge_nan[1h])", HOUR_MS, "samples_1h.max"),
    ("min_over_time(edge_nan[2h])", HOUR_MS, "samples_1h.min"),
    ("rate(edge_total[1h])", HOUR_MS, "samples_1h.increase+first+last+count"),
    ("increase(edge_total[3h])", HOUR_MS, "samples_1h.increase+first+last+count"),
    ("rate(edge_total[5m])", 60_000, "samples_1m.increase+first+last+count"),
    ("increase(edge_total[10m])", 300_000, "samples_1m.increase+first+last+count"),
]


@pytest.mark.parametrize(("query", "step_ms", "table"), _EDGE_QUERIES)
async def test_rollups_answer_like_raw_samples_on_bucket_edges(
    loaded: asyncpg.Pool, query: str, step_ms: int, table: str
) -> None:
    rolled_storage = TimescaleStorage(loaded, rollups=True, rollup_funcs=ALL_ROLLUP_FUNCS)
    start, end = BASE + 6 * HOUR_MS, END - 2 * HOUR_MS
    rolled = await Engine(rolled_storage).range(query, start, end, step_ms)
    raw = await Engine(TimescaleStorage(loaded)).range(query, start, end, step_ms)
    assert rolled_storage.served == {table: 1}
    assert raw.matrix
    _assert_close(rolled, raw, 1e-9)


@pytest.mark.parametrize(("query", "step_ms", "table"), _EDGE_QUERIES)
@pytest.mark.parametrize("hours", [9, 10, 11, 12, 30, 31])
async def test_instant_rollup_answers_on_bucket_edges(
    loaded: asyncpg.Pool, query: str, step_ms: int, table: str, hours: int
) -> None:
    """Around the ``late`` series' first (10 h) and last (30 h) sample, and a stale edge
    (12 h, a multiple of 3)."""
    rolled_storage = TimescaleStorage(loaded, rollups=True, rollup_funcs=ALL_ROLLUP_FUNCS)
    at = BASE + hours * HOUR_MS
    rolled = await Engine(rolled_storage).instant(query, at)
    raw = await Engine(TimescaleStorage(loaded)).instant(query, at)
    assert rolled_storage.served == {table: 1}
    want = {tuple(sorted(s.labels.items())): s.v for s in raw.vector}
    got = {tuple(sorted(s.labels.items())): s.v for s in rolled.vector}
    assert want
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert math.isclose(got[key], value, rel_tol=1e-9), (key, got[key], value)


async def test_edges_in_a_split_selection(loaded: asyncpg.Pool) -> None:
    """A selection split over connections (``s.id % parts``) answers the same."""
    storage = TimescaleStorage(
        loaded, rollups=True, parallel=3, parallel_min_samples=1, rollup_funcs=ALL_ROLLUP_FUNCS
    )
    query = "sum_over_time(edge_gauge[1h])"
    start, end = BASE + 6 * HOUR_MS, END - 2 * HOUR_MS
    raw = await Engine(TimescaleStorage(loaded)).range(query, start, end, HOUR_MS)
    for _ in range(2):
        _assert_close(await Engine(storage).range(query, start, end, HOUR_MS), raw, 1e-9)
    assert storage.splits == {1: 1, 3: 1}
