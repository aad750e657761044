"""``vigil-notifier`` as a process: starts, delivers, reloads on SIGHUP, stops on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml
from nats.aio.client import Client

from notifier.__main__ import settings_from_config
from shared.codec import encode_message
from shared.config.loader import load_config
from shared.devenv.nats import NatsServer
from shared.wire import AlertEvent, Names
from tests.notifier.hookserver import HookServer


@pytest.fixture
async def hook() -> AsyncIterator[HookServer]:
    server = await HookServer().start()
    yield server
    await server.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_settings_come_from_the_notifier_section_and_the_environment() -> None:
    s = settings_from_config(
        load_config(
            None,
            {
                "VIGIL_NOTIFIER__LISTEN_ADDRESS": "0.0.0.0:9999",
                "VIGIL_NOTIFIER__REPLICA": "n1",
                "VIGIL_NOTIFIER__ALLOW_NETWORKS": '["169.254.169.254/32", "metadata"]',
                "VIGIL_NOTIFIER__REPLAY": "15m",
            },
        )
    )
    assert (s.listen_address, s.replica, s.replay) == ("0.0.0.0:9999", "n1", 900.0)
    assert s.allow_networks == ["169.254.169.254/32", "metadata"]


async def _get(url: str, within: float = 15.0) -> httpx.Response:
    async with asyncio.timeout(within), httpx.AsyncClient() as client:
        while True:
            try:
                return await client.get(url)
            except httpx.TransportError:
                await asyncio.sleep(0.1)


async def test_process_delivers_reloads_and_stops_cleanly(
    tmp_path: Path, nats_server: NatsServer, nats_client: Client, hook: HookServer
) -> None:
    am = {
        "route": {"receiver": "hook", "group_wait": "0s", "group_by": ["alertname"]},
        "receivers": [{"name": "hook", "webhook_configs": [{"url": hook.url()}]}],
    }
    (tmp_path / "am.yml").write_text(yaml.safe_dump(am))
    config = tmp_path / "vigil.yaml"
    config.write_text(
        yaml.safe_dump(
            {"nats": {"servers": [nats_server.url]}, "alerting": {"alertmanager_config": "am.yml"}}
        )
    )
    port = _free_port()
    env = {**os.environ, "VIGIL_NOTIFIER__LISTEN_ADDRESS": f"127.0.0.1:{port}"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "notifier", "--config", str(config), env=env
    )
    try:
        assert (await _get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
        now = datetime.now(UTC)
        event = AlertEvent(
            labels={"alertname": "Down"},
            starts_at=now,
            ends_at=now + timedelta(minutes=5),
            status="firing",
        )
        await nats_client.jetstream().publish(Names().alerts("g"), encode_message(event))
        [req] = await hook.wait_for(1, within=15)
        assert req.json()["groupKey"] == '{}:{alertname="Down"}'
        (tmp_path / "am.yml").write_text("route: {receiver: nope}\n")
        proc.send_signal(signal.SIGHUP)
        metrics = ""
        async with asyncio.timeout(15):
            while "vigil_config_last_reload_successful 0.0" not in metrics:
                metrics = (await _get(f"http://127.0.0.1:{port}/metrics")).text
                await asyncio.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            code = await proc.wait()
    assert code == 0
