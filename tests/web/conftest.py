"""Web test fixtures: a migrated database per module, a pool per test, data loaders.

The schema is made by ingest's own ``prepare_database`` (tests are not a
service, so they may import ingest; ``web/`` never does). Data goes in with
plain SQL, the way ingest stores it: ``series`` rows (labels without
``__name__``, which is the ``metric`` column) and ``samples`` rows.
"""

from __future__ import annotations

import asyncio
import json
import math
import struct
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import numpy as np
import pytest
import yaml

from ingest.prepare import prepare_database
from ingest.seriesid import series_hash
from shared.config.loader import LoadedConfig, load_config
from shared.config.models import StorageConfig
from shared.promql.errors import BadData, ExecutionError, QueryTimeout, TooManySamples
from shared.promql.result import Result, Sample, SeriesResult
from tests.fixtures.timescale import run_sync
from web.app import App

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T0 = 1_700_000_000_000


@pytest.fixture(scope="module")
def migrated_db(timescale_db: str) -> str:
    run_sync(prepare_database(timescale_db, StorageConfig()))
    return timescale_db


@pytest.fixture
async def pool(migrated_db: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(migrated_db, min_size=0, max_size=4)
    try:
        yield p
    finally:
        await p.close()


async def add_series(conn: asyncpg.Connection, metric: str, labels: Mapping[str, str]) -> int:
    labels = dict(sorted(labels.items()))
    sid: int = await conn.fetchval(
        "INSERT INTO series (metric, labels, hash) VALUES ($1, $2::jsonb, $3)"
        " ON CONFLICT (hash) DO UPDATE SET last_seen = now() RETURNING id",
        metric,
        json.dumps(labels),
        series_hash(metric, labels),
    )
    return sid


async def add_samples(
    conn: asyncpg.Connection, series_id: int, points: Sequence[tuple[int, float]]
) -> None:
    await conn.execute(
        "INSERT INTO samples (time, series_id, value)"
        " SELECT t, $1, v FROM unnest($2::timestamptz[], $3::float8[]) AS u(t, v)"
        " ON CONFLICT DO NOTHING",
        series_id,
        [EPOCH + timedelta(milliseconds=t) for t, _ in points],
        [v for _, v in points],
    )


def float_from_bits(bits: int) -> float:
    value: float = struct.unpack("<d", struct.pack("<Q", bits))[0]
    return value


def bits_of(value: float) -> int:
    bits: int = struct.unpack("<Q", struct.pack("<d", value))[0]
    return bits


def alerting_config(tmp_path: Path, nats_url: str, db_url: str, rules: str) -> Path:
    """One config file for an alerter and a web App together: ``rules`` in
    ``rules.yml``, evaluated hourly (events drive evaluations), both on free ports."""
    (tmp_path / "rules.yml").write_text(rules, encoding="utf-8")
    doc: dict[str, Any] = {
        "nats": {"servers": [nats_url]},
        "storage": {"database_url": db_url},
        "alerting": {"rule_files": ["rules.yml"], "evaluation_interval": "1h"},
        "alerter": {"listen_address": "127.0.0.1:0", "debounce": "5ms"},
        "visualization": {"listen_address": "127.0.0.1:0"},
        "log": {"level": "warning", "format": "json"},
    }
    path = tmp_path / "vigil.yml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def web_config(tmp_path: Path, db_url: str, **visualization: object) -> LoadedConfig:
    path = tmp_path / "vigil.yaml"
    doc = {
        "storage": {"database_url": db_url},
        "visualization": {"listen_address": "127.0.0.1:0", **visualization},
        "log": {"level": "warning", "format": "json"},
    }
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return load_config(path, env={})


@dataclass
class FakeEngine:
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    async def instant(self, query: str, time_ms: int) -> Result:
        self.calls.append(("instant", query, time_ms))
        return await self._answer(query, time_ms)

    async def range(self, query: str, start_ms: int, end_ms: int, step_ms: int) -> Result:
        self.calls.append(("range", query, start_ms, end_ms, step_ms))
        if query == "matrix":
            ts = np.arange(start_ms, end_ms + 1, step_ms, dtype=np.int64)
            vals = np.array([math.nan, math.inf, -math.inf, 1e21, 1e-7, 0.1, -0.0, 3.0])
            vs = np.resize(vals, len(ts)).astype(np.float64)
            return Result("matrix", matrix=[SeriesResult({"__name__": "m", "a": "b"}, ts, vs)])
        return await self._answer(query, end_ms)

    async def _answer(self, query: str, t: int) -> Result:
        match query:
            case "vector":
                return Result(
                    "vector",
                    vector=[
                        Sample({"__name__": "up", "host": "a"}, t, 1.0),
                        Sample({"host": "b"}, t, math.nan),
                    ],
                )
            case "scalar":
                return Result("scalar", scalar=(t, 2.5))
            case "1+1":
                return Result("scalar", scalar=(t, 2.0))
            case "string":
                return Result("string", string=(t, 'he said "hi"'))
            case "warn":
                return Result("vector", warnings=["something odd"])
            case "exec":
                raise ExecutionError("cannot evaluate: many-to-many matching not allowed")
            case "toomany":
                raise TooManySamples(
                    "query processing would load too many samples into memory in query execution"
                )
            case "timeout":
                raise QueryTimeout("query timed out in expression evaluation")
            case "slow":
                await asyncio.sleep(30)
                return Result("vector")
            case "boom":
                raise RuntimeError("kaboom")
        raise BadData(f'1:1: parse error: unknown query "{query}"')


@pytest.fixture
async def data(migrated_db: str) -> None:
    conn = await asyncpg.connect(migrated_db)
    try:
        for host, mode in (("a", "idle"), ("b", "user")):
            sid = await add_series(conn, "cpu_seconds_total", {"host": host, "mode": mode})
            await add_samples(conn, sid, [(T0 + i * 15_000, float(i)) for i in range(10)])
        sid = await add_series(conn, "up", {"host": "a", "job": "node"})
        await add_samples(conn, sid, [(T0, 1.0)])
        await conn.execute(
            "INSERT INTO metadata (metric, type, help, unit) VALUES"
            " ('cpu_seconds_total', 'counter', 'CPU time.', 'seconds'), ('up', 'gauge', 'Up.', NULL)"
            " ON CONFLICT DO NOTHING"
        )
    finally:
        await conn.close()


@dataclass
class Server:
    app: App
    engine: FakeEngine
    client: httpx.AsyncClient


@pytest.fixture
async def server(tmp_path: Path, migrated_db: str, data: None) -> AsyncIterator[Server]:
    engine = FakeEngine()
    app = App(web_config(tmp_path, migrated_db), engine=engine)
    await app.start()
    assert app.port > 0
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.port}", timeout=10) as c:
            yield Server(app, engine, c)
    finally:
        await app.stop()
