"""Telegram: the Bot API's sendMessage, HTML escaped and at most 4096 characters."""

from __future__ import annotations

import re
from typing import Any

import pytest

from notifier.config.receivers import TelegramConfig
from notifier.errors import PermanentError, RetryableError
from notifier.receivers.base import BuildContext, Notification
from notifier.receivers.telegram import MESSAGE_MAX, TelegramIntegration, cut_html
from tests.notifier.helpers import alert, at
from tests.notifier.hookserver import Answer, HookServer
from tests.notifier.receivers.data import SECRET, TITLE, notification

ALLOWED_TAGS = {
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "a",
    "code",
    "pre",
    "span",
    "tg-spoiler",
    "blockquote",
}
TOKEN = "123456:" + SECRET


def check_send_message(doc: Any) -> None:
    """sendMessage's parameters; HTML balanced and only Telegram's tags."""
    assert set(doc) <= {
        "chat_id", "text", "parse_mode", "disable_notification", "message_thread_id",
        "link_preview_options", "protect_content", "reply_markup",
    }  # fmt: skip
    assert isinstance(doc["chat_id"], int | str)
    assert 1 <= len(doc["text"]) <= MESSAGE_MAX
    if doc.get("parse_mode") == "HTML":
        stack: list[str] = []
        for closing, name in re.findall(r"<(/?)([a-z-]+)[^>]*>", doc["text"]):
            assert name in ALLOWED_TAGS, name
            if closing:
                assert stack.pop() == name
            else:
                stack.append(name)
        assert stack == []


def _telegram(hook: HookServer, ctx: BuildContext, **kw: object) -> TelegramIntegration:
    cfg = TelegramConfig.model_validate(
        {"api_url": hook.url(""), "bot_token": TOKEN, "chat_id": -1001, **kw}
    )
    return TelegramIntegration(cfg, 0, ctx)


async def test_telegram_sends_html_message_to_the_bot_api(
    hook: HookServer, ctx: BuildContext
) -> None:
    t = _telegram(hook, ctx, message_thread_id=7)
    await t.notify(notification())
    await t.close()
    [req] = hook.received(f"/bot{TOKEN}/sendMessage")
    doc = req.json()
    check_send_message(doc)
    assert doc["chat_id"] == -1001
    assert doc["parse_mode"] == "HTML"
    assert doc["message_thread_id"] == 7
    assert doc["text"].startswith(f"<b>{TITLE}</b>")
    assert '<a href="https://runbooks.example/HighCPU">Runbook</a>' in doc["text"]


async def test_telegram_escapes_markup_in_labels(hook: HookServer, ctx: BuildContext) -> None:
    evil = alert(0, alertname="<b>x</b>&", instance="<script>")
    n = Notification("team", "k", {}, [evil], [], "", at(0))
    t = _telegram(hook, ctx)
    await t.notify(n)
    await t.close()
    doc = hook.received(f"/bot{TOKEN}/sendMessage")[0].json()
    check_send_message(doc)
    assert "&lt;b&gt;x&lt;/b&gt;&amp;" in doc["text"]
    assert "<script>" not in doc["text"]


async def test_telegram_long_message_is_cut_to_4096_and_stays_balanced(
    hook: HookServer, ctx: BuildContext
) -> None:
    many = [
        alert(0, alertname="Disk", instance=f"host-{i:04d}", annotations={"description": "d" * 50})
        for i in range(200)
    ]
    n = Notification("team", "k", {"alertname": "Disk"}, many, [], "http://v", at(0))
    t = _telegram(hook, ctx)
    await t.notify(n)
    await t.close()
    doc = hook.received(f"/bot{TOKEN}/sendMessage")[0].json()
    check_send_message(doc)
    assert "…" in doc["text"]


def test_cut_html_closes_open_tags_and_drops_half_tags() -> None:
    text = "<b>" + "a" * 20 + "</b><i>" + "b" * 20 + '<a href="x">link</a></i>'
    out = cut_html(text, 40)
    assert len(out) <= 40
    assert out.endswith("</i>")
    assert out.startswith("<b>" + "a" * 20 + "</b><i>")
    assert cut_html("a &amp; b", 6) == "a …"


async def test_telegram_429_honours_retry_after_in_the_body_and_hides_the_token(
    hook: HookServer, ctx: BuildContext
) -> None:
    body = b'{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}'
    hook.on(f"/bot{TOKEN}/sendMessage", Answer(status=429, body=body))
    t = _telegram(hook, ctx)
    with pytest.raises(RetryableError) as info:
        await t.notify(notification())
    await t.close()
    assert info.value.retry_after == 7
    assert SECRET not in str(info.value)


async def test_telegram_400_is_permanent(hook: HookServer, ctx: BuildContext) -> None:
    hook.on(
        f"/bot{TOKEN}/sendMessage",
        Answer(
            status=400,
            body=b'{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}',
        ),
    )
    t = _telegram(hook, ctx)
    with pytest.raises(PermanentError, match="chat not found"):
        await t.notify(notification())
    await t.close()
