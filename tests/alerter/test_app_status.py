"""The rules' status documents the real alerter writes to KV: health, debounce, reload."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from nats.aio.client import Client
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from alerter.status import status_key
from tests.alerter.livehelp import NAMES, Publisher, make_app, now_ms, until, write_config

RULES = """
groups:
  - name: g
    rules:
      - record: temp:doubled
        expr: temp * 2
      - alert: ManyToMany
        expr: temp + on() temp
      - alert: Hot
        expr: temp > 100
        for: 5m
  - name: other
    rules:
      - alert: Cold
        expr: temp < -100
"""


async def _doc(kv: KeyValue, key: str) -> dict[str, Any] | None:
    try:
        entry = await kv.get(key)
    except KeyNotFoundError:
        return None
    return json.loads(entry.value) if entry.value else None


async def _wait_doc(kv: KeyValue, key: str, check: Any, what: str) -> dict[str, Any]:
    for _ in range(400):
        doc = await _doc(kv, key)
        if doc is not None and check(doc):
            return doc
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def _reload(port: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    await writer.drain()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    return int(data.split(b" ")[1])


@pytest.fixture
def config(tmp_path: Path, nats_url: str) -> Path:
    path = write_config(tmp_path, nats_url, RULES)
    doc = yaml.safe_load(path.read_text())
    doc["alerter"]["status_write_interval"] = "1h"  # only first writes and health changes
    path.write_text(yaml.safe_dump(doc))
    return path


async def test_rule_health_is_written_debounced_and_removed_groups_are_deleted(
    tmp_path: Path, config: Path, nats_client: Client
) -> None:
    app = make_app(config)
    await app.start()
    kv = await nats_client.jetstream().key_value(NAMES.kv_alert_state)
    g_key = status_key(app.groups[0].rules.key)
    other_key = status_key(app.groups[1].rules.key)
    try:
        await until(app.ready, "replay caught up")
        t = now_ms()
        publisher = Publisher(nats_client)
        await publisher.gauge("temp", t, 1.0, sensor="a")
        await publisher.gauge("temp", t, 2.0, sensor="b")
        doc = await _wait_doc(
            kv, g_key, lambda d: d["rules"][1]["health"] == "err", "ManyToMany err in KV"
        )
        written = doc["last_evaluation_ms"]
        await publisher.gauge("temp", t + 2000, 3.0, sensor="a")
        await until(lambda: app.groups[0].status.last_evaluation_ms > written, "a later evaluation")
        later = await _doc(kv, g_key)
        other = await _doc(kv, other_key)
        (tmp_path / "rules.yml").write_text(RULES.split("  - name: other", maxsplit=1)[0])
        assert await _reload(app.admin_port) == 200
        gone = await _doc(kv, other_key)
        kept = await _doc(kv, g_key)
    finally:
        await app.stop()

    record, bad, hot = doc["rules"]
    assert (record["type"], record["health"], record["last_error"]) == ("recording", "ok", "")
    assert bad["health"] == "err"
    assert "many-to-many matching not allowed" in bad["last_error"]
    assert (hot["type"], hot["health"], hot["duration"]) == ("alerting", "ok", 300.0)
    assert all(r["evaluation_time_s"] > 0 and r["last_evaluation_ms"] > 0 for r in doc["rules"])
    assert doc["evaluation_time_s"] > 0
    # the second evaluation changed no health: not written within status_write_interval
    assert later is not None
    assert later["last_evaluation_ms"] == written
    assert other is not None
    assert other["name"] == "other"
    assert gone is None  # the group the reload removed
    assert kept is not None
    assert kept["rules"][1]["health"] == "err"
    # the alert-state document is still where restore and the notifier read it
    assert (await _alert_state(nats_client, app.groups[0].kv_key))["group"] == doc["group"]


async def _alert_state(nc: Client, key: str) -> dict[str, Any]:
    kv = await nc.jetstream().key_value(NAMES.kv_alert_state)
    doc: dict[str, Any] = json.loads((await kv.get(key)).value or b"{}")
    return doc


async def test_a_restart_keeps_the_saved_health_of_the_same_rules(
    config: Path, nats_client: Client
) -> None:
    app = make_app(config)
    await app.start()
    kv = await nats_client.jetstream().key_value(NAMES.kv_alert_state)
    key = status_key(app.groups[0].rules.key)
    try:
        await until(app.ready, "replay caught up")
        t = now_ms()
        await Publisher(nats_client).gauge("temp", t, 1.0, sensor="a")
        await Publisher(nats_client, host="web2").gauge("temp", t, 2.0, sensor="b")
        before = await _wait_doc(
            kv, key, lambda d: d["rules"][1]["health"] == "err", "ManyToMany err in KV"
        )
    finally:
        await app.stop()
    again = make_app(config)
    again._kv_state = kv  # the start's sync alone, without evaluations that would rewrite
    await again._sync_status()
    after = await _doc(kv, key)
    assert [r.health for r in again.groups[0].status.rules] == ["ok", "err", "ok"]
    assert after == before  # not overwritten with health unknown
