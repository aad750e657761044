"""The Slack receiver: an incoming webhook, Block Kit blocks inside a coloured attachment.

::

    {"channel": "#alerts", "username": "...", "icon_emoji": ":fire:",
     "text": "<fallback: the title>",
     "attachments": [{"color": "danger|good|#hex", "fallback": "<title>",
                      "blocks": [{"type": "header", "text": {"type": "plain_text", "text": title}},
                                 {"type": "section", "text": {"type": "mrkdwn", "text": text}},
                                 {"type": "context", "elements": [{"type": "mrkdwn", ...}]},
                                 {"type": "actions", "elements": [{"type": "button", ...}]}]}]}

Block Kit has no colour of its own, so the blocks sit in one legacy attachment
whose ``color`` shows the status (Alertmanager's default: ``danger`` firing,
``good`` resolved). Top-level ``text`` is the notification fallback. Limits:
header text 150 characters, section text 3000 (cut with an ellipsis).
``api_url`` (or ``global.slack_api_url``) is the webhook URL and a secret.
Slack answers 200 ``ok``; 400 ``invalid_payload``, 403, 404 and 410 are permanent.
Bot-token delivery (``chat.postMessage``, ``app_token``) is not implemented.
"""

from __future__ import annotations

from typing import Any

from notifier.config.receivers import SlackConfig
from notifier.errors import PermanentError
from notifier.receivers.base import BuildContext, Notification
from notifier.receivers.http import HTTPIntegration, required_secret
from notifier.template import TemplateError, context, templates

HEADER_MAX = 150
SECTION_MAX = 3000


def cut(text: str, limit: int) -> str:
    """``text`` shortened to ``limit`` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class SlackIntegration(HTTPIntegration):
    kind = "slack"

    def __init__(self, cfg: SlackConfig, index: int, ctx: BuildContext) -> None:
        super().__init__(cfg, index, ctx)
        self.cfg: SlackConfig = cfg
        t = templates()
        self.title = t.text(cfg.title, "title.j2")
        self.text = t.text(cfg.text, "slack.mrkdwn.j2")
        self.fallback = t.text(cfg.fallback, "title.j2")
        self.title_link = t.text(cfg.title_link, "vigil_url.j2")
        self.pretext = t.text(cfg.pretext, "empty.j2")
        self.footer = t.text(cfg.footer, "empty.j2")
        self.color = t.text(cfg.color, "empty.j2") if cfg.color else None
        self.channel = t.text(cfg.channel, "empty.j2")
        self.username = t.text(cfg.username, "empty.j2")

    def blocks(self, n: Notification, data: dict[str, Any], title: str) -> list[dict[str, Any]]:
        """Pretext, header, body, a context line of facts, and link buttons."""
        blocks: list[dict[str, Any]] = []
        if pretext := self.pretext.render(data):
            blocks.append(_mrkdwn(pretext))
        header = {"type": "plain_text", "text": cut(title, HEADER_MAX), "emoji": True}
        blocks.append({"type": "header", "text": header})
        if text := self.text.render(data):
            blocks.append(_mrkdwn(text))
        facts = [
            f"*Status:* {n.status}",
            f"*Firing:* {len(n.firing)}",
            f"*Resolved:* {len(n.resolved)}",
        ]
        if data["severity"]:
            facts.insert(1, f"*Severity:* {data['severity']}")
        if footer := self.footer.render(data):
            facts.append(footer)
        elements = [{"type": "mrkdwn", "text": f} for f in facts]
        blocks.append({"type": "context", "elements": elements})
        buttons = []
        if link := self.title_link.render(data):
            buttons.append(_button("View in Vigil", link, "vigil"))
        if data["runbook_url"]:
            buttons.append(_button("Runbook", data["runbook_url"], "runbook"))
        if buttons:
            blocks.append({"type": "actions", "elements": buttons})
        return blocks

    def payload(self, n: Notification) -> dict[str, Any]:
        data = context(n)
        title = self.title.render(data)
        color = (self.color.render(data) if self.color else "") or (
            "danger" if n.status == "firing" else "good"
        )
        fallback = self.fallback.render(data) or title
        attachment = {"color": color, "fallback": fallback, "blocks": self.blocks(n, data, title)}
        doc: dict[str, Any] = {"text": fallback, "attachments": [attachment]}
        if channel := self.channel.render(data):
            doc["channel"] = channel
        if username := self.username.render(data):
            doc["username"] = username
        if self.cfg.icon_emoji:
            doc["icon_emoji"] = self.cfg.icon_emoji
        elif self.cfg.icon_url:
            doc["icon_url"] = self.cfg.icon_url
        if self.cfg.link_names:
            doc["link_names"] = True
        return doc

    async def notify(self, notification: Notification) -> None:
        what = f"slack {notification.receiver}"
        url = required_secret(self.cfg.api_url, self.cfg.api_url_file, self.ctx.base_dir, what)
        try:
            doc = self.payload(notification)
        except TemplateError as exc:
            raise PermanentError(f"cannot notify {what}: {exc}") from exc
        await self.post(url, doc, what=what)


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": cut(text, SECTION_MAX)}}


def _button(label: str, url: str, action_id: str) -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": label},
        "url": url,
        "action_id": action_id,
    }


def build(cfg: SlackConfig, index: int, ctx: BuildContext) -> SlackIntegration:
    return SlackIntegration(cfg, index, ctx)
