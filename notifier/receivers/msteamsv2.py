"""The Microsoft Teams receiver: a Power Automate workflow webhook posting an Adaptive Card.

Office 365 connectors (``msteams_configs``, MessageCard) are retired by
Microsoft; this is Alertmanager's ``msteamsv2_configs``::

    {"type": "message",
     "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                      "contentUrl": null,
                      "content": {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                                  "type": "AdaptiveCard", "version": "1.4",
                                  "msteams": {"width": "Full"},
                                  "body": [{"type": "TextBlock", "text": "<title>", ...},
                                           {"type": "TextBlock", "text": "<Markdown>", "wrap": true},
                                           {"type": "FactSet", "facts": [{"title", "value"}]}],
                                  "actions": [{"type": "Action.OpenUrl", "title", "url"}]}}]}

The title's colour is ``Attention`` while firing and ``Good`` when resolved.
``webhook_url`` is a secret (it holds a signature). The workflow answers 202.
"""

from __future__ import annotations

from typing import Any

from notifier.config.receivers import MSTeamsV2Config
from notifier.errors import PermanentError
from notifier.receivers.base import BuildContext, Notification
from notifier.receivers.http import HTTPIntegration, required_secret
from notifier.template import TemplateError, context, templates

CARD_TYPE = "application/vnd.microsoft.card.adaptive"
SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"


class MSTeamsV2Integration(HTTPIntegration):
    kind = "msteamsv2"

    def __init__(self, cfg: MSTeamsV2Config, index: int, ctx: BuildContext) -> None:
        super().__init__(cfg, index, ctx)
        self.cfg: MSTeamsV2Config = cfg
        t = templates()
        self.title = t.text(cfg.title, "title.j2")
        self.text = t.text(cfg.text, "markdown.j2")

    def payload(self, n: Notification) -> dict[str, Any]:
        data = context(n)
        facts = [
            {"title": "Status", "value": n.status},
            {"title": "Firing", "value": str(len(n.firing))},
            {"title": "Resolved", "value": str(len(n.resolved))},
        ]
        if data["severity"]:
            facts.insert(1, {"title": "Severity", "value": data["severity"]})
        body: list[dict[str, Any]] = [
            {
                "type": "TextBlock",
                "text": self.title.render(data),
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
                "style": "heading",
                "color": "Attention" if n.status == "firing" else "Good",
            },
            {"type": "TextBlock", "text": self.text.render(data), "wrap": True},
            {"type": "FactSet", "facts": facts},
        ]
        actions = []
        if data["vigil_url"]:
            actions.append(
                {"type": "Action.OpenUrl", "title": "View in Vigil", "url": data["vigil_url"]}
            )
        if data["runbook_url"]:
            actions.append(
                {"type": "Action.OpenUrl", "title": "Runbook", "url": data["runbook_url"]}
            )
        card: dict[str, Any] = {
            "$schema": SCHEMA,
            "type": "AdaptiveCard",
            "version": "1.4",
            "msteams": {"width": "Full"},
            "body": body,
        }
        if actions:
            card["actions"] = actions
        return {
            "type": "message",
            "attachments": [{"contentType": CARD_TYPE, "contentUrl": None, "content": card}],
        }

    async def notify(self, notification: Notification) -> None:
        what = f"msteamsv2 {notification.receiver}"
        url = required_secret(
            self.cfg.webhook_url, self.cfg.webhook_url_file, self.ctx.base_dir, what
        )
        try:
            doc = self.payload(notification)
        except TemplateError as exc:
            raise PermanentError(f"cannot notify {what}: {exc}") from exc
        await self.post(url, doc, what=what)


def build(cfg: MSTeamsV2Config, index: int, ctx: BuildContext) -> MSTeamsV2Integration:
    return MSTeamsV2Integration(cfg, index, ctx)
