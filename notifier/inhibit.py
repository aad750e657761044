"""Inhibition: a firing source alert mutes matching target alerts (Alertmanager's ``inhibit``).

A rule mutes alert *T* when *T* matches the rule's target matchers and some
other alert *S* that is not resolved at ``now`` matches the source matchers
and has the same value (absent = ``""``) as *T* for every ``equal`` label.
When *T* matches the source matchers too, *S* must not match the target
matchers: an alert never inhibits itself, and two alerts that both match both
sides do not inhibit each other. Pure: alerts and the clock passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from notifier.alerts import is_resolved
from notifier.config.models import InhibitRuleConfig
from shared.alertmanager.matchers import LabelMatcher, matches_all
from shared.wire import AlertEvent


@dataclass(frozen=True, slots=True)
class InhibitRule:
    sources: tuple[LabelMatcher, ...]
    targets: tuple[LabelMatcher, ...]
    equal: tuple[str, ...]

    @classmethod
    def from_config(cls, cfg: InhibitRuleConfig) -> InhibitRule:
        return cls(cfg.sources(), cfg.targets(), tuple(cfg.equal))


class Inhibitor:
    """The rules plus the alerts that can be sources (refresh with ``set_alerts``)."""

    def __init__(self, rules: Iterable[InhibitRule]) -> None:
        self.rules = list(rules)
        self._sources: list[list[AlertEvent]] = [[] for _ in self.rules]

    def set_alerts(self, alerts: Iterable[AlertEvent]) -> None:
        """Index the known alerts by the rules whose source side they match."""
        self._sources = [[] for _ in self.rules]
        for alert in alerts:
            for i, rule in enumerate(self.rules):
                if matches_all(rule.sources, alert.labels):
                    self._sources[i].append(alert)

    def inhibited_by(self, labels: Mapping[str, str], now: datetime) -> list[str]:
        """Fingerprints of the firing alerts that inhibit an alert with ``labels``."""
        out: set[str] = set()
        for rule, sources in zip(self.rules, self._sources, strict=True):
            if not matches_all(rule.targets, labels):
                continue
            two_sided = matches_all(rule.sources, labels)
            for src in sources:
                if is_resolved(src, now):
                    continue
                if any(src.labels.get(n, "") != labels.get(n, "") for n in rule.equal):
                    continue
                if two_sided and matches_all(rule.targets, src.labels):
                    continue
                out.add(src.fingerprint)
                break
        return sorted(out)
