"""Helpers for ingest tests: configs, publishing agent-format batches, audits, polling."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import yaml
from nats.js import JetStreamContext

from shared.codec import encode_batch
from shared.config.loader import LoadedConfig, load_config
from shared.wire import BatchBuilder, MetricBatch, Names

REPO = Path(__file__).resolve().parents[2]


def write_config(path: Path, nats_url: str, db_url: str, **ingest: Any) -> Path:
    doc = {
        "nats": {"servers": [nats_url]},
        "storage": {"database_url": db_url, "rollup_interval": 0.2},
        "ingest": {
            "listen_address": "127.0.0.1:0",
            "fetch_timeout": 0.2,
            "ack_wait": 2,
            "retry_initial": 0.05,
            "retry_max": 0.5,
            "lag_interval": 0.5,
            **ingest,
        },
        "log": {"level": "warning", "format": "json"},
    }
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def loaded(path: Path) -> LoadedConfig:
    return load_config(path, env={})


def make_batch(
    agent: str, seq: int, *, series: int = 10, samples_per_series: int = 1, base_ms: int | None = None,
    value: Callable[[int, int], float] = lambda s, k: float(s * 1000 + k),
) -> MetricBatch:  # fmt: skip
    """``series`` series x ``samples_per_series`` samples; timestamps unique per (agent, seq)."""
    base = base_ms if base_ms is not None else int(time.time() * 1000) - 3_600_000
    b = BatchBuilder()
    for k in range(samples_per_series):
        ts = base + seq * 1000 + k
        for s in range(series):
            b.add(
                "test_metric_total", {"series": str(s), "agent": agent}, ts, value(s, k),
                type="counter", help="A test counter.",
            )  # fmt: skip
    return b.build(agent, seq)


async def publish(
    js: JetStreamContext, host: str, batch: MetricBatch | bytes, msg_id: str = ""
) -> None:
    data = batch if isinstance(batch, bytes) else encode_batch(batch)
    headers = {"Nats-Msg-Id": msg_id or (batch.msg_id if isinstance(batch, MetricBatch) else "")}
    await js.publish(Names().metrics(host), data, headers={k: v for k, v in headers.items() if v})


async def audit(db_url: str) -> tuple[int, int]:
    """(rows in samples, distinct (series_id, time))."""
    conn = await asyncpg.connect(db_url)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) AS n, count(DISTINCT (series_id, time)) AS d FROM samples"
        )
        return int(row["n"]), int(row["d"])
    finally:
        await conn.close()


async def fetchval(db_url: str, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(db_url)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def wait_for(
    check: Callable[[], Awaitable[bool]], *, limit_s: float = 30.0, what: str = ""
) -> None:
    """Poll ``check`` until true; bounded by ``limit_s`` (a failure, not a timing assertion)."""
    deadline = time.monotonic() + limit_s
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what or check}")
        await asyncio.sleep(0.1)


def spawn_ingest(config: Path, log: Path, faults: str = "") -> subprocess.Popen[bytes]:
    """``vigil-ingest`` as a process; stderr appended to ``log``."""
    env = {**os.environ, "VIGIL_FAULTS": faults}
    env.pop("VIGIL_DATABASE_URL", None)
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "ingest", "--config", str(config)],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=out,
        )  # fmt: skip
