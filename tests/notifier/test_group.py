"""Timelines of group timers with a fake clock: flip at t, flush at t+group_wait, ..."""

from __future__ import annotations

from notifier.group import Dispatcher, Flush
from notifier.nflog import Entry, needs_update
from notifier.route import build
from tests.notifier.helpers import alert, at, config


def _dispatcher(**opts: object) -> Dispatcher:
    route = {"receiver": "r", "group_by": ["alertname"], **opts}
    return Dispatcher(build(config({"route": route, "receivers": [{"name": "r"}]}).route))


def _fps(flush: Flush) -> tuple[int, int]:
    return len(flush.firing), len(flush.resolved)


def test_first_flush_after_group_wait_then_every_group_interval() -> None:
    d = _dispatcher(group_wait="30s", group_interval="5m")
    a = alert(0, alertname="Down", instance="1")
    d.process(a, 1, at(0))
    assert d.next_deadline() == at(30)
    assert d.tick(at(29.9)) == []
    [f1] = d.tick(at(30))
    assert f1.group_key == '{}:{alertname="Down"}'
    assert _fps(f1) == (1, 0)
    d.complete(f1, ok=True)
    assert d.next_deadline() == at(330)
    assert d.tick(at(329)) == []
    [f2] = d.tick(at(330))
    assert _fps(f2) == (1, 0)


def test_alerts_arriving_during_group_wait_join_the_first_flush() -> None:
    d = _dispatcher(group_wait="30s")
    d.process(alert(0, alertname="Down", instance="1"), 1, at(0))
    d.process(alert(10, alertname="Down", instance="2"), 2, at(10))
    d.process(alert(10, alertname="Other"), 3, at(10))
    [down] = d.tick(at(30))
    assert _fps(down) == (2, 0)
    [other] = d.tick(at(40))  # its own group: created at 10
    assert other.group_labels == {"alertname": "Other"}
    assert d.groups[(other.route.id, other.group_key)].next_flush == at(340)


def test_an_old_alert_flushes_at_once() -> None:
    d = _dispatcher(group_wait="30s")
    d.process(alert(-60, alertname="Down"), 1, at(0))
    assert d.next_deadline() == at(0)
    assert len(d.tick(at(0))) == 1


def test_alert_after_first_flush_waits_for_group_interval() -> None:
    d = _dispatcher(group_wait="30s", group_interval="5m")
    d.process(alert(0, alertname="Down", instance="1"), 1, at(0))
    [f1] = d.tick(at(30))
    d.complete(f1, ok=True)
    d.process(alert(-600, alertname="Down", instance="2"), 2, at(60))
    assert d.tick(at(60)) == []
    [f2] = d.tick(at(330))
    assert _fps(f2) == (2, 0)


def test_ends_at_passed_counts_as_resolved_and_is_dropped_after_notification() -> None:
    d = _dispatcher(group_wait="30s", group_interval="1m")
    d.process(alert(0, 50, alertname="Down", instance="1"), 1, at(0))
    d.process(alert(0, alertname="Down", instance="2"), 2, at(0))
    [f1] = d.tick(at(30))
    assert _fps(f1) == (2, 0)
    d.complete(f1, ok=True)
    [f2] = d.tick(at(90))
    assert _fps(f2) == (1, 1)
    d.complete(f2, ok=True)
    [f3] = d.tick(at(150))
    assert _fps(f3) == (1, 0)


def test_failed_flush_keeps_resolved_alerts_for_the_next_one() -> None:
    d = _dispatcher(group_wait="0s", group_interval="1m")
    d.process(alert(0, 10, alertname="Down"), 1, at(0))
    [f1] = d.tick(at(20))
    assert _fps(f1) == (0, 1)
    d.complete(f1, ok=False)
    [f2] = d.tick(at(80))
    assert _fps(f2) == (0, 1)
    d.complete(f2, ok=True)
    assert d.groups == {}


def test_resolved_alert_updated_during_flight_is_kept() -> None:
    d = _dispatcher(group_wait="0s", group_interval="1m")
    d.process(alert(0, 10, alertname="Down"), 1, at(0))
    [f1] = d.tick(at(20))
    d.process(alert(25, alertname="Down"), 2, at(25))  # fires again while f1 is in flight
    d.complete(f1, ok=True)
    [f2] = d.tick(at(80))
    assert _fps(f2) == (1, 0)


def test_flush_due_while_in_flight_waits_for_completion() -> None:
    d = _dispatcher(group_wait="0s", group_interval="10s")
    d.process(alert(0, alertname="Down"), 1, at(0))
    [f1] = d.tick(at(0))
    assert d.tick(at(15)) == []
    assert d.next_deadline() is None
    d.complete(f1, ok=True)
    assert d.next_deadline() == at(10)
    assert len(d.tick(at(15))) == 1


def test_repeat_interval_timeline_through_the_notification_log() -> None:
    """Flip at t=0: sent at +group_wait, silent each group_interval, again at +repeat_interval."""
    d = _dispatcher(group_wait="30s", group_interval="5m", repeat_interval="1h")
    d.process(alert(0, 7200, alertname="Down"), 1, at(0))
    entry: Entry | None = None
    sent: list[float] = []
    t = 0.0
    while t <= 30 + 3600 + 300:
        for f in d.tick(at(t)):
            firing = {a.fingerprint for a in f.firing}
            resolved = {a.fingerprint for a in f.resolved}
            if needs_update(
                entry, firing, resolved, send_resolved=True, repeat_interval=3600, now=f.at
            ):
                sent.append(t)
                entry = Entry(frozenset(firing), frozenset(resolved), f.at)
            d.complete(f, ok=True)
        t += 5
    assert sent == [30, 30 + 3600]


def test_new_firing_alert_is_sent_at_the_next_group_interval_not_repeat() -> None:
    fp_a = alert(0, alertname="Down", instance="a").fingerprint
    entry = Entry(frozenset({fp_a}), frozenset(), at(30))
    kw = {"send_resolved": True, "repeat_interval": 3600.0, "now": at(330)}
    assert not needs_update(entry, {fp_a}, set(), **kw)  # type: ignore[arg-type]
    assert needs_update(entry, {fp_a, "b" * 16}, set(), **kw)  # type: ignore[arg-type]
    assert needs_update(entry, set(), {fp_a}, **kw)  # type: ignore[arg-type]
    assert needs_update(entry, {"b" * 16}, {fp_a}, **kw)  # type: ignore[arg-type]
    only_resolved = Entry(frozenset(), frozenset({fp_a}), at(30))
    assert not needs_update(only_resolved, set(), {fp_a}, **kw)  # type: ignore[arg-type]
    assert not needs_update(None, set(), {fp_a}, **kw)  # type: ignore[arg-type]
    no_resolved = {**kw, "send_resolved": False}
    assert not needs_update(
        Entry(frozenset({fp_a, "c" * 16}), frozenset(), at(30)),
        {fp_a},
        {"c" * 16},
        **no_resolved,  # type: ignore[arg-type]
    )


def test_continue_routes_give_one_group_per_route() -> None:
    route = {
        "receiver": "r",
        "routes": [
            {"matchers": ["x=1"], "receiver": "r", "continue": True},
            {"matchers": ["x=~.+"], "receiver": "r"},
        ],
    }
    d = Dispatcher(build(config({"route": route, "receivers": [{"name": "r"}]}).route))
    d.process(alert(0, x="1"), 1, at(0))
    assert len(d.groups) == 2
    assert {f.group_key for f in d.tick(at(30))} == {'{}/{x="1"}:{}', '{}/{x=~".+"}:{}'}
