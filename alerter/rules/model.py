"""Loaded rules: what the evaluator runs. Immutable; built only by ``alerter.rules.load``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from alerter.template import Template


@dataclass(frozen=True, slots=True)
class Rule:
    """An alerting rule (``kind == "alert"``) or a recording rule (``"record"``).

    ``name`` is the alert name or the recorded metric name. Durations are
    seconds. ``label_templates``/``annotation_templates`` are compiled from
    ``labels``/``annotations`` (alerting rules only; a recording rule's labels
    are plain values, as in Prometheus).
    """

    kind: Literal["alert", "record"]
    name: str
    expr: str
    for_s: float = 0.0
    keep_firing_for_s: float = 0.0
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    label_templates: dict[str, Template] = field(default_factory=dict)
    annotation_templates: dict[str, Template] = field(default_factory=dict)
    line: int = 0
    """1-based line of the rule in its file (0 when not from a file)."""


@dataclass(frozen=True, slots=True)
class RuleGroup:
    """A group: rules evaluated in order at one instant, at ``interval_s`` (None: the default)."""

    name: str
    file: str
    rules: tuple[Rule, ...]
    interval_s: float | None = None
    query_offset_s: float | None = None
    limit: int = 0
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Prometheus' group key: ``file;name``."""
        return f"{self.file};{self.name}"
