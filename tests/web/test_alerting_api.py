"""Alerting on the web service: rules, alerts and targets from the real alerter's KV state,
silences written as the notifier writes them, alert history from the database.

Real nats-server and TimescaleDB; the alerter is its own ``App`` on the same NATS, fed
one-sample batches the way an agent publishes them.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from nats.aio.client import Client
from nats.js.api import ConsumerConfig, DeliverPolicy

from shared.bus.provision import provision
from shared.codec import decode_message
from shared.config.loader import load_config
from shared.config.models import NatsConfig
from shared.wire import Silence, SilenceEvent
from tests.alerter.livehelp import NAMES, Events, Publisher, make_app, now_ms, until
from tests.web.conftest import alerting_config
from web.alerting_state import format_value, go_json, rfc3339
from web.app import App

pytestmark = pytest.mark.timescale

RULES = """
groups:
  - name: temps
    interval: 1h
    rules:
      - record: temp:doubled
        expr: temp * 2
      - alert: High
        expr: temp:doubled > 10
        labels: {severity: critical}
        annotations: {summary: "temp is {{ $value }}"}
      - alert: Warm
        expr: temp > 1
        for: 1h
        keep_firing_for: 5m
"""


def _config(tmp_path: Path, nats_url: str, db_url: str, rules: str = RULES) -> Path:
    return alerting_config(tmp_path, nats_url, db_url, rules)


@pytest.fixture
async def web(tmp_path: Path, nats_url: str, migrated_db: str) -> AsyncIterator[App]:
    app = App(load_config(_config(tmp_path, nats_url, migrated_db)))
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


def _base(app: App) -> str:
    return f"http://127.0.0.1:{app.port}"


async def test_nats_down_at_start_leaves_web_up_and_answers_503_unavailable(
    tmp_path: Path, migrated_db: str
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"nats://127.0.0.1:{s.getsockname()[1]}"
    app = App(load_config(_config(tmp_path, dead, migrated_db)))
    await app.start()
    try:
        async with httpx.AsyncClient(base_url=_base(app), timeout=10) as client:
            health = await client.get("/healthz")
            alerts = await client.get("/api/v1/alerts")
            silences = await client.get("/api/v2/silences")
    finally:
        await app.stop()
    assert health.status_code == 200
    assert alerts.status_code == 503
    assert alerts.json()["errorType"] == "unavailable"
    assert "NATS" in alerts.json()["error"]
    assert silences.status_code == 503


async def test_rules_alerts_and_targets_show_the_real_alerters_state_in_prometheus_shapes(
    tmp_path: Path, nats_url: str, nats_client: Client, web: App, migrated_db: str
) -> None:
    alerter = make_app(_config(tmp_path, nats_url, migrated_db))
    await alerter.start()
    events = Events()
    await events.start(nats_client)
    try:
        await until(alerter.ready, "replay caught up")
        await Publisher(nats_client).gauge("temp", now_ms(), 7.0)
        await until(lambda: len(events.events) >= 1, "High firing")
        await until(web.bus.connected.is_set, "web connected to NATS")
        async with httpx.AsyncClient(base_url=_base(web), timeout=10) as client:
            # the KV write follows the event: poll until web shows it
            for _ in range(100):
                alerts = (await client.get("/api/v1/alerts")).json()["data"]["alerts"]
                if len(alerts) == 2:
                    break
                await asyncio.sleep(0.05)
            rules = (await client.get("/api/v1/rules")).json()
            alerting_only = (await client.get("/api/v1/rules", params={"type": "alert"})).json()
            targets = (await client.get("/api/v1/targets")).json()
            bad = await client.get("/api/v1/rules", params={"type": "nope"})
    finally:
        await alerter.stop()
        await events.stop()

    by_state = {a["labels"]["alertname"]: a for a in alerts}
    assert by_state["High"]["state"] == "firing"
    assert by_state["High"]["value"] == "1.4e+01"
    assert by_state["High"]["annotations"] == {"summary": "temp is 14"}
    assert by_state["Warm"]["state"] == "pending"
    assert by_state["Warm"]["activeAt"].endswith("Z")

    assert rules["status"] == "success"
    [group] = rules["data"]["groups"]
    assert group["name"] == "temps"
    assert group["file"].endswith("rules.yml")
    assert group["interval"] == 3600
    assert {"evaluationTime", "lastEvaluation", "limit"} <= set(group)
    record, high, warm = group["rules"]
    assert record["type"] == "recording"
    assert record["query"] == "temp * 2"
    assert record["health"] == "ok"
    assert high["type"] == "alerting"
    assert high["state"] == "firing"
    assert high["labels"] == {"severity": "critical"}
    assert high["alerts"][0]["labels"]["alertname"] == "High"
    assert {"evaluationTime", "lastEvaluation", "duration", "keepFiringFor"} <= set(high)
    assert "lastError" not in high  # omitempty, as Prometheus
    assert warm["state"] == "pending"
    assert warm["duration"] == 3600
    assert warm["keepFiringFor"] == 300
    assert [r["name"] for r in alerting_only["data"]["groups"][0]["rules"]] == ["High", "Warm"]
    assert bad.status_code == 400

    [target] = targets["data"]["activeTargets"]
    assert target["labels"] == {"host": "web1", "instance": "web1", "job": "vigil-agent"}
    assert target["health"] == "up"
    assert target["scrapeUrl"] == ""
    assert target["lastScrape"].endswith("Z")
    assert targets["data"]["droppedTargets"] == []


async def test_silence_created_read_and_expired_through_web_lands_in_kv_and_on_the_stream(
    nats_client: Client, web: App
) -> None:
    js = nats_client.jetstream()
    await provision(js, NatsConfig())
    stream = await js.subscribe(
        NAMES.silences,
        ordered_consumer=True,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
    )
    await until(web.bus.connected.is_set, "web connected to NATS")
    now = datetime.now(UTC)
    body = {
        "matchers": [
            {"name": "alertname", "value": "High", "isRegex": False, "isEqual": True},
            {"name": "host", "value": "web.*", "isRegex": True, "isEqual": True},
        ],
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(hours=1)).isoformat(),
        "createdBy": "ops",
        "comment": "maintenance",
    }
    async with httpx.AsyncClient(base_url=_base(web), timeout=10) as client:
        created = await client.post("/api/v2/silences", json=body)
        assert created.status_code == 200, created.text
        sid = created.json()["silenceID"]
        listed = (await client.get("/api/v2/silences")).json()
        one = (await client.get(f"/api/v2/silence/{sid}")).json()
        filtered = (
            await client.get("/api/v2/silences", params={"filter": 'alertname="Low"'})
        ).json()
        expired = await client.delete(f"/api/v2/silence/{sid}")
        after = (await client.get(f"/api/v2/silence/{sid}")).json()
        missing = await client.get("/api/v2/silence/no-such-id")
        invalid = await client.post("/api/v2/silences", json={**body, "endsAt": now.isoformat()})
    kv = await js.key_value(NAMES.kv_silences)
    stored = decode_message((await kv.get(sid)).value or b"", Silence)
    kinds = []
    for _ in range(2):
        msg = await stream.next_msg(timeout=10)
        kinds.append(decode_message(msg.data, SilenceEvent).kind)

    assert [s["id"] for s in listed] == [sid]
    assert one["status"] == {"state": "active"}
    assert one["createdBy"] == "ops"
    assert one["matchers"][1] == {
        "name": "host",
        "value": "web.*",
        "isRegex": True,
        "isEqual": True,
    }
    assert filtered == []
    assert expired.status_code == 200
    assert after["status"] == {"state": "expired"}
    assert missing.status_code == 404
    assert invalid.status_code == 400
    assert "end time" in invalid.json() or "start time" in invalid.json()
    assert stored.ends_at <= datetime.now(UTC)
    assert kinds == ["created", "expired"]


async def _event(
    conn: asyncpg.Connection,
    seq: int,
    fp: str,
    status: str,
    labels: dict[str, str],
    *,
    span: tuple[datetime, datetime],
) -> None:
    starts, ends = span
    await conn.execute(
        "INSERT INTO alert_events (stream_seq, fingerprint, status, labels, annotations,"
        " starts_at, ends_at, generator_url, subject)"
        " VALUES ($1, $2, $3, $4::jsonb, '{}'::jsonb, $5, $6, '', 'vigil.alerts.g')",
        seq,
        fp,
        status,
        json.dumps(labels),
        starts,
        ends,
    )


async def test_history_turns_events_into_firing_intervals_with_filters(
    web: App, migrated_db: str
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    t0 = now - timedelta(hours=2)
    conn = await asyncpg.connect(migrated_db)
    try:
        await conn.execute("DELETE FROM alert_events")
        high = {"alertname": "High", "host": "web1"}
        disk = {"alertname": "DiskFull", "host": "db1"}
        gone = {"alertname": "Gone", "host": "web2"}
        # High fired, was re-sent, resolved; fired again and still fires
        await _event(conn, 1, "a" * 16, "firing", high, span=(t0, t0 + timedelta(minutes=4)))
        await _event(conn, 2, "a" * 16, "firing", high, span=(t0, t0 + timedelta(minutes=8)))
        await _event(conn, 3, "a" * 16, "resolved", high, span=(t0, t0 + timedelta(minutes=10)))
        await _event(
            conn,
            4,
            "a" * 16,
            "firing",
            high,
            span=(now - timedelta(minutes=5), now + timedelta(minutes=4)),
        )
        await _event(conn, 5, "b" * 16, "firing", disk, span=(t0, now + timedelta(minutes=4)))
        # Gone's re-sends stopped and no resolve came: it expired
        await _event(conn, 6, "c" * 16, "firing", gone, span=(t0, t0 + timedelta(minutes=30)))
    finally:
        await conn.close()
    start, end = (now - timedelta(hours=3)).timestamp(), now.timestamp()
    async with httpx.AsyncClient(base_url=_base(web), timeout=10) as client:

        async def history(**params: Any) -> Any:
            r = await client.get(
                "/api/vigil/alerts/history", params={"start": start, "end": end, **params}
            )
            assert r.status_code == 200, r.text
            return r.json()["data"]

        every = await history()
        only_high = await history(**{"match[]": '{alertname="High"}'})
        regex = await history(**{"match[]": '{host=~"web.*"}', "state": "firing"})
        limited = await history(limit=1)
        bad = await client.get("/api/vigil/alerts/history", params={"state": "nope"})

    by_name = {a["labels"]["alertname"]: a for a in every["alerts"]}
    assert set(by_name) == {"High", "DiskFull", "Gone"}
    assert by_name["High"]["intervals"] == [
        {
            "start": t0.timestamp(),
            "end": (t0 + timedelta(minutes=10)).timestamp(),
            "state": "resolved",
        },
        {"start": (now - timedelta(minutes=5)).timestamp(), "end": None, "state": "firing"},
    ]
    assert by_name["DiskFull"]["intervals"][0]["state"] == "firing"
    assert by_name["Gone"]["intervals"] == [
        {
            "start": t0.timestamp(),
            "end": (t0 + timedelta(minutes=30)).timestamp(),
            "state": "expired",
        }
    ]
    assert every["events"][0]["time"] >= every["events"][-1]["time"]
    assert {(e["labels"]["alertname"], e["state"]) for e in every["events"]} == {
        ("High", "firing"),
        ("High", "resolved"),
        ("DiskFull", "firing"),
        ("Gone", "firing"),
        ("Gone", "expired"),
    }
    assert [a["labels"]["alertname"] for a in only_high["alerts"]] == ["High"]
    assert [a["labels"]["alertname"] for a in regex["alerts"]] == ["High"]
    assert len(regex["alerts"][0]["intervals"]) == 1
    assert sum(len(a["intervals"]) for a in limited["alerts"]) == 1
    assert limited["truncated"] is True
    assert bad.status_code == 400


HEALTH_RULES = """
groups:
  - name: health
    interval: 1h
    rules:
      - record: temp:doubled
        expr: temp * 2
        labels: {team: ops}
      - record: temp:plain
        expr: temp
      - alert: ManyToMany
        expr: temp + on() temp
      - alert: Hot
        expr: temp > 100
        for: 1h
"""
RECORDING_KEYS = ["name", "query", "labels", "health", "evaluationTime", "lastEvaluation", "type"]
ALERTING_KEYS = [
    "state",
    "name",
    "query",
    "duration",
    "keepFiringFor",
    "labels",
    "annotations",
    "alerts",
    "health",
    "evaluationTime",
    "lastEvaluation",
    "type",
]
GROUP_KEYS = ["name", "file", "rules", "interval", "limit", "evaluationTime", "lastEvaluation"]
RFC3339 = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z$"


async def test_rules_show_the_health_errors_and_evaluation_times_the_alerter_published(
    tmp_path: Path, nats_url: str, nats_client: Client, migrated_db: str
) -> None:
    config = _config(tmp_path, nats_url, migrated_db, HEALTH_RULES)
    web = App(load_config(config))
    await web.start()
    try:
        async with httpx.AsyncClient(base_url=_base(web), timeout=10) as client:
            await provision(nats_client.jetstream(), NatsConfig())  # the buckets web binds
            await until(web.bus.connected.is_set, "web connected to NATS")
            # no alerter yet: no status document, no rules
            before = (await client.get("/api/v1/rules")).json()["data"]["groups"]
            alerter = make_app(config)
            await alerter.start()
            try:
                await until(alerter.ready, "replay caught up")
                t = now_ms()
                publisher = Publisher(nats_client)
                await publisher.gauge("temp", t, 1.0, sensor="a")
                await publisher.gauge("temp", t, 2.0, sensor="b")
                for _ in range(200):
                    r = await client.get("/api/v1/rules")
                    rules = r.json()["data"]["groups"][0]["rules"]
                    if rules[2]["health"] == "err":
                        break
                    await asyncio.sleep(0.05)
                recording = (await client.get("/api/v1/rules", params={"type": "record"})).json()
            finally:
                await alerter.stop()
    finally:
        await web.stop()

    assert before == []

    [group] = r.json()["data"]["groups"]
    assert list(group) == GROUP_KEYS
    assert group["interval"] == 3600
    assert group["evaluationTime"] > 0
    assert re.match(RFC3339, group["lastEvaluation"])
    doubled, plain, bad, hot = group["rules"]
    assert list(doubled) == RECORDING_KEYS
    assert list(plain) == [k for k in RECORDING_KEYS if k != "labels"]  # empty: left out
    assert (doubled["type"], doubled["health"], doubled["labels"]) == (
        "recording",
        "ok",
        {"team": "ops"},
    )
    assert list(bad) == [*ALERTING_KEYS[:9], "lastError", *ALERTING_KEYS[9:]]
    assert bad["health"] == "err"
    assert "many-to-many matching not allowed" in bad["lastError"]
    assert list(hot) == ALERTING_KEYS
    assert (hot["health"], hot["state"], hot["duration"]) == ("ok", "inactive", 3600)
    for rule in group["rules"]:
        assert rule["evaluationTime"] > 0
        assert re.match(RFC3339, rule["lastEvaluation"])
        assert rule["lastEvaluation"] != "0001-01-01T00:00:00Z"
    # numbers and strings written as Prometheus' Go JSON writes them
    assert '"interval":3600,' in r.text
    assert '"duration":3600,' in r.text
    assert "e-0" not in r.text  # evaluation times in plain decimals
    assert "temp \\u003e 100" in r.text
    assert [x["name"] for x in recording["data"]["groups"][0]["rules"]] == [
        "temp:doubled",
        "temp:plain",
    ]


def test_go_json_writes_numbers_and_strings_as_go() -> None:
    assert go_json({"a": 3600.0, "b": 6.5687e-05, "c": 5e-07, "d": 1e22, "e": "<&>"}) == (
        '{"a":3600,"b":0.000065687,"c":5e-7,"d":1e+22,"e":"\\u003c\\u0026\\u003e"}'
    )
    assert go_json([0.0, 1, True, None, 0.25]) == "[0,1,true,null,0.25]"
    assert rfc3339(1_700_000_000_000) == "2023-11-14T22:13:20Z"
    assert rfc3339(1_700_000_000_500) == "2023-11-14T22:13:20.5Z"
    assert rfc3339(1_700_000_000_120) == "2023-11-14T22:13:20.12Z"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1e+00"),
        (14.0, "1.4e+01"),
        (0.5, "5e-01"),
        (1234.5678, "1.2345678e+03"),
        (1e-300, "1e-300"),
        (0.1 + 0.2, "3.0000000000000004e-01"),
        (float("nan"), "NaN"),
        (float("-inf"), "-Inf"),
    ],
)
def test_alert_value_is_formatted_like_gos_formatfloat_e(value: float, text: str) -> None:
    assert format_value(value) == text
