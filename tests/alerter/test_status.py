"""Rule health and the status document: runs per rule, debounce, restore, reload carry-over."""

from __future__ import annotations

import json
from itertools import count

from alerter.group import GroupEvaluator, RuleRun, engine_query
from alerter.rules import parse_rules
from alerter.rules.model import RuleGroup
from alerter.status import GroupStatus, definition_of, status_key
from shared import hosttoken
from shared.promql.engine import Engine
from shared.promql.memory import MemoryStorage

RULES = """
groups:
  - name: g
    interval: 30s
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
      - alert: ManyToMany
        expr: up + on() up
      - alert: Down
        expr: up == 0
        for: 2m
        keep_firing_for: 1m
        labels: {severity: critical}
        annotations: {summary: "{{ $labels.instance }} down"}
"""
S = 1000


def group(text: str = RULES) -> RuleGroup:
    groups, errors = parse_rules(text, "rules.yml")
    assert errors == []
    return groups[0]


def status(text: str = RULES) -> GroupStatus:
    return GroupStatus(group(text), interval_s=30.0, position=0)


def two_up() -> MemoryStorage:
    storage = MemoryStorage()
    for instance in ("a", "b"):
        storage.add({"__name__": "up", "job": "node", "instance": instance}, 0, 1.0)
    return storage


async def test_a_many_to_many_rule_errs_with_the_engines_message_and_the_others_are_ok() -> None:
    storage = two_up()
    ticks = count()
    ev = GroupEvaluator(
        group(), default_interval_s=60, resend_delay_s=60, timer=lambda: float(next(ticks))
    )
    result = await ev.evaluate(10 * S, engine_query(Engine(storage)), storage)
    st = status()
    st.record(10 * S, 0.25, result.runs)
    doc = json.loads(json.dumps(st.document()))

    record, bad, down = doc["rules"]
    assert [r.error is None for r in result.runs] == [True, False, True]
    assert [r.seconds for r in result.runs] == [1.0, 1.0, 1.0]  # per rule, from the timer
    assert (record["type"], record["health"], record["last_error"]) == ("recording", "ok", "")
    assert bad["health"] == "err"
    assert "many-to-many matching not allowed" in bad["last_error"]
    assert not bad["last_error"].startswith("cannot evaluate")  # the engine's, as Prometheus'
    assert down["health"] == "ok"
    assert (down["duration"], down["keep_firing_for"]) == (120.0, 60.0)
    assert down["labels"] == {"severity": "critical"}
    assert down["annotations"] == {"summary": "{{ $labels.instance }} down"}
    assert all(r["last_evaluation_ms"] == 10 * S for r in doc["rules"])
    assert all(r["evaluation_time_s"] == 1.0 for r in doc["rules"])
    assert (doc["last_evaluation_ms"], doc["evaluation_time_s"]) == (10 * S, 0.25)
    assert (doc["group"], doc["interval"], doc["limit"]) == ("rules.yml;g", 30.0, 0)


def test_the_status_key_cannot_be_an_alert_state_key() -> None:
    key = status_key("/etc/vigil/rules.yml;g")
    assert key.startswith("rules.")
    assert "." not in hosttoken.encode("/etc/vigil/rules.yml;g")  # alert-state keys have none


def test_writes_are_debounced_and_a_health_change_is_written_at_once() -> None:
    st = status()
    ok = [RuleRun(None, 0.001)] * 3
    failing = [RuleRun(None, 0.001), RuleRun("boom", 0.001), RuleRun(None, 0.001)]
    interval = 5 * S

    st.record(1 * S, 0.01, ok)
    assert st.due(1 * S, interval)  # first evaluation: at once
    st.written(1 * S)
    st.record(2 * S, 0.01, ok)
    assert not st.due(2 * S, interval)  # same health, within the interval: waits
    assert st.due_at(interval) == 6 * S  # ... until the interval has passed
    st.record(3 * S, 0.01, ok)
    assert not st.due(5 * S, interval)
    assert st.due(6 * S, interval)
    st.written(6 * S)
    assert st.due_at(interval) is None  # nothing new to write
    st.record(7 * S, 0.01, failing)
    assert st.due(7 * S, interval)  # ok -> err: at once
    st.written(7 * S)
    st.record(8 * S, 0.01, failing)
    assert not st.due(8 * S, interval)


def test_a_saved_document_of_the_same_rules_is_restored_and_of_other_rules_is_not() -> None:
    before = status()
    before.record(5 * S, 0.5, [RuleRun(None, 0.1), RuleRun("bad", 0.2), RuleRun(None, 0.3)])
    saved = json.loads(json.dumps(before.document()))

    again = status()
    assert again.restore(saved)
    assert [r.health for r in again.rules] == ["ok", "err", "ok"]
    assert again.document() == before.document()
    assert not again.due(5 * S, 5 * S)  # what is saved is current

    changed = status(RULES.replace("up == 0", "up < 1"))
    assert definition_of(saved) != changed.definition
    assert not changed.restore(saved)
    assert {r.health for r in changed.rules} == {"unknown"}


def test_a_reload_keeps_the_health_of_unchanged_rules_only() -> None:
    before = status()
    before.record(5 * S, 0.5, [RuleRun(None, 0.1), RuleRun("bad", 0.2), RuleRun(None, 0.3)])
    before.written(5 * S)

    same = status()
    same.carry(before)
    assert same.document() == before.document()
    assert not same.due(6 * S, 5 * S)

    changed = status(RULES.replace("up == 0", "up < 1"))
    changed.carry(before)
    assert [r.health for r in changed.rules] == ["ok", "err", "unknown"]
    assert changed.due(6 * S, 5 * S)  # the rules changed: written at once
