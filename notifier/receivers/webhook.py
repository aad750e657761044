"""The webhook receiver: Alertmanager's webhook payload, version 4, POSTed as JSON.

::

    {"version": "4", "groupKey": "<route key>:<group labels>", "truncatedAlerts": 0,
     "status": "firing|resolved", "receiver": "<name>", "groupLabels": {...},
     "commonLabels": {...}, "commonAnnotations": {...}, "externalURL": "<url>",
     "alerts": [{"status", "labels", "annotations", "startsAt", "endsAt",
                 "generatorURL", "fingerprint"}, ...]}

Times are RFC 3339 in UTC with Go's trimmed fraction (``2026-01-05T12:00:00.5Z``).
``max_alerts`` > 0 keeps the first alerts and counts the rest in ``truncatedAlerts``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from notifier.config.common import read_secret
from notifier.config.receivers import WebhookConfig
from notifier.errors import PermanentError
from notifier.receivers.base import BuildContext, Notification
from notifier.receivers.http import build_client, post_json
from notifier.ssrf import URLGuard


def go_time(when: datetime) -> str:
    """Go's ``time.Time`` JSON form (RFC 3339 with nanoseconds, trailing zeros trimmed)."""
    when = when.astimezone(UTC)
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    if when.microsecond:
        text += f".{when.microsecond:06d}".rstrip("0")
    return text + "Z"


def payload(n: Notification, max_alerts: int = 0) -> dict[str, Any]:
    alerts = n.alerts
    truncated = 0
    if max_alerts and len(alerts) > max_alerts:
        truncated = len(alerts) - max_alerts
        alerts = alerts[:max_alerts]
    resolved = {a.fingerprint for a in n.resolved}
    return {
        "receiver": n.receiver,
        "status": n.status,
        "alerts": [
            {
                "status": "resolved" if a.fingerprint in resolved else "firing",
                "labels": dict(a.labels),
                "annotations": dict(a.annotations),
                "startsAt": go_time(a.starts_at),
                "endsAt": go_time(a.ends_at),
                "generatorURL": a.generator_url,
                "fingerprint": a.fingerprint,
            }
            for a in alerts
        ],
        "groupLabels": dict(n.group_labels),
        "commonLabels": n.common_labels,
        "commonAnnotations": n.common_annotations,
        "externalURL": n.external_url,
        "version": "4",
        "groupKey": n.group_key,
        "truncatedAlerts": truncated,
    }


class WebhookIntegration:
    kind = "webhook"

    def __init__(self, cfg: WebhookConfig, index: int, ctx: BuildContext) -> None:
        self.cfg = cfg
        self.index = index
        self.send_resolved = cfg.send_resolved
        self._ctx = ctx
        self._guard: URLGuard = ctx.guard
        self._client: httpx.AsyncClient | None = None

    def _url(self) -> str:
        try:
            url = read_secret(self.cfg.url, self.cfg.url_file, self._ctx.base_dir)
        except ValueError as exc:
            raise PermanentError(f"cannot notify webhook: {exc}") from exc
        if not url:
            raise PermanentError("cannot notify webhook: empty URL")
        return url.strip()

    async def notify(self, notification: Notification) -> None:
        if self._client is None:
            self._client = build_client(self.cfg.http_config, self._ctx.base_dir, self._guard)
        await post_json(
            self._client,
            self._guard,
            self._url(),
            payload(notification, self.cfg.max_alerts),
            what=f"webhook {notification.receiver}",
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def build(cfg: WebhookConfig, index: int, ctx: BuildContext) -> WebhookIntegration:
    return WebhookIntegration(cfg, index, ctx)
