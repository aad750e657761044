"""A notifier (``App``) on a real nats-server, its API on a loopback port, and a webhook sink."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from notifier.app import App, Settings
from notifier.delivery import RetryPolicy
from shared.config.loader import load_config
from shared.devenv.nats import NatsServer
from tests.notifier.hookserver import HookServer


def write_config(tmp_path: Path, nats_url: str, am: dict[str, Any]) -> Path:
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(am), encoding="utf-8")
    path = tmp_path / "vigil.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "nats": {"servers": [nats_url]},
                "alerting": {
                    "alertmanager_config": "alertmanager.yml",
                    "external_url": "http://vigil.example",
                },
            }
        ),
        encoding="utf-8",
    )
    return path


def am_config(hook_url: str, **route: Any) -> dict[str, Any]:
    return {
        "route": {
            "receiver": "hook",
            "group_by": ["alertname"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "1h",
            "routes": [{"matchers": ['team="db"'], "receiver": "db"}],
            **route,
        },
        "receivers": [
            {"name": "hook", "webhook_configs": [{"url": hook_url}]},
            {"name": "db", "webhook_configs": [{"url": hook_url}]},
        ],
        "inhibit_rules": [
            {
                "source_matchers": ['severity="critical"'],
                "target_matchers": ['severity="warning"'],
                "equal": ["instance"],
            }
        ],
    }


@pytest.fixture
async def hook() -> AsyncIterator[HookServer]:
    server = await HookServer().start()
    yield server
    await server.stop()


AppFactory = Callable[..., Awaitable[App]]


@pytest.fixture
async def make_app(nats_server: NatsServer, tmp_path: Path) -> AsyncIterator[AppFactory]:
    apps: list[App] = []

    async def make(am: dict[str, Any], replica: str = "r1") -> App:
        path = write_config(tmp_path, nats_server.url, am)
        app = App(
            load_config(path, env={}),
            Settings(
                listen_address="127.0.0.1:0",
                replica=replica,
                tick=0.05,
                policy=RetryPolicy(initial=0.05, attempt_timeout=2.0),
            ),
        )
        await app.start()
        apps.append(app)
        await eventually(app.ready)
        return app

    yield make
    for app in apps:
        await app.stop()


async def eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while True:
            if check():
                return
            await asyncio.sleep(0.05)  # bounded polling: state owned by another task


async def eventually_async(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while True:
            if await check():
                return
            await asyncio.sleep(0.05)  # bounded polling: state owned by another task
