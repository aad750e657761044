"""Queries answered from rollups agree with the same queries over raw samples.

Rollups are built with ingest's own SELECTs (``ingest.rollup.aggregates``), as the
refresh jobs build them. Tolerances, stated per case:

- ``*_over_time`` (max, min, sum, count, avg): relative 1e-9 (summation order only),
  with no sample on a bucket edge (the one place where the windows differ);
- ``rate``/``increase`` of a counter scraped every 15 s (resets included), covering
  every window: relative 1e-9 (Prometheus' extrapolation is reproduced exactly);
- the same counter with up to 3 s of jitter per scrape: relative 2 % (the sample
  times are estimated from counts, see ``shared.promql.rollupfuncs``).
"""

from __future__ import annotations

import math

import asyncpg
import numpy as np
import pytest

from ingest.rollup.aggregates import COLUMNS, HOUR, MINUTE
from shared.promql.engine import Engine
from shared.promql.result import Result
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
        cols = ", ".join(COLUMNS)
        await conn.execute(f"INSERT INTO samples_1m ({cols}) {MINUTE.query()}")
        await conn.execute(f"INSERT INTO samples_1h ({cols}) {HOUR.query()}")
    return pool


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
