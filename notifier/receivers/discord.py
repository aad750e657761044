"""The Discord receiver: a channel webhook with one embed.

::

    {"content": "<optional text>", "username": "...", "avatar_url": "...",
     "embeds": [{"title": "<title, 256>", "description": "<Markdown, 4096>",
                 "url": "<Vigil URL>", "color": 15158332 | 3066993,
                 "timestamp": "<ISO 8601>",
                 "fields": [{"name": "Severity", "value": "critical", "inline": true}, ...]}]}

Discord's limits (title 256, description 4096, content 2000 characters) are
applied with an ellipsis; the colour is red while firing and green when
resolved, as Alertmanager's Discord integration does. ``webhook_url`` is a
secret (its path holds the token). Discord answers 204; a 429 carries
``Retry-After`` (and ``retry_after`` in the body), honoured by delivery.
"""

from __future__ import annotations

from typing import Any

from notifier.config.receivers import DiscordConfig
from notifier.errors import PermanentError
from notifier.receivers.base import BuildContext, Notification
from notifier.receivers.http import HTTPIntegration, required_secret
from notifier.receivers.slack import cut
from notifier.template import TemplateError, context, templates

TITLE_MAX = 256
DESCRIPTION_MAX = 4096
CONTENT_MAX = 2000
FIRING_COLOR = 0xE74C3C
RESOLVED_COLOR = 0x2ECC71


class DiscordIntegration(HTTPIntegration):
    kind = "discord"

    def __init__(self, cfg: DiscordConfig, index: int, ctx: BuildContext) -> None:
        super().__init__(cfg, index, ctx)
        self.cfg: DiscordConfig = cfg
        t = templates()
        self.title = t.text(cfg.title, "title.j2")
        self.message = t.text(cfg.message, "markdown.j2")
        self.content = t.text(cfg.content, "empty.j2")

    def payload(self, n: Notification) -> dict[str, Any]:
        data = context(n)
        fields = [
            {"name": "Firing", "value": str(len(n.firing)), "inline": True},
            {"name": "Resolved", "value": str(len(n.resolved)), "inline": True},
        ]
        if data["severity"]:
            fields.insert(0, {"name": "Severity", "value": data["severity"], "inline": True})
        embed: dict[str, Any] = {
            "title": cut(self.title.render(data), TITLE_MAX),
            "description": cut(self.message.render(data), DESCRIPTION_MAX),
            "color": FIRING_COLOR if n.status == "firing" else RESOLVED_COLOR,
            "timestamp": n.at.isoformat(),
            "fields": fields,
        }
        if data["vigil_url"]:
            embed["url"] = data["vigil_url"]
        doc: dict[str, Any] = {"embeds": [embed]}
        if content := self.content.render(data):
            doc["content"] = cut(content, CONTENT_MAX)
        if self.cfg.username:
            doc["username"] = self.cfg.username
        if self.cfg.avatar_url:
            doc["avatar_url"] = self.cfg.avatar_url
        return doc

    async def notify(self, notification: Notification) -> None:
        what = f"discord {notification.receiver}"
        url = required_secret(
            self.cfg.webhook_url, self.cfg.webhook_url_file, self.ctx.base_dir, what
        )
        try:
            doc = self.payload(notification)
        except TemplateError as exc:
            raise PermanentError(f"cannot notify {what}: {exc}") from exc
        await self.post(url, doc, what=what)


def build(cfg: DiscordConfig, index: int, ctx: BuildContext) -> DiscordIntegration:
    return DiscordIntegration(cfg, index, ctx)
