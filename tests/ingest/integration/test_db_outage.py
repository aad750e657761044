"""The database goes away under load and comes back: nothing lost, ingest keeps running."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import nats
import pytest

from ingest.app import App
from shared.devenv.databases import create_database
from shared.devenv.nats import NatsServer
from shared.devenv.procs import free_port
from shared.devenv.rootfs import ensure_rootfs
from shared.devenv.timescale import LocalTimescale
from tests.fixtures.faultproxy import FaultProxy
from tests.ingest.helpers import audit, loaded, make_batch, publish, wait_for, write_config


async def test_database_cut_during_load_loses_nothing(
    tmp_path: Path,
    nats_server: NatsServer,
    fresh_db: str,
    fault_proxy: Callable[[str, int], FaultProxy],
) -> None:
    parts = urlsplit(fresh_db)
    proxy = fault_proxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    via_proxy = urlunsplit(parts._replace(netloc=f"postgres@{proxy.address}"))
    app = App(loaded(write_config(tmp_path / "v.yaml", nats_server.url, via_proxy)))
    await app.start()
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    try:
        await wait_for(lambda: asyncio.sleep(0, app.ready()), what="ingest ready")
        for seq in range(5):
            await publish(js, "h", make_batch("a", seq))

        async def stored(n: int) -> Callable[[], Awaitable[bool]]:
            async def check() -> bool:
                return (await audit(fresh_db))[0] == n

            return check

        await wait_for(await stored(50), what="first half stored")
        proxy.cut()
        for seq in range(5, 15):
            await publish(js, "h", make_batch("a", seq))

        async def failing() -> bool:
            return sum(s.value for m in app.metrics.write_errors.collect() for s in m.samples
                       if s.name.endswith("_total")) > 1  # fmt: skip

        await wait_for(failing, what="writes failing while the database is cut")
        proxy.restore()
        await wait_for(await stored(150), limit_s=60, what="everything stored after recovery")
        assert await audit(fresh_db) == (150, 150)
        assert app.ready()
    finally:
        await nc.close()
        await app.stop()


@pytest.mark.skipif(
    bool(os.environ.get("VIGIL_TEST_DATABASE_URL")),
    reason="restarts a database server of its own; an external server cannot be restarted here",
)
async def test_database_server_restarted_during_load_loses_nothing(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    # a fixed port: the restarted server must come back where ingest's URL points
    server = LocalTimescale(ensure_rootfs(), tmp_path / "pg", port=free_port(), fast=True)
    await asyncio.to_thread(server.start)
    try:
        db = await create_database(server.url, "restart_test")
        app = App(loaded(write_config(tmp_path / "v.yaml", nats_server.url, db)))
        await app.start()
        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        try:
            await wait_for(lambda: asyncio.sleep(0, app.ready()), what="ingest ready")
            for seq in range(5):
                await publish(js, "h", make_batch("a", seq))

            async def stored(n: int) -> bool:
                return (await audit(db))[0] == n

            await wait_for(lambda: stored(50), what="first batches stored")
            await asyncio.to_thread(server.stop)  # a real restart: every connection dies
            for seq in range(5, 15):
                await publish(js, "h", make_batch("a", seq))
            await asyncio.to_thread(server.start)  # same data dir, same port
            await wait_for(lambda: stored(150), limit_s=90, what="everything stored after restart")
            assert await audit(db) == (150, 150)
            assert app.ready()
        finally:
            await nc.close()
            await app.stop()
    finally:
        await asyncio.to_thread(server.stop)
