"""Vigil's engine against a real Prometheus 2.x on identical synthetic data.

The corpus (``corpus.py``) is function x data shape: counters with resets, gauges,
gaps longer than the lookback, NaN/Inf values, classic histograms, staleness markers
(through remote write), ``!=""`` and regex matchers, ``offset``, ``@`` and subqueries,
each as instant queries at several times and as range queries (aligned and unaligned).
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.promql.engine import Engine
from shared.promql.memory import MemoryStorage
from tests.oracle import corpus
from tests.oracle.compare import compare_instant, compare_range
from tests.oracle.prometheus import (
    MISSING_REASON,
    Prometheus,
    available,
    backfill,
    running_prometheus,
)
from tests.oracle.remote_write import push

pytestmark = pytest.mark.skipif(not available(), reason=MISSING_REASON)

KNOWN_MISMATCHES = {
    "holt_winters(oc_gauge[10m], 0.5, 0.5)": "promql-parser does not know holt_winters: bad_data",
}


@pytest.fixture(scope="module")
def prometheus() -> Iterator[Prometheus]:
    with tempfile.TemporaryDirectory(prefix="vigil-prometheus-") as tmp:
        data = Path(tmp) / "data.om"
        data.write_text(corpus.openmetrics(corpus.series()))
        tsdb = Path(tmp) / "tsdb"
        backfill(data, tsdb)
        with running_prometheus(tsdb) as prom:
            push(prom.base, corpus.stale_series())
            yield prom


@pytest.fixture(scope="module")
def engine() -> Engine:
    storage = MemoryStorage()
    for labels, samples in corpus.series() + corpus.stale_series():
        storage.add_series(labels, samples)
    return Engine(storage)


Window = tuple[int, int, int]


async def _run_corpus(
    prom: Prometheus,
    engine: Engine,
    times: list[int] | None = None,
    windows: list[Window] | None = None,
) -> tuple[int, list[str]]:
    total, mismatches = 0, []
    plans = [
        (q, times or corpus.INSTANT_TIMES, windows or corpus.RANGES_QUERIES)
        for q in corpus.queries()
    ]
    plans += [
        (q, times or corpus.STALE_TIMES, windows or corpus.STALE_RANGES)
        for q in corpus.STALE_QUERIES
    ]
    for query, at_times, ranges in plans:
        for t in at_times:
            total += 1
            if (problem := await compare_instant(prom, engine, query, t)) is not None:
                mismatches.append(f"instant {query} @ {t}: {problem}")
        for window in ranges:
            total += 1
            if (problem := await compare_range(prom, engine, query, window)) is not None:
                mismatches.append(f"range {query} {list(window)}: {problem}")
    return total, mismatches


async def test_engine_matches_prometheus_on_generated_corpus(
    prometheus: Prometheus, engine: Engine
) -> None:
    total, mismatches = await _run_corpus(prometheus, engine)
    unexpected = [m for m in mismatches if not any(k in m for k in KNOWN_MISMATCHES)]
    rate = (total - len(mismatches)) / total
    print(f"oracle: {total - len(mismatches)}/{total} match ({rate:.2%})")
    for m in mismatches:
        print("  mismatch:", m)
    assert total >= 1500
    assert rate >= 0.99, "\n".join(mismatches)
    assert not unexpected, "\n".join(unexpected)


async def test_prometheus_and_engine_agree_on_known_values(
    prometheus: Prometheus, engine: Engine
) -> None:
    # A guard that the oracle really holds the data (an empty Prometheus would make
    # every "both empty" comparison pass).
    answer = prometheus.api("/api/v1/query", {"query": "count(oc_counter)", "time": "1700001800"})
    assert answer["data"]["result"][0]["value"][1] == "6"
    result = await engine.instant("count(oc_counter)", 1_700_001_800_000)
    assert result.vector[0].v == 6


@pytest.mark.slow
async def test_engine_matches_prometheus_at_random_times_and_steps(
    prometheus: Prometheus, engine: Engine
) -> None:
    rng = random.Random(7)
    times = [corpus.T0 + rng.randint(-600_000, 100 * 60_000) for _ in range(20)]
    windows = []
    for _ in range(8):
        start = corpus.T0 + rng.randint(-600_000, 60 * 60_000)
        step = rng.choice([1_000, 7_000, 15_000, 61_000, 300_000])
        windows.append((start, start + rng.randint(0, 50 * 60_000), step))
    total, mismatches = await _run_corpus(prometheus, engine, times, windows)
    unexpected = [m for m in mismatches if not any(k in m for k in KNOWN_MISMATCHES)]
    print(f"oracle (random): {total - len(mismatches)}/{total} match")
    assert not unexpected, "\n".join(unexpected)
