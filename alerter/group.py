"""Evaluation of one rule group at one instant: recording rules, alerting rules, sends.

Rules run in file order at the same timestamp, and what a rule writes (recorded
series, ``ALERTS``, ``ALERTS_FOR_STATE``) goes to the ``Appender`` before the next
rule runs, so a later rule sees it, as in Prometheus. A rule that fails (query
error, duplicate label sets, limit) is reported in ``GroupResult.errors`` and the
others still run; ``GroupResult.runs`` tells, per rule in file order, its error
(``None``: it evaluated) and how long it took, for the rule health that
``/api/v1/rules`` shows (``alerter.status``). The evaluator holds the alert state of every alerting rule
(keyed by rule position and name) and saves and restores it as one dict.

Recording rules follow Prometheus' ``RecordingRule.Eval``: ``__name__`` becomes the
rule's name, the rule's labels override the result's, two elements with the same
resulting labels are an error, and so is a result longer than the group's limit.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from alerter.errors import AlerterError
from alerter.rules.model import Rule, RuleGroup
from alerter.state import AlertingRuleState, ResultSample, RuleEvalError, Send, SeriesSample
from shared.promql.engine import Engine
from shared.promql.errors import PromQLError
from shared.wire import fingerprint

Query = Callable[[str, int], Awaitable[Sequence[ResultSample]]]
"""Evaluates an expression at a time (ms) to an instant vector; raises on failure."""


def engine_query(engine: Engine) -> Query:
    """``Query`` over the PromQL engine: Prometheus' ``EngineQueryFunc`` (a scalar is one sample)."""

    async def query(expr: str, ts_ms: int) -> list[ResultSample]:
        try:
            result = await engine.instant(expr, ts_ms)
        except PromQLError as exc:
            raise RuleEvalError(f"cannot evaluate {expr!r}: {exc}") from exc
        if result.kind == "scalar" and result.scalar is not None:
            return [ResultSample({}, result.scalar[1])]
        if result.kind != "vector":
            raise RuleEvalError(f"cannot evaluate {expr!r}: rule result is not a vector or scalar")
        return [ResultSample(s.labels, s.v) for s in result.vector]

    return query


class Appender(Protocol):
    def add(self, labels: dict[str, str], ts_ms: int, value: float) -> None:
        """Store one sample (labels include ``__name__``); called in evaluation order."""


def record(
    rule: Rule, result: Sequence[ResultSample], ts_ms: int, *, limit: int = 0
) -> list[SeriesSample]:
    """The samples a recording rule writes for ``result`` at ``ts_ms``."""
    out: list[SeriesSample] = []
    seen: set[str] = set()
    for sample in result:
        labels = {**sample.labels, **rule.labels, "__name__": rule.name}
        labels = {k: v for k, v in labels.items() if v != ""}
        fp = fingerprint(labels)
        if fp in seen:
            raise RuleEvalError(
                f"cannot evaluate rule {rule.name!r}: vector contains metrics with the same "
                "labelset after applying rule labels"
            )
        seen.add(fp)
        out.append(SeriesSample(labels, ts_ms, sample.value))
    if limit > 0 and len(out) > limit:
        raise RuleEvalError(
            f"cannot evaluate rule {rule.name!r}: exceeded limit {limit} with {len(out)} series"
        )
    return out


@dataclass(frozen=True, slots=True)
class RuleRun:
    """One rule's evaluation: why it failed (``None``: it did not) and how long it took.

    ``error`` is what Prometheus shows as ``lastError``: the query engine's own
    message when the query failed, else the rule's (duplicate label sets, limit).
    """

    error: str | None
    seconds: float


@dataclass
class GroupResult:
    written: list[SeriesSample] = field(default_factory=list)
    sends: list[tuple[Rule, Send]] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    """Rule name -> why it failed at this evaluation."""
    runs: list[RuleRun] = field(default_factory=list)
    """One per rule, in the group's order."""


def _last_error(exc: AlerterError) -> str:
    cause = exc.__cause__
    return str(cause) if isinstance(cause, PromQLError) else str(exc)


class GroupEvaluator:
    """Evaluates one ``RuleGroup`` at successive instants; holds its alert states."""

    def __init__(
        self,
        group: RuleGroup,
        *,
        default_interval_s: float,
        resend_delay_s: float,
        external_labels: Mapping[str, str] | None = None,
        external_url: str = "",
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.group = group
        self.timer = timer
        """Seconds from an arbitrary origin: times each rule's evaluation."""
        self.interval_ms = round((group.interval_s or default_interval_s) * 1000)
        self.resend_delay_ms = round(resend_delay_s * 1000)
        self.states: dict[str, AlertingRuleState] = {
            self._key(i, r): AlertingRuleState(
                r, external_labels=external_labels, external_url=external_url
            )
            for i, r in enumerate(group.rules)
            if r.kind == "alert"
        }

    @staticmethod
    def _key(index: int, rule: Rule) -> str:
        return f"{index}:{rule.name}"

    async def evaluate(self, ts_ms: int, query: Query, appender: Appender) -> GroupResult:
        out = GroupResult()
        limit = self.group.limit
        for index, rule in enumerate(self.group.rules):
            started = self.timer()
            try:
                result = await query(rule.expr, ts_ms)
                if rule.kind == "record":
                    written = record(rule, result, ts_ms, limit=limit)
                else:
                    state = self.states[self._key(index, rule)]
                    written = state.eval(result, ts_ms, limit=limit)
                    out.sends += [
                        (rule, s)
                        for s in state.sends(ts_ms, self.resend_delay_ms, self.interval_ms)
                    ]
            except AlerterError as exc:
                out.errors[rule.name] = str(exc)
                out.runs.append(RuleRun(_last_error(exc), self.timer() - started))
                continue
            for sample in written:
                appender.add(sample.labels, sample.t_ms, sample.value)
            out.written += written
            out.runs.append(RuleRun(None, self.timer() - started))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group.key, "rules": {k: s.to_dict() for k, s in self.states.items()}}

    def restore(self, data: Mapping[str, Any]) -> None:
        """Restore the rules whose position and name still match; others start empty."""
        for key, saved in (data.get("rules") or {}).items():
            state = self.states.get(key)
            if state is not None:
                state.restore(saved)
