"""Alertmanager API v2 of a running notifier, against a real nats-server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import yaml
from nats.aio.client import Client

from notifier.api.alerts import API_GROUP
from notifier.app import App
from shared.codec import decode_message
from shared.wire import AlertEvent, Names, Silence, SilenceEvent
from tests.notifier.api.conftest import AppFactory, am_config, eventually, eventually_async
from tests.notifier.hookserver import HookServer

NAMES = Names()


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def prom_alert(name: str, instance: str, **labels: str) -> dict[str, Any]:
    """What a Prometheus server posts (nanosecond times, endsAt ahead)."""
    now = datetime.now(UTC)
    return {
        "labels": {"alertname": name, "instance": instance, **labels},
        "annotations": {"summary": f"{name} on {instance}"},
        "startsAt": now.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z",
        "endsAt": iso(now + timedelta(minutes=4)),
        "generatorURL": "http://prometheus.example/graph?g0.expr=up",
    }


@pytest.fixture
async def app(make_app: AppFactory, hook: HookServer) -> App:
    return await make_app(am_config(hook.url()))


@pytest.fixture
async def client(app: App) -> Any:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.admin_port}/api/v2") as c:
        yield c


async def _alerts(client: httpx.AsyncClient, count: int, **params: Any) -> list[Any]:
    found: list[Any] = []

    async def enough() -> bool:
        nonlocal found
        r = await client.get("/alerts", params=params)
        assert r.status_code == 200, r.text
        found = r.json()
        return len(found) >= count

    await eventually_async(enough)
    return found


async def test_posted_alerts_are_published_and_listed_with_status_and_receivers(
    client: httpx.AsyncClient, nats_client: Client
) -> None:
    payload = [
        prom_alert("Down", "a"),
        prom_alert("Down", "b", team="db"),
        prom_alert("Disk", "a", severity="warning"),
        prom_alert("Host", "a", severity="critical"),
    ]
    r = await client.post("/alerts", json=payload)
    assert r.status_code == 200, r.text
    found = await _alerts(client, 4)
    by_name = {(a["labels"]["alertname"], a["labels"]["instance"]): a for a in found}
    down = by_name[("Down", "a")]
    assert set(down) == {
        "labels",
        "annotations",
        "generatorURL",
        "startsAt",
        "endsAt",
        "updatedAt",
        "fingerprint",
        "receivers",
        "status",
    }
    assert down["receivers"] == [{"name": "hook"}]
    assert down["status"] == {"state": "active", "silencedBy": [], "inhibitedBy": []}
    assert down["annotations"] == {"summary": "Down on a"}
    assert down["startsAt"].endswith("Z")
    assert len(down["fingerprint"]) == 16
    assert by_name[("Down", "b")]["receivers"] == [{"name": "db"}]
    disk = by_name[("Disk", "a")]
    assert disk["status"]["state"] == "suppressed"
    assert disk["status"]["inhibitedBy"] == [by_name[("Host", "a")]["fingerprint"]]
    assert [a["fingerprint"] for a in found] == sorted(a["fingerprint"] for a in found)

    # filters: matchers, receiver regex, state flags
    r = await client.get("/alerts", params={"filter": ['alertname="Down"']})
    assert sorted(a["labels"]["instance"] for a in r.json()) == ["a", "b"]
    r = await client.get("/alerts", params={"filter": ["alertname=~D.*", 'instance!="a"']})
    assert [a["labels"]["instance"] for a in r.json()] == ["b"]
    r = await client.get("/alerts", params={"receiver": "d."})
    assert [a["labels"]["team"] for a in r.json()] == ["db"]
    r = await client.get("/alerts", params={"inhibited": "false"})
    assert len(r.json()) == 3
    r = await client.get("/alerts", params={"active": "false"})
    assert [a["labels"]["alertname"] for a in r.json()] == ["Disk"]
    assert (await client.get("/alerts", params={"filter": "a=~("})).status_code == 400

    # groups: one per route and alertname, the receiver's name, alerts filtered
    r = await client.get("/alerts/groups")
    groups = {(g["receiver"]["name"], g["labels"]["alertname"]): g for g in r.json()}
    assert set(groups) == {("hook", "Down"), ("db", "Down"), ("hook", "Disk"), ("hook", "Host")}
    assert groups[("hook", "Down")]["labels"] == {"alertname": "Down"}
    assert [a["labels"]["instance"] for a in groups[("hook", "Down")]["alerts"]] == ["a"]
    r = await client.get("/alerts/groups", params={"inhibited": "false"})
    assert ("hook", "Disk") not in {
        (g["receiver"]["name"], g["labels"]["alertname"]) for g in r.json()
    }

    # on the stream: one event per alert, on the API's subject, de-duplicated by id
    js = nats_client.jetstream()
    info = await js.stream_info(NAMES.stream_alerts)
    assert info.state.messages == 4
    r = await client.post("/alerts", json=payload)  # a retry of the same POST
    info = await js.stream_info(NAMES.stream_alerts)
    assert info.state.messages == 4
    msg = await js.get_last_msg(NAMES.stream_alerts, NAMES.alerts(API_GROUP))
    event = decode_message(msg.data or b"", AlertEvent)
    assert event.labels["alertname"] == "Host"
    assert event.status == "firing"


async def test_posted_alerts_get_alertmanager_defaults_and_invalid_ones_are_refused(
    client: httpx.AsyncClient, app: App
) -> None:
    now = datetime.now(UTC)
    payload = [
        {"labels": {"alertname": "NoTimes", "empty": ""}},
        {"labels": {"alertname": "Zero"}, "startsAt": "0001-01-01T00:00:00.000Z"},
        {"labels": {"alertname": "Gone"}, "endsAt": iso(now - timedelta(seconds=1))},
        {"labels": {}},
        {"labels": {"bad-name": "x"}},
        {
            "labels": {"alertname": "Backwards"},
            "startsAt": iso(now),
            "endsAt": iso(now - timedelta(hours=1)),
        },
    ]
    r = await client.post("/alerts", json=payload)
    assert r.status_code == 400
    assert "at least one label pair required" in r.json()
    assert "bad-name" in r.json()
    assert "start time must be before end time" in r.json()
    await eventually(lambda: len(app.store) == 3)
    stored = {a.labels["alertname"]: a for a in app.store}
    assert stored["NoTimes"].labels == {"alertname": "NoTimes"}
    assert stored["NoTimes"].status == "firing"
    timeout = stored["NoTimes"].ends_at - stored["NoTimes"].starts_at
    assert timedelta(minutes=4) < timeout <= timedelta(minutes=5)  # resolve_timeout
    assert stored["Gone"].status == "resolved"
    found = await _alerts(client, 2)
    assert sorted(a["labels"]["alertname"] for a in found) == ["NoTimes", "Zero"]

    assert (await client.post("/alerts", content=b"{not json")).status_code == 400
    assert (await client.post("/alerts", json={"labels": {}})).status_code == 400


def silence_body(**over: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "matchers": [{"name": "alertname", "value": "Down", "isRegex": False, "isEqual": True}],
        "startsAt": iso(now),
        "endsAt": iso(now + timedelta(hours=1)),
        "createdBy": "tester",
        "comment": "maintenance",
    }
    body.update(over)
    return body


async def test_silences_are_created_updated_listed_and_expired_through_kv_and_stream(
    client: httpx.AsyncClient, app: App, nats_client: Client
) -> None:
    js = nats_client.jetstream()
    kv = await js.key_value(NAMES.kv_silences)
    r = await client.post("/silences", json=silence_body())
    assert r.status_code == 200, r.text
    sid = r.json()["silenceID"]
    stored = decode_message((await kv.get(sid)).value or b"", Silence)
    assert stored.created_by == "tester"
    assert stored.matchers[0].name == "alertname"
    await eventually(lambda: len(app.silencer) == 1)  # the notifier's own watch sees it

    r = await client.get(f"/silence/{sid}")
    got = r.json()
    assert set(got) == {
        "id",
        "status",
        "updatedAt",
        "matchers",
        "startsAt",
        "endsAt",
        "createdBy",
        "comment",
    }
    assert got["status"] == {"state": "active"}
    assert got["matchers"] == [
        {"name": "alertname", "value": "Down", "isRegex": False, "isEqual": True}
    ]

    # in place: same matchers, same start, a later end
    later = iso(datetime.now(UTC) + timedelta(hours=2))
    r = await client.post(
        "/silences", json={**silence_body(endsAt=later), "id": sid, "startsAt": got["startsAt"]}
    )
    assert r.json() == {"silenceID": sid}
    assert (await client.get(f"/silence/{sid}")).json()["endsAt"] == later[:23] + "Z"

    # other matchers: the old one expires, a new id is made
    other = silence_body(
        matchers=[{"name": "instance", "value": "a.*", "isRegex": True, "isEqual": True}]
    )
    r = await client.post("/silences", json={**other, "id": sid})
    new_id = r.json()["silenceID"]
    assert new_id != sid
    assert (await client.get(f"/silence/{sid}")).json()["status"]["state"] == "expired"

    listed = (await client.get("/silences")).json()
    assert [s["id"] for s in listed] == [new_id, sid]  # active first, then expired
    r = await client.get("/silences", params={"filter": 'instance=~"a.*"'})
    assert [s["id"] for s in r.json()] == [new_id]
    r = await client.get("/silences", params={"filter": 'alertname="Down"'})
    assert [s["id"] for s in r.json()] == [sid]

    assert (await client.delete(f"/silence/{new_id}")).status_code == 200
    assert (await client.get(f"/silence/{new_id}")).json()["status"]["state"] == "expired"
    assert (await client.delete(f"/silence/{new_id}")).status_code == 500  # already expired

    sub = await js.subscribe(NAMES.silences, ordered_consumer=True)
    kinds = []
    for _ in range(5):
        msg = await sub.next_msg(timeout=5)
        event = decode_message(msg.data, SilenceEvent)
        kinds.append((event.id, event.kind))
    assert kinds == [
        (sid, "created"),
        (sid, "updated"),
        (sid, "expired"),
        (new_id, "created"),
        (new_id, "expired"),
    ]


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"endsAt": "2020-01-01T00:00:00Z", "startsAt": "2019-01-01T00:00:00Z"}, "in the past"),
        ({"endsAt": "2020-01-01T00:00:00Z"}, "start time must be before end time"),
        (
            {"matchers": [{"name": "a", "value": ".*", "isRegex": True, "isEqual": True}]},
            "must not match the empty string",
        ),
        ({"matchers": []}, "at least one matcher"),
        (
            {"matchers": [{"name": "a", "value": "(", "isRegex": True, "isEqual": True}]},
            "cannot compile regex",
        ),
        ({"matchers": [{"name": "a-b", "value": "x", "isRegex": False}]}, "invalid label name"),
        ({"createdBy": None}, "createdBy"),
    ],
)
async def test_invalid_silences_are_refused_like_alertmanager(
    client: httpx.AsyncClient, over: dict[str, Any], message: str
) -> None:
    r = await client.post("/silences", json=silence_body(**over))
    assert r.status_code == 400
    assert message in r.json()


async def test_unknown_silences_are_not_found(client: httpx.AsyncClient) -> None:
    missing = "7f2d3c1e-0000-4000-8000-000000000000"
    assert (await client.get(f"/silence/{missing}")).status_code == 404
    assert (await client.delete(f"/silence/{missing}")).status_code == 404
    r = await client.post("/silences", json={**silence_body(), "id": missing})
    assert r.status_code == 404


async def test_a_silence_mutes_alerts_in_the_listing(client: httpx.AsyncClient) -> None:
    await client.post("/alerts", json=[prom_alert("Down", "a"), prom_alert("Up", "a")])
    await _alerts(client, 2)
    sid = (await client.post("/silences", json=silence_body())).json()["silenceID"]
    found: list[Any] = []

    async def silenced() -> bool:
        nonlocal found
        found = (await client.get("/alerts", params={"silenced": "false"})).json()
        return len(found) == 1

    await eventually_async(silenced)
    assert found[0]["labels"]["alertname"] == "Up"
    [down] = (await client.get("/alerts", params={"filter": "alertname=Down"})).json()
    assert down["status"] == {"state": "suppressed", "silencedBy": [sid], "inhibitedBy": []}


async def test_status_and_receivers_have_alertmanager_shapes(
    client: httpx.AsyncClient, app: App
) -> None:
    status = (await client.get("/status")).json()
    assert status["cluster"]["status"] == "disabled"
    assert set(status["versionInfo"]) == {
        "version",
        "revision",
        "branch",
        "buildUser",
        "buildDate",
        "goVersion",
    }
    original = yaml.safe_load(status["config"]["original"])
    assert original["route"]["receiver"] == "hook"
    assert original["route"]["routes"][0]["matchers"] == ['team="db"']
    assert original["receivers"][0]["webhook_configs"][0]["url"] == "<secret>"
    assert status["uptime"].endswith("Z")
    assert (await client.get("/receivers")).json() == [{"name": "hook"}, {"name": "db"}]
    base = f"http://127.0.0.1:{app.admin_port}"
    async with httpx.AsyncClient(base_url=base) as c:
        assert (await c.get("/healthz")).text == "ok\n"
        assert (await c.get("/readyz")).status_code == 200
        assert "vigil_notifier" in (await c.get("/metrics")).text
        assert (await c.get("/nope")).status_code == 404


async def test_silences_expired_longer_than_the_retention_are_deleted(
    client: httpx.AsyncClient, app: App, nats_client: Client
) -> None:
    old = (await client.post("/silences", json=silence_body())).json()["silenceID"]
    kept = (await client.post("/silences", json=silence_body())).json()["silenceID"]
    await client.delete(f"/silence/{old}")
    store = app.api.silences
    assert await store.gc() == []  # just expired: still listed
    real = store.clock
    store.clock = lambda: real() + timedelta(hours=120.5)  # kept ends in 1 h: stays
    try:
        assert await store.gc() == [old]
    finally:
        store.clock = real
    kv = await nats_client.jetstream().key_value(NAMES.kv_silences)
    assert await kv.keys() == [kept]
    assert (await client.get(f"/silence/{old}")).status_code == 404
    await eventually(lambda: len(app.silencer) == 1)


async def test_concurrent_updates_through_two_replicas_are_all_applied_in_turn(
    make_app: AppFactory, hook: HookServer, nats_client: Client
) -> None:
    apps = [await make_app(am_config(hook.url()), replica=r) for r in ("r1", "r2")]
    bases = [f"http://127.0.0.1:{a.admin_port}/api/v2" for a in apps]
    async with httpx.AsyncClient() as c:
        sid = (await c.post(f"{bases[0]}/silences", json=silence_body())).json()["silenceID"]
        got = (await c.get(f"{bases[0]}/silence/{sid}")).json()
        updates = [
            c.post(
                f"{bases[i % 2]}/silences",
                json={
                    **silence_body(comment=f"change {i}"),
                    "id": sid,
                    "startsAt": got["startsAt"],
                },
            )
            for i in range(10)
        ]
        answers = await asyncio.gather(*updates)
    assert [r.json() for r in answers] == [{"silenceID": sid}] * 10
    js = nats_client.jetstream()
    kv = await js.key_value(NAMES.kv_silences)
    revisions = [e.revision or 0 for e in await kv.history(sid)]  # the last few kept
    assert revisions == list(range(revisions[0], revisions[0] + len(revisions)))
    sub = await js.subscribe(NAMES.silences, ordered_consumer=True)
    comments = set()
    for _ in range(11):
        msg = await sub.next_msg(timeout=5)
        comments.add(decode_message(msg.data or b"", SilenceEvent).comment)
    # the creation and every update, each written once on top of the one before
    assert comments == {"maintenance"} | {f"change {i}" for i in range(10)}
