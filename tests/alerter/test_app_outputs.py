"""The alerter's other outputs: up synthesis, ALERTS series, KV state, reload, /metrics."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import yaml
from nats.aio.client import Client
from nats.js.api import ConsumerConfig, DeliverPolicy

from shared import hosttoken
from shared.codec import decode_batch, encode_message
from shared.wire import AlertStatus, DecodeLimits
from tests.alerter.livehelp import (
    NAMES,
    Events,
    Publisher,
    make_app,
    now_ms,
    until,
    write_config,
)

HOST_DOWN = """
groups:
  - name: hosts
    rules:
      - alert: HostDown
        expr: up == 0
"""

HIGH_WITH_RECORD = """
groups:
  - name: g
    rules:
      - record: temp:doubled
        expr: temp * 2
      - alert: High
        expr: temp:doubled > 10
"""


async def _http(port: int, method: str, path: str) -> tuple[int, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = data.decode().partition("\r\n\r\n")
    return int(head.split(" ")[1]), body


async def test_silent_known_host_gets_up_zero_and_kv_agents_entry(
    tmp_path: Path, nats_url: str, nats_client: Client
) -> None:
    config = write_config(tmp_path, nats_url, HOST_DOWN, interval="1s")
    doc = yaml.safe_load(config.read_text())
    doc["alerter"]["up_timeout"] = "1s"
    config.write_text(yaml.safe_dump(doc))
    app = make_app(config)
    await app.start()
    events = Events()
    await events.start(nats_client)
    try:
        await until(app.ready, "replay caught up")
        await Publisher(nats_client).gauge("node_load1", now_ms(), 0.5)
        await until(lambda: len(events.events) >= 1, "HostDown after the host went silent")
        kv = await nats_client.jetstream().key_value(NAMES.kv_agents)
        entry = await kv.get(hosttoken.encode("web1"))
    finally:
        await app.stop()
        await events.stop()
    assert events.events[0].labels["alertname"] == "HostDown"
    assert events.events[0].labels["host"] == "web1"
    assert json.loads(entry.value or b"{}")["host"] == "web1"


async def test_alerts_and_recorded_series_are_published_and_state_saved(
    tmp_path: Path, nats_url: str, nats_client: Client
) -> None:
    app = make_app(write_config(tmp_path, nats_url, HIGH_WITH_RECORD))
    await app.start()
    events = Events()
    await events.start(nats_client)
    js = nats_client.jetstream()
    own = await js.subscribe(
        NAMES.metrics("vigil-alerter"),
        ordered_consumer=True,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
    )
    try:
        await until(app.ready, "replay caught up")
        await Publisher(nats_client).gauge("temp", now_ms(), 7.0)
        await until(lambda: len(events.events) >= 1, "firing on the recorded series")
        names: set[tuple[str, str]] = set()
        while not {"temp:doubled", "ALERTS", "ALERTS_FOR_STATE"} <= {n for n, _ in names}:
            msg = await own.next_msg(timeout=10)
            batch = decode_batch(msg.data, limits=DecodeLimits(), now_ms=now_ms())
            names |= {(s.name, s.labels.get("exported_host", "")) for s in batch.series}
        status = AlertStatus(
            fingerprint=events.events[0].fingerprint,
            state="suppressed",
            at=events.events[0].starts_at,
        )
        await nats_client.publish(NAMES.alertstatus, encode_message(status))
        await nats_client.flush()
        await until(lambda: events.events[0].fingerprint in app.statuses, "status kept")
        kv = await js.key_value(NAMES.kv_alert_state)
        saved = json.loads((await kv.get(app.groups[0].kv_key)).value or b"{}")
    finally:
        await app.stop()
        await events.stop()
    assert ("ALERTS", "web1") in names  # the alert's host label travels as exported_host
    assert saved["rules"]["1:High"]["alerts"][0]["state"] == "firing"


async def test_reload_rereads_rules_and_metrics_are_served(
    tmp_path: Path, nats_url: str, nats_client: Client
) -> None:
    config = write_config(tmp_path, nats_url, HIGH_WITH_RECORD)
    app = make_app(config)
    await app.start()
    try:
        await until(app.ready, "replay caught up")
        (tmp_path / "rules.yml").write_text(HOST_DOWN)
        status, _ = await _http(app.admin_port, "POST", "/-/reload")
        assert status == 200
        assert [g.rules.name for g in app.groups] == ["hosts"]
        # `up` was not held: held back until a replay of the stream has filled its window
        await until(lambda: app.groups[0].not_before_ms == 0, "the reloaded group warm")
        (tmp_path / "rules.yml").write_text(HOST_DOWN.replace("up == 0", "up < 1"))
        status, _ = await _http(app.admin_port, "POST", "/-/reload")
        assert status == 200
        assert app.groups[0].not_before_ms == 0  # same selector, already held: warm at once
        (tmp_path / "rules.yml").write_text(
            "groups: [{name: x, rules: [{alert: A, expr: 'sum('}]}]"
        )
        status, _ = await _http(app.admin_port, "POST", "/-/reload")
        assert status == 500
        assert [g.rules.name for g in app.groups] == ["hosts"]  # a failed reload keeps the rules
        status, body = await _http(app.admin_port, "GET", "/metrics")
        assert status == 200
        for name in (
            "vigil_alerter_group_evaluation_duration_seconds",
            "vigil_alerter_series_held",
            "vigil_alerter_samples_held",
            "vigil_alerter_events_published_total",
        ):
            assert name in body
        status, _ = await _http(app.admin_port, "GET", "/healthz")
        assert status == 200
    finally:
        await app.stop()


async def test_active_alert_is_resent_with_ends_at_moving_ahead(
    tmp_path: Path, nats_url: str, nats_client: Client
) -> None:
    config = write_config(tmp_path, nats_url, HIGH_WITH_RECORD, interval="1s")
    doc = yaml.safe_load(config.read_text())
    doc["alerting"]["resend_delay"] = "1s"
    config.write_text(yaml.safe_dump(doc))
    app = make_app(config)
    await app.start()
    events = Events()
    await events.start(nats_client)
    try:
        await until(app.ready, "replay caught up")
        await Publisher(nats_client).gauge("temp", now_ms(), 7.0)
        await until(lambda: len(events.events) >= 2, "a re-send after resend_delay")
    finally:
        await app.stop()
        await events.stop()
    first, again = events.events[:2]
    assert (first.status, again.status) == ("firing", "firing")
    assert first.fingerprint == again.fingerprint
    assert first.starts_at == again.starts_at
    assert again.ends_at > first.ends_at
