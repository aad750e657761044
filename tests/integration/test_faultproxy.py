"""The fault proxy makes real outages between a real client and a real nats-server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from shared.bus.connect import connect
from shared.config.models import NatsConfig
from shared.devenv.nats import NatsServer
from tests.fixtures.faultproxy import FaultProxy


async def wait_until(cond: Callable[[], bool], seconds: float = 15) -> bool:
    for _ in range(int(seconds / 0.05)):
        if cond():
            return True
        await asyncio.sleep(0.05)
    return cond()


async def test_cut_disconnects_and_restore_reconnects(
    nats_server: NatsServer, fault_proxy: Callable[[str, int], FaultProxy]
) -> None:
    proxy = fault_proxy("127.0.0.1", nats_server.port)
    cfg = NatsConfig(servers=[f"nats://{proxy.address}"], reconnect_wait=0.1)
    nc = await connect(cfg, name="t")
    try:
        await nc.flush(timeout=5)
        proxy.cut()
        assert await wait_until(lambda: not nc.is_connected)
        proxy.restore()
        assert await wait_until(lambda: nc.is_connected)
        await nc.flush(timeout=5)
    finally:
        await nc.close()


async def test_drop_stalls_traffic_without_closing(
    nats_server: NatsServer, fault_proxy: Callable[[str, int], FaultProxy]
) -> None:
    proxy = fault_proxy("127.0.0.1", nats_server.port)
    nc = await connect(NatsConfig(servers=[f"nats://{proxy.address}"]), name="t")
    try:
        proxy.drop()
        try:
            await nc.flush(timeout=0.3)
            stalled = False
        except Exception:
            stalled = True
        assert stalled
        proxy.restore()
    finally:
        await nc.close()
