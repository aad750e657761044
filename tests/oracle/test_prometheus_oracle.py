"""Vigil's engine (in process, over ``MemoryStorage``) against a real Prometheus 2.x on
identical synthetic data; ``test_prometheus_oracle_http.py`` asks Vigil's HTTP API over
TimescaleDB the same.

The corpus (``corpus.py``) is function x data shape: counters with resets, gauges,
gaps longer than the lookback, NaN/Inf values, classic histograms, staleness markers
(through remote write), ``!=""`` and regex matchers, ``offset``, ``@`` and subqueries,
each as instant queries at several times and as range queries (aligned and unaligned).
"""

from __future__ import annotations

import random

import pytest

from shared.promql.engine import Engine
from shared.promql.memory import MemoryStorage
from tests.oracle import corpus
from tests.oracle.compare import EngineAnswerer, report, run_corpus
from tests.oracle.prometheus import MISSING_REASON, Prometheus, available

pytestmark = pytest.mark.skipif(not available(), reason=MISSING_REASON)


@pytest.fixture(scope="module")
def engine() -> Engine:
    storage = MemoryStorage()
    for labels, samples in corpus.series() + corpus.stale_series():
        storage.add_series(labels, samples)
    return Engine(storage)


async def test_engine_matches_prometheus_on_generated_corpus(
    prometheus: Prometheus, engine: Engine
) -> None:
    total, mismatches = await run_corpus(prometheus, EngineAnswerer(engine))
    unexpected = report("oracle", total, mismatches)
    assert total >= 1500
    assert (total - len(mismatches)) / total >= 0.99, "\n".join(mismatches)
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
    total, mismatches = await run_corpus(prometheus, EngineAnswerer(engine), times, windows)
    unexpected = report("oracle (random)", total, mismatches)
    assert not unexpected, "\n".join(unexpected)
