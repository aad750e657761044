"""The notification pipeline with a recording integration, and the KV log's lease protocol."""

from __future__ import annotations

from typing import Any

from nats.aio.client import Client

from notifier.group import Dispatcher, Flush
from notifier.inhibit import Inhibitor
from notifier.nflog import Entry
from notifier.nflogkv import NotificationLog
from notifier.pipeline import Pipeline
from notifier.receivers.base import Notification
from notifier.route import build
from shared.alertmanager.silence import Silencer
from shared.bus.provision import provision
from shared.config.loader import load_config
from shared.wire import AlertStatus, Names, NotificationResult
from tests.notifier.helpers import alert, at, config


class Recorder:
    """An integration that records what it is asked to send."""

    kind = "webhook"

    def __init__(self, send_resolved: bool = True) -> None:
        self.index = 0
        self.send_resolved = send_resolved
        self.sent: list[Notification] = []

    async def notify(self, notification: Notification) -> None:
        self.sent.append(notification)

    async def close(self) -> None:
        return None


async def _ignore(_msg: Any) -> None:
    return None


def _setup(route: dict[str, Any], integration: Recorder, **am: Any) -> tuple[Dispatcher, Pipeline]:
    cfg = config(
        {
            "route": {"receiver": "r", "group_wait": "0s", **route},
            "receivers": [{"name": "r"}],
            **am,
        }
    )
    pipeline = Pipeline(
        receivers={"r": [integration]},
        intervals=cfg.am.intervals(),
        silencer=Silencer(),
        inhibitor=Inhibitor([]),
        nflog=NotificationLog(None, "me"),
        publish=_ignore,
        publish_status=_ignore,
    )
    return Dispatcher(build(cfg.route)), pipeline


async def _flush(d: Dispatcher, p: Pipeline, t: float) -> list[Flush]:
    flushes = d.tick(at(t))
    for f in flushes:
        d.complete(f, await p.handle(f))
    return flushes


async def test_mute_time_intervals_mute_and_the_flush_still_counts_as_handled() -> None:
    rec = Recorder()
    d, p = _setup(
        {"routes": [{"matchers": ["a=1"], "mute_time_intervals": ["monday"]}]},
        rec,
        time_intervals=[{"name": "monday", "time_intervals": [{"weekdays": ["monday"]}]}],
    )
    d.process(alert(0, a="1"), 1, at(0))
    assert len(await _flush(d, p, 0)) == 1
    assert rec.sent == []


async def test_outside_active_time_intervals_nothing_is_sent() -> None:
    rec = Recorder()
    d, p = _setup(
        {"routes": [{"matchers": ["a=1"], "active_time_intervals": ["weekend"]}]},
        rec,
        time_intervals=[
            {"name": "weekend", "time_intervals": [{"weekdays": ["saturday", "sunday"]}]}
        ],
    )
    d.process(alert(0, a="1"), 1, at(0))  # T0 is a Monday
    await _flush(d, p, 0)
    assert rec.sent == []


async def test_send_resolved_false_records_without_sending_resolved_alerts() -> None:
    rec = Recorder(send_resolved=False)
    d, p = _setup({"group_interval": "1m"}, rec)
    d.process(alert(0, 30, a="1"), 1, at(0))
    d.process(alert(0, a="2"), 2, at(0))
    await _flush(d, p, 0)
    assert [len(n.firing) for n in rec.sent] == [2]
    await _flush(d, p, 60)  # a=1 resolved: the firing set shrank, nothing new fires
    assert len(rec.sent) == 1
    d.process(alert(0, 100, resolved=True, a="2"), 3, at(90))
    await _flush(d, p, 120)  # everything resolved: the log forgets, nothing is shown
    assert len(rec.sent) == 1
    assert d.groups == {}


async def test_unchanged_group_is_not_resent_before_repeat_interval() -> None:
    rec = Recorder()
    d, p = _setup({"group_interval": "1m", "repeat_interval": "3m"}, rec)
    d.process(alert(0, 3600, a="1"), 1, at(0))
    for t in range(0, 361, 60):
        await _flush(d, p, t)
    assert [n.at for n in rec.sent] == [at(0), at(180), at(360)]


async def test_silenced_alerts_are_left_out_of_the_notification() -> None:
    rec = Recorder()
    d, p = _setup({}, rec)
    from shared.wire import Matcher, Silence

    p.silencer.put(
        Silence(
            id="s",
            matchers=[Matcher(name="a", value="1")],
            starts_at=at(-10),
            ends_at=at(100),
            updated_at=at(-10),
        )
    )
    d.process(alert(0, a="1"), 1, at(0))
    d.process(alert(0, a="2"), 2, at(0))
    await _flush(d, p, 0)
    [n] = rec.sent
    assert [a.labels for a in n.firing] == [{"a": "2"}]


async def test_results_and_statuses_are_published() -> None:
    rec = Recorder()
    d, p = _setup({}, rec)
    results: list[NotificationResult] = []
    statuses: list[AlertStatus] = []

    async def on_result(r: NotificationResult) -> None:
        results.append(r)

    async def on_status(s: AlertStatus) -> None:
        statuses.append(s)

    p.publish, p.publish_status = on_result, on_status
    a = alert(0, a="1")
    d.process(a, 1, at(0))
    await _flush(d, p, 0)
    [r] = results
    assert (r.receiver, r.integration, r.outcome, r.attempt, r.firing) == (
        "r",
        "webhook",
        "success",
        1,
        1,
    )
    assert r.fingerprints == [a.fingerprint]
    assert statuses[0].fingerprint == a.fingerprint
    assert statuses[0].notified_at is not None


async def test_kv_lease_lets_one_replica_deliver_and_another_take_over(nats_client: Client) -> None:
    js = nats_client.jetstream()
    await provision(js, load_config(None, env={}).config.nats)
    kv = await js.key_value(Names().kv_nflog)
    a, b = NotificationLog(kv, "a"), NotificationLog(kv, "b")
    entry, rev = await a.read("k")
    assert (entry, rev) == (None, 0)
    lease_a = await a.acquire("k", entry, rev, at(0), lease=60)
    assert lease_a is not None
    assert await b.acquire("k", entry, rev, at(0), lease=60) is None  # lost the race
    seen, rev_b = await b.read("k")
    assert seen is not None
    assert seen.leased_by_other("b", at(30))
    # a dies; once its lease is over, b takes the delivery over
    assert not seen.leased_by_other("b", at(61))
    lease_b = await b.acquire("k", seen, rev_b, at(61), lease=60)
    assert lease_b is not None
    sent = Entry(frozenset({"f" * 16}), frozenset(), at(61))
    assert not await a.record("k", lease_a, sent)  # a's lease is gone: the record is b's
    assert await b.record("k", lease_b, sent)
    final, _ = await a.read("k")
    assert final is not None
    assert final.firing == {"f" * 16}
    assert final.timestamp == at(61)
    assert final.lease_until is None
    assert a.conflicts == 1
    assert b.conflicts == 1
