"""Vigil's HTTP API over TimescaleDB against Prometheus' HTTP API, on identical data.

The corpus is written to a real TimescaleDB as ingest stores it (``series`` and
``samples``, every value bit for bit: NaN payloads, ±Inf and the staleness markers
that Prometheus received through remote write), ``vigil-web``'s ``App`` serves it with
rollups off (the default), and each corpus query goes to both servers' HTTP APIs as a
POST form, instant and range, the answers compared as the engine oracle compares them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from ingest.prepare import prepare_database
from shared.config.models import StorageConfig
from tests.fixtures.timescale import run_sync
from tests.oracle import corpus
from tests.oracle.compare import HttpAnswerer, report, run_corpus
from tests.oracle.prometheus import MISSING_REASON, Prometheus, available
from tests.web.conftest import add_samples, add_series, web_config
from web.app import App

pytestmark = [pytest.mark.skipif(not available(), reason=MISSING_REASON), pytest.mark.timescale]


@pytest.fixture(scope="module")
def corpus_db(timescale_db: str) -> str:
    async def load() -> None:
        await prepare_database(timescale_db, StorageConfig())
        conn = await asyncpg.connect(timescale_db)
        try:
            for labels, samples in corpus.series() + corpus.stale_series():
                rest = {k: v for k, v in labels.items() if k != "__name__"}
                sid = await add_series(conn, labels["__name__"], rest)
                await add_samples(conn, sid, samples)
            await conn.execute("ANALYZE")
        finally:
            await conn.close()

    run_sync(load())
    return timescale_db


@pytest.fixture
async def vigil(tmp_path: Path, corpus_db: str) -> AsyncIterator[HttpAnswerer]:
    app = App(web_config(tmp_path, corpus_db))
    await app.start()
    try:
        base = f"http://127.0.0.1:{app.port}"
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            yield HttpAnswerer(client)
    finally:
        await app.stop()


async def test_http_api_over_timescaledb_matches_prometheus_on_generated_corpus(
    prometheus: Prometheus, vigil: HttpAnswerer
) -> None:
    # The data is there on both sides (an empty pair would agree on everything).
    assert await vigil.instant("count(oc_counter)", 1_700_001_800_000) == (
        "vector",
        {(): [(1_700_001_800_000, 6.0)]},
    )
    total, mismatches = await run_corpus(prometheus, vigil)
    unexpected = report("oracle over HTTP and TimescaleDB", total, mismatches)
    assert total >= 1500
    assert (total - len(mismatches)) / total >= 0.99, "\n".join(mismatches)
    assert not unexpected, "\n".join(unexpected)
