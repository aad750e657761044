"""The seam between delivery and the receivers: one ``Integration`` per configured integration.

``Notification`` is what one integration is asked to send: Alertmanager's
template data for one group flush (receiver, status, alerts, group labels,
common labels and annotations, external URL, group key), already filtered
(silenced and inhibited alerts removed; resolved ones removed when the
integration has ``send_resolved: false``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol

from notifier.ssrf import URLGuard
from shared.wire import AlertEvent


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    out = dict(maps[0])
    for m in maps[1:]:
        out = {k: v for k, v in out.items() if m.get(k) == v}
    return out


@dataclass(frozen=True, slots=True)
class Notification:
    receiver: str
    group_key: str
    group_labels: dict[str, str]
    firing: list[AlertEvent]
    resolved: list[AlertEvent]
    external_url: str = ""
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def alerts(self) -> list[AlertEvent]:
        return [*self.firing, *self.resolved]

    @property
    def status(self) -> Literal["firing", "resolved"]:
        return "firing" if self.firing else "resolved"

    def alert_status(self, alert: AlertEvent) -> Literal["firing", "resolved"]:
        resolved = any(a.fingerprint == alert.fingerprint for a in self.resolved)
        return "resolved" if resolved else "firing"

    @property
    def common_labels(self) -> dict[str, str]:
        return _common([a.labels for a in self.alerts])

    @property
    def common_annotations(self) -> dict[str, str]:
        return _common([a.annotations for a in self.alerts])

    def without_resolved(self) -> Notification:
        return Notification(
            self.receiver,
            self.group_key,
            self.group_labels,
            self.firing,
            [],
            self.external_url,
            self.at,
        )


@dataclass(frozen=True, slots=True)
class BuildContext:
    """What a receiver module needs to build its integration from configuration."""

    base_dir: Path
    guard: URLGuard
    external_url: str = ""


class Integration(Protocol):
    """One configured integration of a receiver (``webhook_configs[0]`` of ``team-a``).

    Contract: ``notify`` makes exactly one attempt and returns when the
    provider accepted it; it raises ``RetryableError`` (timeouts, network
    errors, 5xx, 429, with ``retry_after`` when the provider said) or
    ``PermanentError`` (4xx, refused URL, unusable configuration), never
    anything else, and never puts secrets (URLs' paths, tokens) in messages.
    Retries, per-attempt timeouts and concurrency are the caller's
    (``notifier.delivery``); an integration may be called from several tasks
    at once for different groups. ``close`` releases connections.
    """

    kind: str
    index: int
    send_resolved: bool

    async def notify(self, notification: Notification) -> None: ...

    async def close(self) -> None: ...
