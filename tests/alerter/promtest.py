"""A small ``promtool test rules`` harness: input series, evaluation at an interval, alerts at times.

Test files use promtool's format (``rule_files``, ``evaluation_interval``,
``tests[].interval``, ``input_series`` in the expanding notation, and
``alert_rule_test`` with ``eval_time``, ``alertname``, ``exp_alerts``), so the same
file also runs under the real promtool as an oracle. Rules are loaded with
``alerter.rules``, evaluated by ``shared.promql.Engine`` over ``MemoryStorage``, and
the alerts come from ``alerter.state``; recording-rule results and the ``ALERTS``
series are written back to the storage, as Prometheus does. As in promtool, an
alert test at ``eval_time`` sees the firing alerts after the last evaluation at or
before it. ``run_test`` also returns every event sent (firing and resolved), which
promtool cannot check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import promql_parser
import yaml

from alerter.group import GroupEvaluator, engine_query
from alerter.rules import RuleGroup, load_file
from alerter.state import Send
from shared.duration import parse_duration
from shared.promql.engine import Engine
from shared.promql.memory import MemoryStorage
from shared.wire import STALE_NAN

_NUM = r"[-+]?(?:Inf|NaN|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+)"
_EXPAND = re.compile(rf"(?P<a>{_NUM})(?:(?P<op>[-+])(?P<b>{_NUM}))?x(?P<n>\d+)")
_BLANKS = re.compile(r"_x(\d+)")
_NUMBER = re.compile(_NUM)


def expand_values(text: str) -> list[float | None]:
    """promtool's notation: ``1 2 _ stale``, ``a+bxn`` (n+1 values), ``axn``, ``_xn`` (n blanks)."""
    out: list[float | None] = []
    for token in text.split():
        if token == "_":
            out.append(None)
        elif token == "stale":
            out.append(STALE_NAN)
        elif m := _BLANKS.fullmatch(token):
            out.extend([None] * int(m.group(1)))
        elif m := _EXPAND.fullmatch(token):
            value = float(m.group("a"))
            step = float(m.group("b") or 0) * (-1 if m.group("op") == "-" else 1)
            for _ in range(int(m.group("n")) + 1):
                out.append(value)
                value += step
        elif _NUMBER.fullmatch(token):
            out.append(float(token))
        else:
            raise ValueError(f"cannot parse series value {token!r} in {text!r}")
    return out


def series_labels(text: str) -> dict[str, str]:
    """``name{a="b"}`` to a label set with ``__name__``."""
    node: Any = promql_parser.parse(text)
    labels = {m.name: m.value for m in node.matchers.matchers}
    if node.name:
        labels["__name__"] = node.name
    return labels


def _ms(value: Any) -> int:
    return round(parse_duration(str(value)) * 1000)


@dataclass
class Failure:
    eval_time_ms: int
    alertname: str
    expected: list[dict[str, Any]]
    got: list[dict[str, Any]]


@dataclass
class Outcome:
    failures: list[Failure] = field(default_factory=list)
    sends: list[tuple[int, Send]] = field(default_factory=list)
    """Every event the state machine asked to send, with the evaluation time."""


async def run_test(
    test: dict[str, Any],
    groups: list[RuleGroup],
    evaluation_interval_ms: int,
    *,
    resend_delay_ms: int = 60_000,
    external_labels: dict[str, str] | None = None,
) -> Outcome:
    storage = MemoryStorage()
    interval = _ms(test.get("interval", "1m"))
    for entry in test.get("input_series") or []:
        labels = series_labels(entry["series"])
        for i, value in enumerate(expand_values(str(entry.get("values", "")))):
            if value is not None:
                storage.add(labels, i * interval, value)
    query = engine_query(Engine(storage))
    evaluators = [
        GroupEvaluator(
            g,
            default_interval_s=evaluation_interval_ms / 1000,
            resend_delay_s=resend_delay_ms / 1000,
            external_labels=external_labels,
        )
        for g in groups
    ]
    checks = sorted(test.get("alert_rule_test") or [], key=lambda c: _ms(c["eval_time"]))
    end = max([_ms(c["eval_time"]) for c in checks] + [0])
    outcome = Outcome()
    pending = list(checks)
    ts = 0
    while ts <= end:
        for evaluator in evaluators:
            result = await evaluator.evaluate(ts, query, storage)
            if result.errors:
                raise AssertionError(f"rule evaluation failed at {ts} ms: {result.errors}")
            outcome.sends += [(ts, send) for _rule, send in result.sends]
        while pending and _ms(pending[0]["eval_time"]) < ts + evaluation_interval_ms:
            _compare(pending.pop(0), evaluators, outcome)
        ts += evaluation_interval_ms
    return outcome


def _compare(check: dict[str, Any], evaluators: list[GroupEvaluator], outcome: Outcome) -> None:
    name = check["alertname"]
    got = sorted(
        (
            {"exp_labels": a.labels, "exp_annotations": a.annotations}
            for ev in evaluators
            for st in ev.states.values()
            if st.rule.name == name
            for a in st.alerts()
            if a.state.value == "firing"
        ),
        key=lambda d: sorted(d["exp_labels"].items()),
    )
    expected = sorted(
        (
            {
                "exp_labels": {
                    **{str(k): str(v) for k, v in (e.get("exp_labels") or {}).items()},
                    "alertname": name,
                },
                "exp_annotations": {
                    str(k): str(v) for k, v in (e.get("exp_annotations") or {}).items()
                },
            }
            for e in check.get("exp_alerts") or []
        ),
        key=lambda d: sorted(d["exp_labels"].items()),
    )
    if got != expected:
        outcome.failures.append(Failure(_ms(check["eval_time"]), name, expected, got))


@dataclass
class Suite:
    """A promtool test file with its rule files loaded."""

    tests: list[dict[str, Any]]
    groups: list[RuleGroup]
    evaluation_interval_ms: int


def load_suite(path: Path) -> Suite:
    doc = yaml.safe_load(path.read_text())
    groups: list[RuleGroup] = []
    for rel in doc.get("rule_files") or []:
        groups.extend(load_file(path.parent / rel))
    return Suite(doc.get("tests") or [], groups, _ms(doc.get("evaluation_interval", "1m")))


async def run_suite(suite: Suite) -> list[Failure]:
    """Every test of a suite; the failures (empty when all pass)."""
    failures: list[Failure] = []
    for test in suite.tests:
        outcome = await run_test(
            test,
            suite.groups,
            suite.evaluation_interval_ms,
            external_labels=test.get("external_labels"),
        )
        failures.extend(outcome.failures)
    return failures
