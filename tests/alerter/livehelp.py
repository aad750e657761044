"""Helpers for the alerter's live tests: config files, batch publishing, event collection."""

from __future__ import annotations

import asyncio
import contextlib
import time
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from nats.aio.client import Client
from nats.js.api import ConsumerConfig, DeliverPolicy
from prometheus_client import CollectorRegistry

from alerter.app import App
from shared.bus.provision import provision
from shared.codec import decode_message, encode_batch
from shared.config.loader import load_config
from shared.config.models import NatsConfig
from shared.wire import AlertEvent, MetricBatch, Names, SeriesDesc

NAMES = Names()


def write_config(tmp: Path, nats_url: str, rules: str, *, interval: str = "1h") -> Path:
    (tmp / "rules.yml").write_text(rules, encoding="utf-8")
    doc: dict[str, Any] = {
        "nats": {"servers": [nats_url]},
        "alerting": {"rule_files": ["rules.yml"], "evaluation_interval": interval},
        "alerter": {"listen_address": "127.0.0.1:0", "debounce": "5ms"},
    }
    path = tmp / "vigil.yml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def make_app(config: Path) -> App:
    return App(load_config(config), registry=CollectorRegistry())


class Publisher:
    """Publishes one-sample batches the way an agent on ``host`` does."""

    def __init__(self, nc: Client, host: str = "web1") -> None:
        self.js = nc.jetstream()
        self.host = host
        self.seq = 0

    async def gauge(self, name: str, t_ms: int, value: float, **labels: str) -> None:
        batch = MetricBatch(
            f"test-{self.host}",
            self.seq,
            [SeriesDesc(name, dict(labels))],
            array("I", [0]),
            array("q", [t_ms]),
            array("d", [value]),
        )
        self.seq += 1
        await self.js.publish(
            NAMES.metrics(self.host), encode_batch(batch), headers={"Nats-Msg-Id": batch.msg_id}
        )


class Events:
    """Every alert event on the ALERTS stream, from its start."""

    def __init__(self) -> None:
        self.events: list[AlertEvent] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self, nc: Client) -> None:
        await provision(nc.jetstream(), NatsConfig())
        sub = await nc.jetstream().subscribe(
            NAMES.alerts_wildcard,
            ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
        )

        async def run() -> None:
            async for msg in sub.messages:
                self.events.append(decode_message(msg.data, AlertEvent))

        self._task = asyncio.create_task(run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def until(check: Callable[[], bool], what: str, within: float = 20.0) -> None:
    """Poll ``check`` until true; fail naming ``what`` after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def now_ms() -> int:
    return time.time_ns() // 1_000_000
