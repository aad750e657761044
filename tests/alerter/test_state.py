"""The alert state machine, driven directly (no engine): Prometheus' AlertingRule semantics."""

from __future__ import annotations

import json
import math

import pytest

from alerter.rules.model import Rule
from alerter.state import (
    RESOLVED_RETENTION_MS,
    AlertingRuleState,
    AlertState,
    ResultSample,
    RuleEvalError,
)
from alerter.template import compile_template

MIN = 60_000
T0 = 1_700_000_000_000  # an arbitrary evaluation time (ms), a whole minute


def rule(
    for_s: float = 0.0,
    keep_s: float = 0.0,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> Rule:
    labels = labels or {"severity": "page"}
    annotations = annotations or {}
    return Rule(
        kind="alert",
        name="HostDown",
        expr="up == 0",
        for_s=for_s,
        keep_firing_for_s=keep_s,
        labels=labels,
        annotations=annotations,
        label_templates={k: compile_template(v) for k, v in labels.items()},
        annotation_templates={k: compile_template(v) for k, v in annotations.items()},
    )


A = ResultSample({"__name__": "up", "instance": "a", "job": "node"}, 0.0)
B = ResultSample({"__name__": "up", "instance": "b", "job": "node"}, 0.0)


def states(s: AlertingRuleState) -> dict[str, str]:
    return {a.labels["instance"]: a.state.value for a in s.alerts()}


def test_for_zero_fires_at_first_evaluation_and_sends_with_ends_at_ahead() -> None:
    s = AlertingRuleState(rule())
    series = s.eval([A], T0)
    assert states(s) == {"a": "firing"}
    (send,) = s.sends(T0, resend_delay_ms=MIN, interval_ms=15_000)
    assert send.status == "firing"
    assert send.starts_at_ms == T0
    assert send.ends_at_ms == T0 + 4 * MIN
    assert send.alert.labels == {
        "alertname": "HostDown",
        "instance": "a",
        "job": "node",
        "severity": "page",
    }
    assert [x.labels["__name__"] for x in series] == ["ALERTS", "ALERTS_FOR_STATE"]
    assert series[0].labels["alertstate"] == "firing"


def test_for_holds_alert_pending_until_duration_elapsed() -> None:
    s = AlertingRuleState(rule(for_s=300))
    for k in range(5):
        s.eval([A], T0 + k * MIN)
        assert states(s) == {"a": "pending"}
        assert s.sends(T0 + k * MIN, MIN, MIN) == []
    series = s.eval([A], T0 + 5 * MIN)
    assert states(s) == {"a": "firing"}
    (send,) = s.sends(T0 + 5 * MIN, MIN, MIN)
    assert send.starts_at_ms == T0 + 5 * MIN  # startsAt is FiredAt, as in Prometheus
    alerts, for_state = series
    assert alerts.labels == {
        "__name__": "ALERTS",
        "alertname": "HostDown",
        "alertstate": "firing",
        "instance": "a",
        "job": "node",
        "severity": "page",
    }
    assert alerts.value == 1.0
    assert for_state.labels["__name__"] == "ALERTS_FOR_STATE"
    assert "alertstate" not in for_state.labels
    assert for_state.value == T0 / 1000  # ActiveAt in seconds


def test_pending_alert_that_clears_is_dropped_without_a_send() -> None:
    s = AlertingRuleState(rule(for_s=300))
    s.eval([A], T0)
    assert s.eval([], T0 + MIN) == []
    assert s.alerts() == []
    assert s.sends(T0 + MIN, MIN, MIN) == []


def test_firing_alert_resolves_is_resent_while_retained_then_forgotten() -> None:
    s = AlertingRuleState(rule())
    s.eval([A], T0)
    s.sends(T0, MIN, MIN)
    s.eval([], T0 + MIN)
    assert states(s) == {"a": "inactive"}
    (resolved,) = s.sends(T0 + MIN, MIN, MIN)
    assert resolved.status == "resolved"
    assert resolved.ends_at_ms == T0 + MIN
    assert resolved.starts_at_ms == T0
    assert s.sends(T0 + MIN + 30_000, MIN, MIN) == []  # within resend_delay
    s.eval([], T0 + 2 * MIN + 1)
    assert [x.status for x in s.sends(T0 + 2 * MIN + 1, MIN, MIN)] == ["resolved"]
    s.eval([], T0 + MIN + RESOLVED_RETENTION_MS)
    assert len(s.alerts()) == 1  # retention is "more than 15 minutes"
    s.eval([], T0 + MIN + RESOLVED_RETENTION_MS + 1)
    assert s.alerts() == []


def test_firing_alert_is_resent_only_after_resend_delay() -> None:
    s = AlertingRuleState(rule())
    sent = []
    for k in range(0, 200, 15):  # evaluations every 15 s for 3m20s
        now = T0 + k * 1000
        s.eval([A], now)
        sent += [now - T0 for _ in s.sends(now, MIN, 15_000)]
    assert sent == [0, 75_000, 150_000]  # strictly later than last send + 1m


def test_keep_firing_for_holds_firing_then_resolves() -> None:
    s = AlertingRuleState(rule(keep_s=120))
    s.eval([A], T0)
    s.eval([], T0 + MIN)
    s.eval([], T0 + 2 * MIN)
    assert states(s) == {"a": "firing"}
    s.eval([], T0 + 3 * MIN)  # 2m since keep_firing_since (T0+1m): no longer < 2m
    assert states(s) == {"a": "inactive"}
    assert s.alerts()[0].resolved_at_ms == T0 + 3 * MIN


def test_keep_firing_for_resets_when_condition_returns() -> None:
    s = AlertingRuleState(rule(keep_s=120))
    s.eval([A], T0)
    s.eval([], T0 + MIN)
    s.eval([A], T0 + 2 * MIN)  # back: keep_firing_since cleared
    assert s.alerts()[0].keep_firing_since_ms is None
    s.eval([], T0 + 3 * MIN)
    s.eval([], T0 + 4 * MIN)
    assert states(s) == {"a": "firing"}
    s.eval([], T0 + 5 * MIN)
    assert states(s) == {"a": "inactive"}


def test_flapping_alert_gets_a_new_active_at_after_resolving() -> None:
    s = AlertingRuleState(rule(for_s=60))
    s.eval([A], T0)
    s.eval([A], T0 + MIN)
    assert states(s) == {"a": "firing"}
    s.eval([], T0 + 2 * MIN)
    assert states(s) == {"a": "inactive"}
    s.eval([A], T0 + 3 * MIN)
    (alert,) = s.alerts()
    assert (alert.state, alert.active_at_ms, alert.fired_at_ms) == (
        AlertState.PENDING,
        T0 + 3 * MIN,
        None,
    )
    s.eval([A], T0 + 4 * MIN)
    assert s.alerts()[0].fired_at_ms == T0 + 4 * MIN


def test_labels_are_independent_per_label_set() -> None:
    s = AlertingRuleState(rule(for_s=60))
    s.eval([A], T0)
    s.eval([A, B], T0 + MIN)
    assert states(s) == {"a": "firing", "b": "pending"}
    assert s.state() is AlertState.FIRING


def test_templates_expand_labels_and_annotations_with_value() -> None:
    r = rule(
        labels={"severity": "{{ if gt $value 0.9 }}page{{ else }}ticket{{ end }}"},
        annotations={
            "summary": "{{ $labels.instance }} at {{ $value | humanizePercentage }} in {{ $externalLabels.dc }}"
        },
    )
    s = AlertingRuleState(r, external_labels={"dc": "eu1"})
    s.eval([ResultSample({"instance": "a"}, 0.95)], T0)
    (alert,) = s.alerts()
    assert alert.labels["severity"] == "page"
    assert alert.annotations == {"summary": "a at 95% in eu1"}
    s.eval([ResultSample({"instance": "a"}, 0.5)], T0 + MIN)
    # Labels identify the alert: a new severity is a new alert; the old one resolves.
    assert sorted(a.labels["severity"] + ":" + a.state.value for a in s.alerts()) == [
        "page:inactive",
        "ticket:firing",
    ]


def test_annotations_follow_the_latest_value() -> None:
    s = AlertingRuleState(rule(annotations={"v": "{{ $value }}"}))
    s.eval([ResultSample({"instance": "a"}, 1.0)], T0)
    s.eval([ResultSample({"instance": "a"}, 2.5)], T0 + MIN)
    assert s.alerts()[0].annotations == {"v": "2.5"}
    assert s.alerts()[0].value == 2.5


def test_duplicate_label_sets_after_alert_labels_are_an_error() -> None:
    s = AlertingRuleState(rule())
    with pytest.raises(RuleEvalError, match="same labelset"):
        s.eval(
            [
                ResultSample({"__name__": "x", "i": "a"}, 1),
                ResultSample({"__name__": "y", "i": "a"}, 1),
            ],
            T0,
        )


def test_limit_drops_every_alert_when_exceeded() -> None:
    s = AlertingRuleState(rule())
    with pytest.raises(RuleEvalError, match="exceeded limit of 1 with 2 alerts"):
        s.eval([A, B], T0, limit=1)
    assert s.alerts() == []


def test_state_round_trips_through_json_and_keeps_timers() -> None:
    s = AlertingRuleState(rule(for_s=300))
    s.eval([A], T0)
    s.eval([A, ResultSample({"instance": "c"}, math.nan)], T0 + MIN)
    saved = json.loads(json.dumps(s.to_dict()))
    restored = AlertingRuleState(rule(for_s=300))
    restored.restore(saved)
    assert [a.to_dict() for a in restored.alerts()] == [a.to_dict() for a in s.alerts()]
    assert math.isnan(restored.alerts()[1].value)
    restored.eval([A], T0 + 5 * MIN)
    assert states(restored) == {"a": "firing"}  # the for timer kept its T0 start


def test_restore_does_not_resend_what_was_just_sent() -> None:
    s = AlertingRuleState(rule())
    s.eval([A], T0)
    assert len(s.sends(T0, MIN, MIN)) == 1
    restored = AlertingRuleState(rule())
    restored.restore(json.loads(json.dumps(s.to_dict())))
    restored.eval([A], T0 + 15_000)
    assert restored.sends(T0 + 15_000, MIN, MIN) == []
    restored.eval([A], T0 + MIN + 1)
    assert len(restored.sends(T0 + MIN + 1, MIN, MIN)) == 1


def test_restore_rejects_unknown_versions() -> None:
    with pytest.raises(RuleEvalError, match="state version"):
        AlertingRuleState(rule()).restore({"v": 99, "alerts": []})


def test_recording_rules_have_no_alert_state() -> None:
    with pytest.raises(ValueError, match="BUG"):
        AlertingRuleState(Rule(kind="record", name="x", expr="up"))


def test_resolution_at_the_instant_it_fired_is_still_sent_once() -> None:
    s = AlertingRuleState(rule())
    s.eval([A], T0)
    assert [x.status for x in s.sends(T0, MIN, MIN)] == ["firing"]
    s.eval([], T0)  # re-evaluated at the same instant with newer data: resolved
    assert [x.status for x in s.sends(T0, MIN, MIN)] == ["resolved"]
    assert s.sends(T0, MIN, MIN) == []


def test_state_saved_before_resolve_sent_existed_restores_it_from_times() -> None:
    s = AlertingRuleState(rule())
    s.eval([A], T0)
    s.sends(T0, MIN, MIN)
    s.eval([], T0 + MIN)
    s.sends(T0 + MIN, MIN, MIN)
    saved = s.to_dict()
    for alert in saved["alerts"]:
        del alert["resolve_sent"]
    again = AlertingRuleState(rule())
    again.restore(saved)
    assert again.sends(T0 + MIN + 1, MIN, MIN) == []
