"""Rule health and evaluation status of one group: what ``/api/v1/rules`` shows.

The alerter publishes one status document per group to KV ``alert_state`` under
``status_key(group key)`` = ``rules.<group key as a host token>``. A host token
never contains ``.``, so these keys cannot collide with the alert-state keys
(the bare token) that restore and the notifier read; ``.`` and the token's
characters are all legal in a KV key. The document, JSON (``STATUS_VERSION``)::

    {"v": 1, "group": "<file>;<name>", "name", "file", "position",
     "interval": <s>, "limit": <n>,
     "last_evaluation_ms": <ms, 0: never>, "evaluation_time_s": <s>,
     "rules": [{"key": "<pos>:<name>", "type": "alerting" | "recording",
                "name", "query", "labels",
                "duration": <s>, "keep_firing_for": <s>, "annotations",   (alerting only)
                "health": "ok" | "err" | "unknown", "last_error": "",
                "last_evaluation_ms", "evaluation_time_s"}, ...]}

``position`` is the group's place in the alerter's load order (files sorted,
groups in file order). ``last_evaluation_ms`` is the evaluation's timestamp (data
time, as ``eval_ms`` of the alert state); ``evaluation_time_s`` the wall time it
took. A rule's ``health`` is ``unknown`` until it is evaluated, then ``ok`` or
``err`` (``last_error`` set) as its latest evaluation went. The alerts themselves
stay in the alert-state document, keyed by the same ``<pos>:<name>``.

Writes are debounced (``GroupStatus.due``): the first evaluation after a start or
a change of the group's rules is written at once, so is one that changes a
rule's health; otherwise at most one write per ``alerter.status_write_interval``
per group, the latest evaluation being written when the interval has passed
(the evaluation loop wakes for it), so a group evaluated many times a second
costs one KV write per interval. Pure: the caller passes the wall clock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from alerter.group import RuleRun
from alerter.rules.model import Rule, RuleGroup
from shared import hosttoken
from shared.wire import RULE_STATUS_PREFIX

STATUS_VERSION = 1
_RUN_FIELDS = ("health", "last_error", "last_evaluation_ms", "evaluation_time_s")


def status_key(group_key: str) -> str:
    """The KV key of a group's status document (never equal to an alert-state key)."""
    return RULE_STATUS_PREFIX + hosttoken.encode(group_key)


def rule_definition(index: int, rule: Rule) -> dict[str, Any]:
    """What the document says of a rule apart from how its evaluations went."""
    out: dict[str, Any] = {
        "key": f"{index}:{rule.name}",
        "type": "alerting" if rule.kind == "alert" else "recording",
        "name": rule.name,
        "query": rule.expr,
        "labels": dict(rule.labels),
    }
    if rule.kind == "alert":
        out |= {
            "duration": rule.for_s,
            "keep_firing_for": rule.keep_firing_for_s,
            "annotations": dict(rule.annotations),
        }
    return out


def definition_of(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A status document without its evaluation fields: equal when the rules are."""
    rules = doc.get("rules")
    return {
        **{k: v for k, v in doc.items() if k not in ("rules", *_RUN_FIELDS)},
        "rules": [
            {k: v for k, v in r.items() if k not in _RUN_FIELDS}
            for r in (rules if isinstance(rules, list) else [])
            if isinstance(r, Mapping)
        ],
    }


@dataclass(slots=True)
class RuleStatus:
    health: str = "unknown"
    last_error: str = ""
    last_evaluation_ms: int = 0
    evaluation_time_s: float = 0.0


class GroupStatus:
    """The health of a group's rules and when its document is next to be written."""

    def __init__(self, group: RuleGroup, *, interval_s: float, position: int) -> None:
        self.group = group
        self.key = status_key(group.key)
        self.definition: dict[str, Any] = {
            "v": STATUS_VERSION,
            "group": group.key,
            "name": group.name,
            "file": group.file,
            "position": position,
            "interval": interval_s,
            "limit": group.limit,
            "rules": [rule_definition(i, r) for i, r in enumerate(group.rules)],
        }
        self.rules = [RuleStatus() for _ in group.rules]
        self.last_evaluation_ms = 0
        self.evaluation_time_s = 0.0
        self.written_ms: int | None = None
        """Wall time of the last write (``None``: none since start or a rules change)."""
        self.dirty = True
        """Something not yet written."""
        self.urgent = True
        """Write at the next chance, whatever the interval (new rules, a health change)."""

    def carry(self, previous: GroupStatus) -> None:
        """Keep what ``previous`` (the same group before a reload) knew of unchanged rules."""
        old = {
            r["key"]: (r, s)
            for r, s in zip(previous.definition["rules"], previous.rules, strict=True)
        }
        for i, rule in enumerate(self.definition["rules"]):
            hit = old.get(rule["key"])
            if hit is not None and hit[0] == rule:
                self.rules[i] = dataclasses.replace(hit[1])
        self.last_evaluation_ms = previous.last_evaluation_ms
        self.evaluation_time_s = previous.evaluation_time_s
        if self.definition == previous.definition:
            self.written_ms, self.dirty, self.urgent = (
                previous.written_ms,
                previous.dirty,
                previous.urgent,
            )

    def restore(self, doc: Mapping[str, Any]) -> bool:
        """Take the health of a saved document when it describes the same rules.

        Returns whether it did: then the saved document is current and need not be
        written again before the next evaluation.
        """
        if definition_of(doc) != self.definition:
            return False
        try:
            rules = [
                RuleStatus(
                    health=str(saved["health"]),
                    last_error=str(saved.get("last_error", "")),
                    last_evaluation_ms=int(saved["last_evaluation_ms"]),
                    evaluation_time_s=float(saved["evaluation_time_s"]),
                )
                for saved in doc["rules"]
            ]
            last, took = int(doc["last_evaluation_ms"]), float(doc["evaluation_time_s"])
        except (KeyError, TypeError, ValueError):
            return False
        self.rules, self.last_evaluation_ms, self.evaluation_time_s = rules, last, took
        self.dirty = self.urgent = False
        return True

    def record(self, at_ms: int, seconds: float, runs: Sequence[RuleRun]) -> None:
        """Take an evaluation of the group at ``at_ms`` that took ``seconds``."""
        # Go's time.Duration.Seconds(): whole nanoseconds
        self.last_evaluation_ms, self.evaluation_time_s = at_ms, round(seconds, 9)
        for status, run in zip(self.rules, runs, strict=False):
            health = "ok" if run.error is None else "err"
            if health != status.health:
                self.urgent = True
            status.health, status.last_error = health, run.error or ""
            status.last_evaluation_ms, status.evaluation_time_s = at_ms, round(run.seconds, 9)
        self.dirty = True

    def due(self, now_ms: int, interval_ms: int) -> bool:
        """Whether the document is to be written now (wall clock ``now_ms``)."""
        at = self.due_at(interval_ms)
        return at is not None and now_ms >= at

    def due_at(self, interval_ms: int) -> int | None:
        """Wall time at which an unwritten evaluation falls due, ``None`` if nothing waits."""
        if not self.dirty:
            return None
        if self.urgent or self.written_ms is None:
            return 0
        return self.written_ms + interval_ms

    def written(self, now_ms: int) -> None:
        self.written_ms, self.dirty, self.urgent = now_ms, False, False

    def document(self) -> dict[str, Any]:
        return {
            **self.definition,
            "last_evaluation_ms": self.last_evaluation_ms,
            "evaluation_time_s": self.evaluation_time_s,
            "rules": [
                {**d, **dataclasses.asdict(s)}
                for d, s in zip(self.definition["rules"], self.rules, strict=True)
            ],
        }
