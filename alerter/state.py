"""The alert state machine of one alerting rule: Prometheus' ``AlertingRule.Eval`` and ``sendAlerts``.

Pure and synchronous: the caller evaluates the rule's expression and passes the
result vector with the evaluation time (ms, taken from the data); the clock is
never read here. Per label set (fingerprint of the alert's labels):

- a new result element creates a **pending** alert (``active_at`` = now); it turns
  **firing** once ``now - active_at >= for`` (at once when ``for`` is 0; ``fired_at`` = now);
- an element that disappears drops a pending alert silently; a firing alert stays
  firing while ``now - keep_firing_since < keep_firing_for`` (``keep_firing_since``
  set at the first evaluation without it and cleared when it comes back), and
  otherwise becomes **inactive** (resolved, ``resolved_at`` = now);
- a resolved alert is kept ``RESOLVED_RETENTION_MS`` (15 min) so its resolution is
  re-sent, then forgotten; if the element comes back meanwhile, a new pending alert
  replaces it (a new ``active_at``).

``sends(now, resend_delay, interval)`` is ``sendAlerts``: non-pending alerts that were
resolved since their last send, or last sent more than ``resend_delay`` ago, are
returned with ``ends_at`` = ``resolved_at`` or ``now + 4 * max(interval, resend_delay)``
(``valid_until``: so an alert whose resolve is lost expires by itself), and
``starts_at`` = ``fired_at``. ``eval`` returns the ``ALERTS`` and
``ALERTS_FOR_STATE`` samples Prometheus writes for the active alerts.

``to_dict``/``from_dict`` carry everything (timers, last send) so that a restarted
alerter keeps ``for`` timers and does not re-send what it sent a moment ago.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from alerter.errors import AlerterError
from alerter.rules.model import Rule
from shared.wire import fingerprint

RESOLVED_RETENTION_MS = 15 * 60 * 1000
"""Prometheus' ``resolvedRetention``: how long a resolved alert is kept (and re-sent)."""
STATE_VERSION = 1


class AlertState(Enum):
    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"


class RuleEvalError(AlerterError):
    """The evaluation result cannot be turned into alerts (duplicate label sets, limit)."""


@dataclass(frozen=True, slots=True)
class ResultSample:
    """One element of the rule expression's result: the series' labels and value."""

    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True, slots=True)
class SeriesSample:
    """An ``ALERTS``/``ALERTS_FOR_STATE`` sample (labels include ``__name__``)."""

    labels: dict[str, str]
    t_ms: int
    value: float


@dataclass(slots=True)
class Alert:
    """One alert instance; times are ms since the epoch, ``None`` when unset."""

    labels: dict[str, str]
    annotations: dict[str, str]
    state: AlertState
    value: float
    active_at_ms: int
    fired_at_ms: int | None = None
    resolved_at_ms: int | None = None
    last_sent_at_ms: int | None = None
    valid_until_ms: int | None = None
    keep_firing_since_ms: int | None = None
    resolve_sent: bool = False
    """The resolution was sent (Prometheus compares ``ResolvedAt`` with ``LastSentAt``;
    a flag also holds when a re-evaluation at the same instant resolves the alert)."""
    fingerprint: str = field(default="")

    def __post_init__(self) -> None:
        if not self.fingerprint:
            self.fingerprint = fingerprint(self.labels)

    def needs_sending(self, now_ms: int, resend_delay_ms: int) -> bool:
        """Prometheus' ``Alert.needsSending``."""
        if self.state is AlertState.PENDING:
            return False
        if self.resolved_at_ms is not None and not self.resolve_sent:
            return True
        if self.last_sent_at_ms is None:
            return True
        return self.last_sent_at_ms + resend_delay_ms < now_ms

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "state": self.state.value,
            "value": repr(self.value),  # a string: NaN and ±Inf survive any JSON
            "active_at_ms": self.active_at_ms,
            "fired_at_ms": self.fired_at_ms,
            "resolved_at_ms": self.resolved_at_ms,
            "last_sent_at_ms": self.last_sent_at_ms,
            "valid_until_ms": self.valid_until_ms,
            "keep_firing_since_ms": self.keep_firing_since_ms,
            "resolve_sent": self.resolve_sent,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Alert:
        def opt(key: str) -> int | None:
            value = data.get(key)
            return None if value is None else int(value)

        return cls(
            labels={str(k): str(v) for k, v in data["labels"].items()},
            annotations={str(k): str(v) for k, v in data.get("annotations", {}).items()},
            state=AlertState(data["state"]),
            value=float(data.get("value", "nan")),
            active_at_ms=int(data["active_at_ms"]),
            fired_at_ms=opt("fired_at_ms"),
            resolved_at_ms=opt("resolved_at_ms"),
            last_sent_at_ms=opt("last_sent_at_ms"),
            valid_until_ms=opt("valid_until_ms"),
            keep_firing_since_ms=opt("keep_firing_since_ms"),
            resolve_sent=bool(data.get("resolve_sent", _resolve_was_sent(data))),
        )


def _resolve_was_sent(data: Mapping[str, Any]) -> bool:
    """For states saved before ``resolve_sent``: Prometheus' time comparison."""
    resolved, sent = data.get("resolved_at_ms"), data.get("last_sent_at_ms")
    return resolved is not None and sent is not None and int(resolved) <= int(sent)


@dataclass(frozen=True, slots=True)
class Send:
    """An alert to publish now: Alertmanager's model fields, times in ms."""

    alert: Alert
    status: str  # "firing" | "resolved"
    starts_at_ms: int
    ends_at_ms: int


class AlertingRuleState:
    """The alerts of one alerting rule (Prometheus' ``AlertingRule.active``)."""

    def __init__(
        self,
        rule: Rule,
        *,
        external_labels: Mapping[str, str] | None = None,
        external_url: str = "",
    ) -> None:
        if rule.kind != "alert":
            raise ValueError(f"BUG: rule {rule.name!r} is a recording rule")
        self.rule = rule
        self.external_labels = dict(external_labels or {})
        self.external_url = external_url
        self.active: dict[str, Alert] = {}
        self._for_ms = round(rule.for_s * 1000)
        self._keep_ms = round(rule.keep_firing_for_s * 1000)

    # ------------------------------------------------------------------ eval
    def _expand(self, sample: ResultSample) -> tuple[dict[str, str], dict[str, str]]:
        series = dict(sample.labels)
        name = f"__alert_{self.rule.name}"
        kwargs: dict[str, object] = {
            "labels": series,
            "value": sample.value,
            "external_labels": self.external_labels,
            "external_url": self.external_url,
        }
        labels = {k: v for k, v in series.items() if k != "__name__"}
        for key, tpl in self.rule.label_templates.items():
            labels[key] = tpl.expand(name, **kwargs)
        labels["alertname"] = self.rule.name
        annotations = {
            k: t.expand(name, **kwargs) for k, t in self.rule.annotation_templates.items()
        }
        return labels, annotations

    def eval(
        self, result: Iterable[ResultSample], now_ms: int, *, limit: int = 0
    ) -> list[SeriesSample]:
        """Advance every alert to ``now_ms`` given the expression's result; ALERTS samples out.

        Raises ``RuleEvalError`` (state left as Prometheus leaves it) when two
        elements give the same alert labels, or more than ``limit`` (> 0) alerts
        are pending or firing (then every alert is dropped, as Prometheus does).
        """
        fresh: dict[str, Alert] = {}
        for sample in result:
            labels, annotations = self._expand(sample)
            alert = Alert(labels, annotations, AlertState.PENDING, sample.value, now_ms)
            if alert.fingerprint in fresh:
                raise RuleEvalError(
                    f"cannot evaluate rule {self.rule.name!r}: vector contains metrics with the "
                    "same labelset after applying alert labels"
                )
            fresh[alert.fingerprint] = alert

        for fp, alert in fresh.items():
            known = self.active.get(fp)
            if known is not None and known.state is not AlertState.INACTIVE:
                known.value = alert.value
                known.annotations = alert.annotations
                continue
            self.active[fp] = alert

        out: list[SeriesSample] = []
        counted = 0
        for fp, alert in list(self.active.items()):
            if fp in fresh:
                alert.keep_firing_since_ms = None
            elif not self._absent(fp, alert, now_ms):
                continue
            counted += 1
            if alert.state is AlertState.PENDING and now_ms - alert.active_at_ms >= self._for_ms:
                alert.state = AlertState.FIRING
                alert.fired_at_ms = now_ms
            out.extend(self._series(alert, now_ms))
        if limit > 0 and counted > limit:
            self.active = {}
            raise RuleEvalError(
                f"cannot evaluate rule {self.rule.name!r}: exceeded limit of {limit} with {counted} alerts"
            )
        return out

    def _absent(self, fp: str, alert: Alert, now_ms: int) -> bool:
        """Handle an alert missing from the result; True when it keeps firing."""
        keep = False
        if alert.state is AlertState.FIRING and self._keep_ms > 0:
            if alert.keep_firing_since_ms is None:
                alert.keep_firing_since_ms = now_ms
            keep = now_ms - alert.keep_firing_since_ms < self._keep_ms
        if alert.state is AlertState.PENDING or (
            alert.resolved_at_ms is not None
            and now_ms - alert.resolved_at_ms > RESOLVED_RETENTION_MS
        ):
            del self.active[fp]
        if alert.state is not AlertState.INACTIVE and not keep:
            alert.state = AlertState.INACTIVE
            alert.resolved_at_ms = now_ms
        return keep

    @staticmethod
    def _series(alert: Alert, now_ms: int) -> list[SeriesSample]:
        alerts = {**alert.labels, "__name__": "ALERTS", "alertstate": alert.state.value}
        for_state = {**alert.labels, "__name__": "ALERTS_FOR_STATE"}
        return [
            SeriesSample(alerts, now_ms, 1.0),
            # Prometheus writes ActiveAt.Unix(): whole seconds.
            SeriesSample(for_state, now_ms, float(math.floor(alert.active_at_ms / 1000))),
        ]

    # ------------------------------------------------------------------ send
    def sends(self, now_ms: int, resend_delay_ms: int, interval_ms: int) -> list[Send]:
        """Alerts to publish at ``now_ms`` (marks them sent): Prometheus' ``sendAlerts``."""
        out: list[Send] = []
        delta = max(interval_ms, resend_delay_ms)
        for alert in self.active.values():
            if not alert.needs_sending(now_ms, resend_delay_ms):
                continue
            alert.last_sent_at_ms = now_ms
            valid_until = alert.valid_until_ms = now_ms + 4 * delta
            snapshot = replace(
                alert, labels=dict(alert.labels), annotations=dict(alert.annotations)
            )
            resolved_at = alert.resolved_at_ms
            fired_at = alert.fired_at_ms
            alert.resolve_sent = resolved_at is not None
            out.append(
                Send(
                    alert=snapshot,
                    status="firing" if resolved_at is None else "resolved",
                    starts_at_ms=alert.active_at_ms if fired_at is None else fired_at,
                    ends_at_ms=valid_until if resolved_at is None else resolved_at,
                )
            )
        return out

    # ----------------------------------------------------------------- views
    def alerts(self) -> list[Alert]:
        """Every alert held, resolved ones included, ordered by labels."""
        return sorted(self.active.values(), key=lambda a: sorted(a.labels.items()))

    def state(self) -> AlertState:
        """The rule's state: the highest of its alerts (firing > pending > inactive)."""
        order = [AlertState.INACTIVE, AlertState.PENDING, AlertState.FIRING]
        return max(
            (a.state for a in self.active.values()), key=order.index, default=AlertState.INACTIVE
        )

    # ----------------------------------------------------------------- state
    def to_dict(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "rule": self.rule.name,
            "alerts": [a.to_dict() for a in self.alerts()],
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        """Load what ``to_dict`` saved (for this rule); alerts already held are replaced."""
        if data.get("v") != STATE_VERSION:
            raise RuleEvalError(
                f"cannot restore rule {self.rule.name!r}: state version {data.get('v')!r}"
            )
        alerts = [Alert.from_dict(a) for a in data.get("alerts", [])]
        self.active = {a.fingerprint: a for a in alerts}
