"""The Telegram receiver: the Bot API's ``sendMessage`` with ``parse_mode`` HTML.

::

    POST <api_url>/bot<token>/sendMessage
    {"chat_id": -1001234, "text": "<HTML, at most 4096 characters>",
     "parse_mode": "HTML", "disable_notification": false,
     "message_thread_id": 7, "link_preview_options": {"is_disabled": true}}

The message template (default ``telegram.html.j2``) renders with HTML
autoescaping, so ``<`` in a label cannot break Telegram's parser. A message
over 4096 characters is cut at a tag boundary, unfinished tags and entities
dropped, open tags closed, and ``…`` appended. ``parse_mode`` ``Markdown`` or
``MarkdownV2`` from the configuration is passed through (the text is then
the template's, unescaped). The bot token is a secret and sits in the URL's
path, which errors never show. Telegram answers ``{"ok": true, ...}``; a 429
carries ``parameters.retry_after``, honoured by delivery.
"""

from __future__ import annotations

import re
from typing import Any

from notifier.config.receivers import TelegramConfig
from notifier.errors import PermanentError
from notifier.receivers.base import BuildContext, Notification
from notifier.receivers.http import HTTPIntegration, required_secret
from notifier.template import TemplateError, context, templates

MESSAGE_MAX = 4096
DEFAULT_API_URL = "https://api.telegram.org"
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)[^>]*>")


def cut_html(text: str, limit: int = MESSAGE_MAX) -> str:
    """``text`` at most ``limit`` characters, still well-formed Telegram HTML."""
    if len(text) <= limit:
        return text
    budget = limit - 1
    while True:
        head = text[:budget]
        head = re.sub(r"<[^>]*$", "", head)  # a tag cut in half
        head = re.sub(r"&[#a-zA-Z0-9]*$", "", head)  # an entity cut in half
        open_tags: list[str] = []
        for m in _TAG.finditer(head):
            name = m.group(2).lower()
            if m.group(1):
                if name in open_tags:
                    del open_tags[len(open_tags) - 1 - open_tags[::-1].index(name)]
            else:
                open_tags.append(name)
        out = head + "…" + "".join(f"</{t}>" for t in reversed(open_tags))
        if len(out) <= limit:
            return out
        budget -= len(out) - limit


class TelegramIntegration(HTTPIntegration):
    kind = "telegram"

    def __init__(self, cfg: TelegramConfig, index: int, ctx: BuildContext) -> None:
        super().__init__(cfg, index, ctx)
        self.cfg: TelegramConfig = cfg
        t = templates()
        self.html_mode = cfg.parse_mode.upper() == "HTML"
        compile_ = t.html if self.html_mode else t.text
        self.message = compile_(cfg.message, "telegram.html.j2")

    def payload(self, n: Notification) -> dict[str, Any]:
        text = self.message.render(context(n))
        text = cut_html(text) if self.html_mode else text[:MESSAGE_MAX]
        doc: dict[str, Any] = {
            "chat_id": self.cfg.chat_id,
            "text": text,
            "disable_notification": self.cfg.disable_notifications,
            "link_preview_options": {"is_disabled": True},
        }
        if self.cfg.parse_mode:
            doc["parse_mode"] = self.cfg.parse_mode
        if self.cfg.message_thread_id is not None:
            doc["message_thread_id"] = self.cfg.message_thread_id
        return doc

    async def notify(self, notification: Notification) -> None:
        what = f"telegram {notification.receiver}"
        token = required_secret(
            self.cfg.bot_token, self.cfg.bot_token_file, self.ctx.base_dir, what
        )
        try:
            doc = self.payload(notification)
        except TemplateError as exc:
            raise PermanentError(f"cannot notify {what}: {exc}") from exc
        base = (self.cfg.api_url or DEFAULT_API_URL).rstrip("/")
        await self.post(f"{base}/bot{token}/sendMessage", doc, what=what)


def build(cfg: TelegramConfig, index: int, ctx: BuildContext) -> TelegramIntegration:
    return TelegramIntegration(cfg, index, ctx)
