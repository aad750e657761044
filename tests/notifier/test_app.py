"""The notifier as a service against a real nats-server and a real local webhook server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from nats.aio.client import Client

from notifier.app import App, Settings
from notifier.delivery import RetryPolicy
from shared.bus.provision import provision
from shared.codec import decode_message, encode_message
from shared.config.loader import load_config
from shared.devenv.nats import NatsServer
from shared.wire import AlertEvent, AlertStatus, Matcher, Names, NotificationResult, Silence
from tests.notifier.hookserver import Answer, HookServer, check_webhook_payload

NAMES = Names()


@pytest.fixture
async def hook() -> AsyncIterator[HookServer]:
    server = await HookServer().start()
    yield server
    await server.stop()


def _am(hook: HookServer, **route: Any) -> dict[str, Any]:
    return {
        "route": {
            "receiver": "hook",
            "group_by": ["alertname"],
            "group_wait": "500ms",
            "group_interval": "1s",
            "repeat_interval": "1h",
            **route,
        },
        "receivers": [{"name": "hook", "webhook_configs": [{"url": hook.url()}]}],
        "inhibit_rules": [
            {
                "source_matchers": ['severity="critical"'],
                "target_matchers": ['severity="warning"'],
                "equal": ["instance"],
            }
        ],
    }


def _write_config(tmp_path: Path, nats_url: str, am: dict[str, Any]) -> Path:
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


AppFactory = Callable[..., Awaitable[App]]


@pytest.fixture
async def make_app(nats_server: NatsServer, tmp_path: Path) -> AsyncIterator[AppFactory]:
    apps: list[App] = []

    async def make(am: dict[str, Any], replica: str = "r1") -> App:
        path = _write_config(tmp_path, nats_server.url, am)
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
        return app

    yield make
    for app in apps:
        await app.stop()


def _event(name: str, instance: str, *, resolved: bool = False, **labels: str) -> AlertEvent:
    now = datetime.now(UTC)
    return AlertEvent(
        labels={"alertname": name, "instance": instance, **labels},
        annotations={"summary": f"{name} on {instance}"},
        starts_at=now,
        ends_at=now + timedelta(milliseconds=1) if resolved else now + timedelta(minutes=5),
        generator_url="http://vigil.example/graph",
        status="resolved" if resolved else "firing",
    )


async def _publish(nc: Client, *events: AlertEvent) -> None:
    js = nc.jetstream()
    for e in events:
        await js.publish(NAMES.alerts("rules"), encode_message(e))


async def _eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while True:
            if check():
                return
            await asyncio.sleep(0.05)  # bounded polling: state owned by another task


async def test_alerts_are_grouped_and_delivered_as_alertmanager_webhooks(
    make_app: AppFactory, nats_client: Client, hook: HookServer
) -> None:
    app = await make_app(_am(hook))
    results: list[NotificationResult] = []

    async def on_result(msg: Any) -> None:
        results.append(decode_message(msg.data, NotificationResult))

    await nats_client.subscribe(NAMES.notifications_wildcard, cb=on_result)
    await _publish(
        nats_client,
        _event("Down", "a"),
        _event("Down", "b"),
        _event("Disk", "a"),
    )
    reqs = await hook.wait_for(2)
    docs = {r.json()["groupKey"]: r.json() for r in reqs}
    for doc in docs.values():
        check_webhook_payload(doc)
    down = docs['{}:{alertname="Down"}']
    assert down["receiver"] == "hook"
    assert down["status"] == "firing"
    assert down["groupLabels"] == {"alertname": "Down"}
    assert down["commonLabels"] == {"alertname": "Down"}
    assert down["externalURL"] == "http://vigil.example"
    assert sorted(a["labels"]["instance"] for a in down["alerts"]) == ["a", "b"]
    assert len(docs['{}:{alertname="Disk"}']["alerts"]) == 1

    await _publish(nats_client, _event("Down", "a", resolved=True))
    [resolved] = [r.json() for r in await hook.wait_for(3)][2:]
    assert resolved["groupKey"] == '{}:{alertname="Down"}'
    assert {a["labels"]["instance"]: a["status"] for a in resolved["alerts"]} == {
        "a": "resolved",
        "b": "firing",
    }
    await _eventually(lambda: len(results) >= 3)
    assert {r.outcome for r in results} == {"success"}
    assert results[0].integration == "webhook"

    async with httpx.AsyncClient() as client:
        base = f"http://127.0.0.1:{app.admin_port}"
        assert (await client.get(f"{base}/healthz")).status_code == 200
        await _eventually(app.ready)
        assert (await client.get(f"{base}/readyz")).status_code == 200
        line = 'vigil_notifier_notifications_total{integration="webhook"} 3.0'
        async with asyncio.timeout(10):
            while True:
                if line in (await client.get(f"{base}/metrics")).text:
                    break
                await asyncio.sleep(0.05)  # bounded polling of another task's counters


async def test_silenced_and_inhibited_alerts_are_not_sent_and_reported_suppressed(
    make_app: AppFactory, nats_client: Client, hook: HookServer, nats_server: NatsServer
) -> None:
    js = nats_client.jetstream()
    await provision(js, load_config(None, env={}).config.nats)
    kv = await js.key_value(NAMES.kv_silences)
    now = datetime.now(UTC)
    silence = Silence(
        id="s1",
        matchers=[Matcher(name="alertname", value="Noisy")],
        starts_at=now - timedelta(minutes=1),
        ends_at=now + timedelta(hours=1),
        created_by="test",
        comment="quiet",
        updated_at=now,
    )
    await kv.put("s1", encode_message(silence))
    app = await make_app(_am(hook, group_by=["instance"]))
    await _eventually(lambda: len(app.silencer) == 1)
    statuses: list[AlertStatus] = []

    async def on_status(msg: Any) -> None:
        statuses.append(decode_message(msg.data, AlertStatus))

    await nats_client.subscribe(NAMES.alertstatus, cb=on_status)
    noisy = _event("Noisy", "x")
    critical = _event("Down", "y", severity="critical")
    warning = _event("Slow", "y", severity="warning")
    await _publish(nats_client, noisy, critical, warning)
    [req] = await hook.wait_for(1)
    doc = req.json()
    assert doc["groupLabels"] == {"instance": "y"}
    assert [a["labels"]["alertname"] for a in doc["alerts"]] == ["Down"]
    await _eventually(lambda: len({s.fingerprint for s in statuses}) >= 3)
    by_fp = {s.fingerprint: s for s in statuses if s.notified_at is None}
    assert by_fp[noisy.fingerprint].state == "suppressed"
    assert by_fp[noisy.fingerprint].silenced_by == ["s1"]
    assert by_fp[warning.fingerprint].inhibited_by == [critical.fingerprint]
    assert by_fp[critical.fingerprint].state == "active"
    await asyncio.sleep(0.3)
    assert len(hook.received()) == 1


async def test_two_replicas_deliver_each_flush_once(
    make_app: AppFactory, nats_client: Client, hook: HookServer
) -> None:
    await make_app(_am(hook), replica="r1")
    await make_app(_am(hook), replica="r2")
    await _publish(nats_client, *(_event(f"A{i}", "h") for i in range(5)))
    await hook.wait_for(5)
    await asyncio.sleep(2.5)  # two more group intervals: nothing new, nothing repeated
    keys = [r.json()["groupKey"] for r in hook.received()]
    assert sorted(keys) == sorted(f'{{}}:{{alertname="A{i}"}}' for i in range(5))


async def test_restart_does_not_resend_before_repeat_interval(
    make_app: AppFactory, nats_client: Client, hook: HookServer
) -> None:
    first = await make_app(_am(hook), replica="r1")
    await _publish(nats_client, _event("Down", "a"))
    await hook.wait_for(1)
    await first.stop()
    await make_app(_am(hook), replica="r1")  # replays the stream, reads the log
    await asyncio.sleep(1.5)
    assert len(hook.received()) == 1


async def test_reload_swaps_the_receiver_and_keeps_alerts(
    make_app: AppFactory, nats_client: Client, hook: HookServer, tmp_path: Path
) -> None:
    app = await make_app(_am(hook))
    await _publish(nats_client, _event("Down", "a"))
    await hook.wait_for(1)
    am = _am(hook)
    # a new receiver name: the notification log is per receiver and integration, so
    # only changing the URL would (as in Alertmanager) not re-send before repeat_interval
    am["route"]["receiver"] = am["receivers"][0]["name"] = "other"
    am["receivers"][0]["webhook_configs"][0]["url"] = hook.url("/other")
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(am), encoding="utf-8")
    async with httpx.AsyncClient() as client:
        r = await client.post(f"http://127.0.0.1:{app.admin_port}/-/reload")
    assert r.status_code == 200
    [req] = await hook.wait_for(1, path="/other")
    assert req.json()["groupKey"] == '{}:{alertname="Down"}'
    (tmp_path / "alertmanager.yml").write_text("route: {receiver: nope}\n", encoding="utf-8")
    async with httpx.AsyncClient() as client:
        r = await client.post(f"http://127.0.0.1:{app.admin_port}/-/reload")
    assert r.status_code == 500
    assert "undefined receiver" in r.text
    assert app.config.am.receivers[0].name == "other"


async def test_a_slow_receiver_does_not_delay_another(
    make_app: AppFactory, nats_client: Client, hook: HookServer
) -> None:
    gate = asyncio.Event()
    hook.on("/slow", Answer(gate=gate))
    am = _am(hook)
    am["receivers"][0]["webhook_configs"] = [{"url": hook.url("/slow")}, {"url": hook.url("/fast")}]
    am["receivers"].append({"name": "other", "webhook_configs": [{"url": hook.url("/other")}]})
    am["route"]["routes"] = [{"matchers": ['team="other"'], "receiver": "other"}]
    await make_app(am)
    await _publish(nats_client, _event("Down", "a"), _event("Up", "b", team="other"))
    # the slow endpoint holds its answer until the others have theirs
    await hook.wait_for(1, path="/slow")
    await hook.wait_for(1, path="/fast")
    await hook.wait_for(1, path="/other")
    gate.set()
    assert json.loads(hook.received("/fast")[0].body)["status"] == "firing"


async def test_a_new_silence_republishes_the_status_of_firing_alerts(
    make_app: AppFactory, nats_client: Client, hook: HookServer
) -> None:
    app = await make_app(_am(hook))
    statuses: list[AlertStatus] = []

    async def on_status(msg: Any) -> None:
        statuses.append(decode_message(msg.data, AlertStatus))

    await nats_client.subscribe(NAMES.alertstatus, cb=on_status)
    event = _event("Down", "a")
    await _publish(nats_client, event)
    await hook.wait_for(1)
    kv = await nats_client.jetstream().key_value(NAMES.kv_silences)
    now = datetime.now(UTC)
    silence = Silence(
        id="late",
        matchers=[Matcher(name="alertname", value="Down")],
        starts_at=now - timedelta(seconds=1),
        ends_at=now + timedelta(hours=1),
        updated_at=now,
    )
    await kv.put("late", encode_message(silence))
    await _eventually(lambda: any(s.silenced_by == ["late"] for s in statuses))
    silenced_at = max(i for i, s in enumerate(statuses) if s.silenced_by == ["late"])
    assert statuses[silenced_at].state == "suppressed"
    await kv.delete("late")

    def active_again() -> bool:
        later = statuses[silenced_at + 1 :]
        return any(s.fingerprint == event.fingerprint and s.state == "active" for s in later)

    await _eventually(active_again)
    assert len(app.silencer) == 0
