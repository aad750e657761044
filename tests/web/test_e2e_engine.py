"""End to end: SQL-loaded samples, the real PromQL engine, the HTTP API over real HTTP.

Skipped until ``shared/promql/engine.py`` exists (it is being written).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from shared.wire import STALE_NAN_BITS
from tests.web.conftest import T0, add_samples, add_series, float_from_bits, web_config
from web.app import App
from web.storage_tsdb import TimescaleStorage

pytest.importorskip("shared.promql.engine")

pytestmark = pytest.mark.timescale

S0 = T0 // 1000


@pytest.fixture(scope="module")
def loaded_db(migrated_db: str) -> str:
    from tests.fixtures.timescale import run_sync

    async def load() -> None:
        conn = await asyncpg.connect(migrated_db)
        try:
            req = await add_series(conn, "req_total", {"host": "a", "path": "/x"})
            await add_samples(conn, req, [(T0 + i * 15_000, i * 15.0) for i in range(41)])
            for host, value in (("a", 20.0), ("b", 30.0)):
                sid = await add_series(conn, "temp", {"host": host})
                await add_samples(conn, sid, [(T0 + i * 15_000, value) for i in range(41)])
            gone = await add_series(conn, "gone", {"host": "a"})
            stale = float_from_bits(STALE_NAN_BITS)
            await add_samples(
                conn, gone, [*((T0 + i * 15_000, 1.0) for i in range(5)), (T0 + 75_000, stale)]
            )
            odd = await add_series(conn, "temp", {"host": 'it\'s "x" \\ $1'})
            await add_samples(conn, odd, [(T0 + i * 15_000, 99.0) for i in range(41)])
        finally:
            await conn.close()

    run_sync(load())
    return migrated_db


@pytest.fixture
async def client(tmp_path: Path, loaded_db: str) -> AsyncIterator[httpx.AsyncClient]:
    app = App(web_config(tmp_path, loaded_db))
    await app.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.port}", timeout=30) as c:
            yield c
    finally:
        await app.stop()


async def instant(c: httpx.AsyncClient, query: str, t: float) -> Any:
    r = await c.post("/api/v1/query", data={"query": query, "time": str(t)})
    assert r.status_code == 200, r.text
    return r.json()["data"]


def by_host(data: Any) -> dict[str, str]:
    return {s["metric"].get("host", ""): s["value"][1] for s in data["result"]}


async def test_instant_selector(client: httpx.AsyncClient) -> None:
    data = await instant(client, 'temp{host=~"a|b"}', S0 + 300)
    assert data["resultType"] == "vector"
    assert by_host(data) == {"a": "20", "b": "30"}
    assert data["result"][0]["metric"]["__name__"] == "temp"


async def test_aggregation(client: httpx.AsyncClient) -> None:
    data = await instant(client, 'sum(temp{host!~"it.*"})', S0 + 300)
    assert [s["value"][1] for s in data["result"]] == ["50"]


async def test_rate_of_a_linear_counter(client: httpx.AsyncClient) -> None:
    data = await instant(client, "rate(req_total[1m])", S0 + 300)
    (sample,) = data["result"]
    assert math.isclose(float(sample["value"][1]), 1.0, rel_tol=1e-9)
    assert "__name__" not in sample["metric"]


async def test_range_query(client: httpx.AsyncClient) -> None:
    r = await client.get(
        "/api/v1/query_range",
        params={"query": 'temp{host="b"}', "start": S0, "end": S0 + 120, "step": "30s"},
    )
    assert r.status_code == 200, r.text
    (series,) = r.json()["data"]["result"]
    assert series["values"] == [[S0 + k * 30, "30"] for k in range(5)]


async def test_staleness_marker_ends_a_series(client: httpx.AsyncClient) -> None:
    assert by_host(await instant(client, "gone", S0 + 60)) == {"a": "1"}
    assert (await instant(client, "gone", S0 + 90))["result"] == []


async def test_hostile_label_value_through_promql(client: httpx.AsyncClient) -> None:
    data = await instant(client, 'temp{host="it\'s \\"x\\" \\\\ $1"}', S0 + 300)
    assert by_host(data) == {'it\'s "x" \\ $1': "99"}


async def test_no_match_is_an_empty_vector(client: httpx.AsyncClient) -> None:
    assert (await instant(client, 'temp{host="zzz"}', S0 + 300))["result"] == []


async def test_parse_error_is_bad_data(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/query", params={"query": "sum(", "time": S0})
    assert r.status_code == 400
    assert r.json()["errorType"] == "bad_data"


async def test_scalar_health_check(client: httpx.AsyncClient) -> None:
    data = await instant(client, "1+1", S0)
    assert data == {"resultType": "scalar", "result": [S0, "2"]}


HOUR_MS = 3_600_000
ROLL_BASE = (T0 // HOUR_MS) * HOUR_MS - 10 * 86_400_000
"""Ten days before T0, on an hour: old enough that the rollups are served."""


@pytest.fixture(scope="module")
def rolled_db(loaded_db: str) -> str:
    """Six hours of a wobbly gauge, rolled up by ingest's own rollup SELECTs."""
    from ingest.rollup.aggregates import COLUMNS, HOUR, MINUTE
    from tests.fixtures.timescale import run_sync

    async def load() -> None:
        conn = await asyncpg.connect(loaded_db)
        try:
            sid = await add_series(conn, "wobble", {"host": "r"})
            points = [
                (ROLL_BASE + i * 10_000 + 3_000, math.sin(i / 7.0) * 100 + (i % 13))
                for i in range(6 * 360)
            ]
            await add_samples(conn, sid, points)
            cols = ", ".join(COLUMNS)
            await conn.execute(
                f"INSERT INTO samples_1m ({cols}) {MINUTE.query('series_id = $1')}", sid
            )
            await conn.execute(
                f"INSERT INTO samples_1h ({cols}) {HOUR.query('series_id = $1')}", sid
            )
        finally:
            await conn.close()

    run_sync(load())
    return loaded_db


@pytest.mark.parametrize("func", ["max_over_time", "min_over_time", "sum_over_time"])
@pytest.mark.parametrize(("window", "step"), [("1h", "1h"), ("10m", "5m")])
async def test_rollups_answer_like_raw_data(
    tmp_path: Path, rolled_db: str, func: str, window: str, step: str
) -> None:
    params = {
        "query": f"{func}(wobble[{window}])",
        "start": str(ROLL_BASE // 1000 + 3600),
        "end": str(ROLL_BASE // 1000 + 6 * 3600),
        "step": step,
    }
    answers = []
    for rollups in (False, True):
        app = App(web_config(tmp_path, rolled_db, query_rollups=rollups))
        await app.start()
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.port}") as c:
                r = await c.get("/api/v1/query_range", params=params)
            assert isinstance(app.state.storage, TimescaleStorage)
            served = app.state.storage.served
            table = "samples_1h" if window == step == "1h" else "samples_1m"
            column = func.removesuffix("_over_time")
            assert served == ({f"{table}.{column}": 1} if rollups else {"raw": 1})
        finally:
            await app.stop()
        assert r.status_code == 200, r.text
        (series,) = r.json()["data"]["result"]
        answers.append(series["values"])
    raw, rolled = answers
    assert [t for t, _ in raw] == [t for t, _ in rolled]
    for (_, a), (_, b) in zip(raw, rolled, strict=True):
        assert math.isclose(float(a), float(b), rel_tol=1e-9), (a, b)


async def test_max_samples_limit_answers_like_prometheus(tmp_path: Path, loaded_db: str) -> None:
    app = App(web_config(tmp_path, loaded_db, query_max_samples=10))
    await app.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.port}") as c:
            r = await c.get("/api/v1/query", params={"query": "temp[10m]", "time": S0 + 600})
    finally:
        await app.stop()
    assert r.status_code == 422
    body = r.json()
    assert body["errorType"] == "execution"
    assert "too many samples" in body["error"]
