"""The Mattermost receiver: an incoming webhook with a Slack-compatible message attachment.

::

    {"channel": "town-square", "username": "Vigil", "icon_url": "...",
     "text": "<title>",
     "attachments": [{"fallback": "<title>", "color": "#E01E5A|#2EB67D",
                      "title": "<title>", "title_link": "<Vigil URL>",
                      "text": "<Markdown body>",
                      "fields": [{"short": true, "title": "Severity", "value": "critical"}, ...]}]}

Mattermost renders Markdown in ``text`` and in attachments; ``text`` of a post
is limited to 16383 characters (cut with an ellipsis). ``webhook_url`` is a
secret. ``title`` and ``text`` are templates (default: ``title.j2`` and
``markdown.j2``). Mattermost answers 200 ``ok``; other 4xx are permanent.
"""

from __future__ import annotations

from typing import Any

from notifier.config.receivers import MattermostConfig
from notifier.errors import PermanentError
from notifier.receivers.base import BuildContext, Notification
from notifier.receivers.http import HTTPIntegration, required_secret
from notifier.receivers.slack import cut
from notifier.template import TemplateError, context, templates

TEXT_MAX = 16383
FIRING_COLOR = "#E01E5A"
RESOLVED_COLOR = "#2EB67D"


class MattermostIntegration(HTTPIntegration):
    kind = "mattermost"

    def __init__(self, cfg: MattermostConfig, index: int, ctx: BuildContext) -> None:
        super().__init__(cfg, index, ctx)
        self.cfg: MattermostConfig = cfg
        t = templates()
        self.title = t.text(cfg.title, "title.j2")
        self.text = t.text(cfg.text, "markdown.j2")

    def payload(self, n: Notification) -> dict[str, Any]:
        data = context(n)
        title = self.title.render(data)
        fields = [
            {"short": True, "title": "Status", "value": n.status},
            {"short": True, "title": "Firing", "value": str(len(n.firing))},
            {"short": True, "title": "Resolved", "value": str(len(n.resolved))},
        ]
        if data["severity"]:
            fields.insert(1, {"short": True, "title": "Severity", "value": data["severity"]})
        attachment: dict[str, Any] = {
            "fallback": title,
            "color": FIRING_COLOR if n.status == "firing" else RESOLVED_COLOR,
            "title": title,
            "text": cut(self.text.render(data), TEXT_MAX),
            "fields": fields,
        }
        if data["vigil_url"]:
            attachment["title_link"] = data["vigil_url"]
        doc: dict[str, Any] = {"text": title, "attachments": [attachment]}
        for key in ("channel", "username", "icon_url", "icon_emoji"):
            value = getattr(self.cfg, key)
            if value:
                doc[key] = value
        return doc

    async def notify(self, notification: Notification) -> None:
        what = f"mattermost {notification.receiver}"
        url = required_secret(
            self.cfg.webhook_url, self.cfg.webhook_url_file, self.ctx.base_dir, what
        )
        try:
            doc = self.payload(notification)
        except TemplateError as exc:
            raise PermanentError(f"cannot notify {what}: {exc}") from exc
        await self.post(url, doc, what=what)


def build(cfg: MattermostConfig, index: int, ctx: BuildContext) -> MattermostIntegration:
    return MattermostIntegration(cfg, index, ctx)
