"""The Opsgenie receiver: the Alert API, create while firing and close when resolved.

::

    POST <api_url>v2/alerts                      Authorization: GenieKey <api_key>
    {"message": "<title, 130>", "alias": "<sha256 of the group key>",
     "description": "<Markdown, 15000>", "details": {...}, "source": "<Vigil URL>",
     "tags": ["a", "b"], "priority": "P1".."P5", "note": "...", "entity": "...",
     "responders": [{"type": "team", "name": "ops"}], "actions": [...], "visibleTo": [...]}

    POST <api_url>v2/alerts/<alias>/close?identifierType=alias
    {"source": "...", "note": "..."}

``alias`` is the SHA-256 of the group key, as Alertmanager computes it: the
same on every retry and replica, so Opsgenie de-duplicates a repeated create
(it counts it on the open alert) and the close finds the alert (the
idempotency key). ``message``, ``description``, ``source``, ``note``,
``priority``, ``entity``, ``tags`` (comma-separated) and ``details`` values
are templates. The API key is a secret, sent in a header and never shown.
Opsgenie answers 202; 4xx but 429 are permanent. ``update_alerts`` (editing
an open alert's message and description) is not implemented.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import quote

from notifier.config.receivers import OpsgenieConfig
from notifier.errors import PermanentError
from notifier.receivers.base import BuildContext, Notification
from notifier.receivers.http import HTTPIntegration, required_secret
from notifier.receivers.slack import cut
from notifier.template import TemplateError, Text, context, templates

DEFAULT_API_URL = "https://api.opsgenie.com/"
MESSAGE_MAX = 130
DESCRIPTION_MAX = 15000
PRIORITIES = frozenset({"P1", "P2", "P3", "P4", "P5"})


def alias(group_key: str) -> str:
    return hashlib.sha256(group_key.encode()).hexdigest()


class OpsgenieIntegration(HTTPIntegration):
    kind = "opsgenie"

    def __init__(self, cfg: OpsgenieConfig, index: int, ctx: BuildContext) -> None:
        super().__init__(cfg, index, ctx)
        self.cfg: OpsgenieConfig = cfg
        t = templates()
        self.message = t.text(cfg.message, "title.j2")
        self.description = t.text(cfg.description, "markdown.j2")
        self.source = t.text(cfg.source, "vigil_url.j2")
        self.optional: dict[str, Text] = {
            k: t.text(v, "empty.j2")
            for k, v in (
                ("note", cfg.note),
                ("priority", cfg.priority),
                ("entity", cfg.entity),
                ("tags", cfg.tags),
            )
            if v
        }
        self.details = {k: t.text(v, "empty.j2") for k, v in cfg.details.items()}

    def create(self, n: Notification) -> dict[str, Any]:
        data = context(n)
        details = dict(n.common_labels)
        details.update({k: t.render(data) for k, t in self.details.items()})
        doc: dict[str, Any] = {
            "message": cut(self.message.render(data), MESSAGE_MAX),
            "alias": alias(n.group_key),
            "description": cut(self.description.render(data), DESCRIPTION_MAX),
            "details": details,
            "source": self.source.render(data) or "Vigil",
        }
        rendered = {k: t.render(data) for k, t in self.optional.items()}
        if rendered.get("tags"):
            doc["tags"] = [s.strip() for s in rendered["tags"].split(",") if s.strip()]
        if rendered.get("priority") in PRIORITIES:
            doc["priority"] = rendered["priority"]
        for key in ("note", "entity"):
            if rendered.get(key):
                doc[key] = rendered[key]
        if self.cfg.responders:
            doc["responders"] = [dict(r) for r in self.cfg.responders]
        if self.cfg.visible_to:
            doc["visibleTo"] = [dict(r) for r in self.cfg.visible_to]
        if self.cfg.actions:
            doc["actions"] = [s.strip() for s in self.cfg.actions.split(",") if s.strip()]
        return doc

    def close_body(self, n: Notification) -> dict[str, Any]:
        data = context(n)
        doc: dict[str, Any] = {"source": self.source.render(data) or "Vigil"}
        if "note" in self.optional and (note := self.optional["note"].render(data)):
            doc["note"] = note
        return doc

    async def notify(self, notification: Notification) -> None:
        what = f"opsgenie {notification.receiver}"
        key = required_secret(self.cfg.api_key, self.cfg.api_key_file, self.ctx.base_dir, what)
        base = (self.cfg.api_url or DEFAULT_API_URL).rstrip("/") + "/"
        headers = {"Authorization": f"GenieKey {key}"}
        try:
            if notification.status == "firing":
                url, doc = f"{base}v2/alerts", self.create(notification)
            else:
                ident = quote(alias(notification.group_key), safe="")
                url = f"{base}v2/alerts/{ident}/close?identifierType=alias"
                doc = self.close_body(notification)
        except TemplateError as exc:
            raise PermanentError(f"cannot notify {what}: {exc}") from exc
        await self.post(url, doc, what=what, headers=headers)


def build(cfg: OpsgenieConfig, index: int, ctx: BuildContext) -> OpsgenieIntegration:
    return OpsgenieIntegration(cfg, index, ctx)
