"""Alert events: AlertEvent building, generatorURL and the replica-stable Nats-Msg-Id."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from alerter.events import aligned_tick, build_event, event_msg_id, generator_url, msg_id
from alerter.rules.model import Rule
from alerter.state import AlertingRuleState, ResultSample, Send
from shared.wire import fingerprint

MIN = 60_000
T0 = 1_700_000_040_000  # 2023-11-14T22:14:00Z


def firing_send(now: int = T0) -> tuple[AlertingRuleState, list[Send]]:
    s = AlertingRuleState(Rule(kind="alert", name="Down", expr="up == 0"))
    s.eval([ResultSample({"__name__": "up", "instance": "a"}, 0.0)], now)
    return s, s.sends(now, MIN, 15_000)


def test_aligned_tick_floors_to_wall_clock_multiples() -> None:
    assert aligned_tick(T0 + 14_999, 15_000) == T0
    assert aligned_tick(T0 + 15_000, 15_000) == T0 + 15_000
    with pytest.raises(ValueError, match="positive"):
        aligned_tick(T0, 0)


def test_msg_id_joins_fingerprint_status_starts_at_and_tick() -> None:
    assert msg_id("0123456789abcdef", "firing", 5, 10) == "0123456789abcdef:firing:5:10"


def test_replicas_evaluating_the_same_data_in_one_tick_get_one_id() -> None:
    _s1, (a,) = firing_send()
    _s2, (b,) = firing_send()
    ea, eb = build_event(a, "up == 0"), build_event(b, "up == 0")
    # Sent a few seconds apart (debounce, scheduling) but within one 15 s tick.
    assert event_msg_id(ea, T0 + 1_000, 15_000) == event_msg_id(eb, T0 + 9_000, 15_000)
    # A periodic re-send (a later tick) is a new message; so is the resolve.
    assert event_msg_id(ea, T0 + MIN, 15_000) != event_msg_id(ea, T0, 15_000)


def test_resolve_has_its_own_id() -> None:
    s, (fire,) = firing_send()
    s.eval([], T0 + 15_000)
    (resolve,) = s.sends(T0 + 15_000, MIN, 15_000)
    ef, er = build_event(fire, "up == 0"), build_event(resolve, "up == 0")
    assert event_msg_id(ef, T0 + 15_000, 15_000) != event_msg_id(er, T0 + 15_000, 15_000)
    assert er.status == "resolved"
    assert er.ends_at == datetime(2023, 11, 14, 22, 14, 15, tzinfo=UTC)


def test_event_carries_alertmanager_fields_and_external_labels() -> None:
    _s, (send,) = firing_send()
    event = build_event(
        send,
        'up{job="node"} == 0',
        external_url="https://vigil.example.com/",
        external_labels={"cluster": "eu", "instance": "ignored"},
    )
    assert event.labels == {"alertname": "Down", "instance": "a", "cluster": "eu"}
    assert event.fingerprint == fingerprint(event.labels)
    assert event.starts_at == datetime(2023, 11, 14, 22, 14, tzinfo=UTC)
    assert event.ends_at == datetime(2023, 11, 14, 22, 18, tzinfo=UTC)  # 4 x max(15s, 1m)
    assert event.generator_url == (
        "https://vigil.example.com/graph?g0.expr=up%7Bjob%3D%22node%22%7D+%3D%3D+0&g0.tab=1"
    )
    wire = event.model_dump(by_alias=True, mode="json")
    assert wire["startsAt"].startswith("2023-11-14T22:14:00")
    assert wire["status"] == "firing"


def test_generator_url_without_external_url_is_relative() -> None:
    assert generator_url("", "up") == "/graph?g0.expr=up&g0.tab=1"
