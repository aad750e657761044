"""Random SIGKILL soak with two replicas (outside the default suite: ``-m slow``)."""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
from pathlib import Path

import nats
import pytest
from nats.js.errors import NotFoundError

from shared.devenv.nats import NatsServer
from tests.ingest.helpers import audit, make_batch, publish, spawn_ingest, wait_for, write_config

BATCHES = 300
SERIES = 50


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_two_replicas_killed_at_random_store_every_sample_once(
    tmp_path: Path, nats_server: NatsServer, fresh_db: str
) -> None:
    rng = random.Random(4)
    cfg = write_config(tmp_path / "v.yaml", nats_server.url, fresh_db, fetch_batch=8)
    procs: list[subprocess.Popen[bytes]] = [
        spawn_ingest(cfg, tmp_path / f"r{i}.log") for i in range(2)
    ]
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    try:

        async def stream_ready() -> bool:
            try:
                await js.stream_info("VIGIL_METRICS")
            except NotFoundError:
                return False
            return True

        await wait_for(stream_ready, what="stream provisioned")
        kills = 0
        for seq in range(BATCHES):
            await publish(js, f"h{seq % 7}", make_batch(f"a{seq % 7}", seq, series=SERIES))
            if seq % 20 == 19:
                victim = rng.randrange(2)
                procs[victim].send_signal(signal.SIGKILL)
                procs[victim].wait(10)
                kills += 1
                await asyncio.sleep(rng.random())
                procs[victim] = spawn_ingest(cfg, tmp_path / f"r{victim}.log")

        async def complete() -> bool:
            try:
                return (await audit(fresh_db))[0] >= BATCHES * SERIES
            except Exception:
                return False

        await wait_for(complete, limit_s=300, what="every sample stored")
        assert kills >= 10
        assert await audit(fresh_db) == (BATCHES * SERIES, BATCHES * SERIES)
    finally:
        await nc.close()
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
