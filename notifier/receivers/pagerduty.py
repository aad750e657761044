"""The PagerDuty receiver: Events API v2 (``routing_key``), or v1 for a legacy ``service_key``.

::

    POST <url, default https://events.pagerduty.com/v2/enqueue>
    {"routing_key": "<secret>", "event_action": "trigger" | "resolve",
     "dedup_key": "<sha256 of the group key>",
     "payload": {"summary": "<title, 1024>", "source": "<Vigil URL or client>",
                 "severity": "critical|error|warning|info", "timestamp": "...",
                 "component", "group", "class",
                 "custom_details": {"firing": "...", "resolved": "...", "num_firing": 2, ...}},
     "client": "Vigil", "client_url": "<Vigil URL>", "links": [...], "images": [...]}

``dedup_key`` is the SHA-256 of the group key, as Alertmanager computes it:
the same on every retry and every replica, so a duplicate after a crash
between PagerDuty's answer and the notification log is folded into the same
incident (the idempotency key). A group whose alerts are all resolved sends
``resolve`` (with ``send_resolved: false`` nothing is sent then, as the
pipeline drops resolved-only notifications). ``severity`` is a template; a
value outside PagerDuty's four becomes ``error``. Keys are secrets.
PagerDuty answers 202; 400 is permanent, 429 and 5xx are retried.
"""

from __future__ import annotations

import hashlib
from typing import Any

from notifier.config.receivers import PagerdutyConfig
from notifier.errors import PermanentError
from notifier.receivers.base import BuildContext, Notification
from notifier.receivers.http import HTTPIntegration, required_secret
from notifier.receivers.slack import cut
from notifier.template import TemplateError, Text, context, templates

EVENTS_V2_URL = "https://events.pagerduty.com/v2/enqueue"
EVENTS_V1_URL = "https://events.pagerduty.com/generic/2010-04-15/create_event.json"
SEVERITIES = frozenset({"critical", "error", "warning", "info"})
SUMMARY_MAX = 1024


def dedup_key(group_key: str) -> str:
    """Alertmanager's ``hashKey``: the hex SHA-256 of the group key."""
    return hashlib.sha256(group_key.encode()).hexdigest()


class PagerdutyIntegration(HTTPIntegration):
    kind = "pagerduty"

    def __init__(self, cfg: PagerdutyConfig, index: int, ctx: BuildContext) -> None:
        super().__init__(cfg, index, ctx)
        self.cfg: PagerdutyConfig = cfg
        t = templates()
        self.description = t.text(cfg.description, "title.j2")
        self.client = t.text(cfg.client, "username.j2")
        self.client_url = t.text(cfg.client_url, "vigil_url.j2")
        self.severity = t.text(cfg.severity, "empty.j2")
        self.source = t.text(cfg.source, "empty.j2") if cfg.source else None
        self.optional = {
            k: t.text(v, "empty.j2")
            for k, v in (("component", cfg.component), ("group", cfg.group), ("class", cfg.class_))
            if v
        }
        self.details: dict[str, Text] = {
            k: t.text(str(v), "empty.j2") for k, v in cfg.details.items()
        }

    def _details(self, n: Notification, data: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "firing": "\n".join(_line(a.labels, a.annotations) for a in n.firing),
            "resolved": "\n".join(_line(a.labels, a.annotations) for a in n.resolved),
            "num_firing": len(n.firing),
            "num_resolved": len(n.resolved),
        }
        for key in ("summary", "description", "runbook_url"):
            if data[key]:
                out[key] = data[key]
        out.update({k: t.render(data) for k, t in self.details.items()})
        return out

    def payload_v2(self, n: Notification, routing_key: str) -> dict[str, Any]:
        data = context(n)
        key = dedup_key(n.group_key)
        if n.status == "resolved":
            return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": key}
        severity = self.severity.render(data).lower()
        if "severity" not in self.cfg.model_fields_set:  # unset: the alerts' own severity
            severity = data["severity"].lower()
        client_url = self.client_url.render(data)
        payload: dict[str, Any] = {
            "summary": cut(self.description.render(data), SUMMARY_MAX),
            "source": (self.source.render(data) if self.source else "") or client_url or "vigil",
            "severity": severity if severity in SEVERITIES else "error",
            "timestamp": n.at.isoformat(),
            "custom_details": self._details(n, data),
        }
        payload.update({k: t.render(data) for k, t in self.optional.items()})
        doc: dict[str, Any] = {
            "routing_key": routing_key,
            "event_action": "trigger",
            "dedup_key": key,
            "payload": payload,
            "client": self.client.render(data) or "Vigil",
        }
        if client_url:
            doc["client_url"] = client_url
        links = [dict(link) for link in self.cfg.links]
        if data["runbook_url"]:
            links.append({"href": data["runbook_url"], "text": "Runbook"})
        if links:
            doc["links"] = links
        if self.cfg.images:
            doc["images"] = [dict(i) for i in self.cfg.images]
        return doc

    def payload_v1(self, n: Notification, service_key: str) -> dict[str, Any]:
        data = context(n)
        doc: dict[str, Any] = {
            "service_key": service_key,
            "event_type": "trigger" if n.status == "firing" else "resolve",
            "incident_key": dedup_key(n.group_key),
            "description": cut(self.description.render(data), SUMMARY_MAX),
            "details": self._details(n, data),
        }
        if n.status == "firing":
            doc["client"] = self.client.render(data) or "Vigil"
            if client_url := self.client_url.render(data):
                doc["client_url"] = client_url
        return doc

    async def notify(self, notification: Notification) -> None:
        what = f"pagerduty {notification.receiver}"
        base = self.ctx.base_dir
        v2 = self.cfg.routing_key is not None or self.cfg.routing_key_file is not None
        try:
            if v2:
                key = required_secret(self.cfg.routing_key, self.cfg.routing_key_file, base, what)
                doc = self.payload_v2(notification, key)
            else:
                key = required_secret(self.cfg.service_key, self.cfg.service_key_file, base, what)
                doc = self.payload_v1(notification, key)
        except TemplateError as exc:
            raise PermanentError(f"cannot notify {what}: {exc}") from exc
        url = self.cfg.url or (EVENTS_V2_URL if v2 else EVENTS_V1_URL)
        await self.post(url, doc, what=what)


def _line(labels: dict[str, str], annotations: dict[str, str]) -> str:
    name = annotations.get("summary") or labels.get("alertname", "")
    pairs = ", ".join(f"{k}={labels[k]}" for k in sorted(labels))
    return f"{name} [{pairs}]"


def build(cfg: PagerdutyConfig, index: int, ctx: BuildContext) -> PagerdutyIntegration:
    return PagerdutyIntegration(cfg, index, ctx)
