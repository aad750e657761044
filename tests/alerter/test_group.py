"""Group evaluation: rule order, recording rules, error isolation, state save and restore."""

from __future__ import annotations

import json

import pytest

from alerter.group import GroupEvaluator, engine_query, record
from alerter.rules import parse_rules
from alerter.rules.model import Rule
from alerter.state import ResultSample, RuleEvalError
from shared.promql.engine import Engine
from shared.promql.memory import MemoryStorage

MIN = 60_000
RULES = """
groups:
  - name: g
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
        labels: {source: rule}
      - alert: JobDown
        expr: job:up:sum == 0
        for: 1m
        annotations: {summary: "{{ $labels.job }} has {{ $value }} up"}
      - alert: Broken
        expr: up + on(job) group_left up
      - alert: Scalar
        expr: scalar(sum(up)) * 0
"""


def evaluator(text: str = RULES) -> GroupEvaluator:
    groups, errors = parse_rules(text, "rules.yml")
    assert errors == []
    return GroupEvaluator(groups[0], default_interval_s=60, resend_delay_s=60)


def storage_with_up(values: list[float]) -> MemoryStorage:
    storage = MemoryStorage()
    for i, v in enumerate(values):
        storage.add({"__name__": "up", "job": "node", "instance": "a"}, i * MIN, v)
        storage.add({"__name__": "up", "job": "node", "instance": "b"}, i * MIN, v)
    return storage


async def test_later_rules_see_what_earlier_rules_recorded_at_the_same_instant() -> None:
    storage = storage_with_up([1, 0, 0, 0])
    ev = evaluator()
    query = engine_query(Engine(storage))
    results = [await ev.evaluate(k * MIN, query, storage) for k in range(4)]
    recorded = [s for s in results[0].written if s.labels["__name__"] == "job:up:sum"]
    assert [(s.labels, s.value) for s in recorded] == [
        ({"__name__": "job:up:sum", "job": "node", "source": "rule"}, 2.0)
    ]
    fired = [(rule.name, send.status) for r in results for rule, send in r.sends]
    assert ("JobDown", "firing") in fired
    (down,) = [
        a for st in ev.states.values() for a in st.alerts() if a.labels["alertname"] == "JobDown"
    ]
    assert down.annotations == {"summary": "node has 0 up"}
    assert down.fired_at_ms == 2 * MIN


async def test_a_failing_rule_is_reported_and_the_others_still_run() -> None:
    storage = storage_with_up([0])
    ev = evaluator()
    result = await ev.evaluate(0, engine_query(Engine(storage)), storage)
    assert set(result.errors) == {"Broken"}
    assert "many" in result.errors["Broken"]  # many-to-many matching, from the engine
    assert {rule.name for rule, _send in result.sends} == {"Scalar"}


async def test_a_scalar_result_is_one_sample_without_labels() -> None:
    storage = storage_with_up([0])
    ev = evaluator()
    await ev.evaluate(0, engine_query(Engine(storage)), storage)
    scalar = next(st for st in ev.states.values() if st.rule.name == "Scalar")
    assert [a.labels for a in scalar.alerts()] == [{"alertname": "Scalar"}]


async def test_state_survives_a_restart_through_to_dict() -> None:
    storage = storage_with_up([0, 0, 0])
    query = engine_query(Engine(storage))
    ev = evaluator()
    await ev.evaluate(0, query, storage)  # JobDown pending since 0
    saved = json.loads(json.dumps(ev.to_dict()))
    again = evaluator()
    again.restore(saved)
    result = await again.evaluate(MIN, query, storage)
    assert ("JobDown", "firing") in [(r.name, s.status) for r, s in result.sends]


async def test_restore_ignores_rules_that_changed_position_or_name() -> None:
    ev = evaluator()
    ev.restore({"rules": {"1:Renamed": {"v": 1, "alerts": []}}})
    assert all(st.alerts() == [] for st in ev.states.values())


def test_record_sets_name_overrides_labels_and_drops_empty_values() -> None:
    rule = Rule(kind="record", name="r", expr="x", labels={"job": "fixed", "drop": ""})
    (sample,) = record(rule, [ResultSample({"__name__": "x", "job": "a", "drop": "v"}, 3.0)], 5)
    assert (sample.labels, sample.t_ms, sample.value) == ({"__name__": "r", "job": "fixed"}, 5, 3.0)


def test_record_rejects_duplicate_label_sets_and_enforces_the_limit() -> None:
    rule = Rule(kind="record", name="r", expr="x", labels={"job": "fixed"})
    dup = [ResultSample({"job": "a"}, 1.0), ResultSample({"job": "b"}, 2.0)]
    with pytest.raises(RuleEvalError, match="same labelset"):
        record(rule, dup, 0)
    plain = Rule(kind="record", name="r", expr="x")
    with pytest.raises(RuleEvalError, match="exceeded limit 1 with 2 series"):
        record(plain, dup, 0, limit=1)
