"""Slack: Block Kit in a coloured attachment, checked against Slack's documented shapes."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from notifier.config.receivers import SlackConfig
from notifier.errors import PermanentError, RetryableError
from notifier.receivers.base import BuildContext
from notifier.receivers.slack import SlackIntegration
from tests.notifier.hookserver import Answer, HookServer
from tests.notifier.receivers.data import SECRET, TITLE, notification

BLOCK_TYPES = {"header", "section", "context", "actions", "divider"}


def check_slack_message(doc: Any) -> None:
    """Slack's incoming-webhook message: text fallback, attachments holding Block Kit blocks."""
    assert isinstance(doc["text"], str)
    assert doc["text"]
    assert set(doc) <= {
        "text",
        "attachments",
        "channel",
        "username",
        "icon_emoji",
        "icon_url",
        "link_names",
    }
    for att in doc["attachments"]:
        assert set(att) <= {"color", "fallback", "blocks"}
        assert att["color"] in ("danger", "good", "warning") or att["color"].startswith("#")
        for block in att["blocks"]:
            assert block["type"] in BLOCK_TYPES
            if block["type"] == "header":
                assert block["text"]["type"] == "plain_text"
                assert len(block["text"]["text"]) <= 150
            if block["type"] == "section":
                assert block["text"]["type"] == "mrkdwn"
                assert len(block["text"]["text"]) <= 3000
            if block["type"] == "context":
                assert 1 <= len(block["elements"]) <= 10
                assert all(e["type"] in ("mrkdwn", "plain_text") for e in block["elements"])
            if block["type"] == "actions":
                for e in block["elements"]:
                    assert e["type"] == "button"
                    assert e["text"]["type"] == "plain_text"
                    assert e["url"].startswith("http")


def _slack(url: str, ctx: BuildContext, **kw: object) -> SlackIntegration:
    return SlackIntegration(SlackConfig.model_validate({"api_url": url, **kw}), 0, ctx)


async def test_slack_posts_block_kit_with_title_severity_counts_and_links(
    hook: HookServer, ctx: BuildContext
) -> None:
    s = _slack(hook.url("/services/T0/B0/" + SECRET), ctx, channel="#ops")
    await s.notify(notification())
    await s.close()
    [req] = hook.received("/services/T0/B0/" + SECRET)
    doc = req.json()
    check_slack_message(doc)
    assert doc["text"] == TITLE
    assert doc["channel"] == "#ops"
    [att] = doc["attachments"]
    assert att["color"] == "danger"
    header, section, context, actions = att["blocks"]
    assert header["text"]["text"] == TITLE
    assert "*CPU above 90%*" in section["text"]["text"]
    texts = [e["text"] for e in context["elements"]]
    assert "*Severity:* critical" in texts
    assert "*Firing:* 2" in texts
    assert "*Resolved:* 0" in texts
    urls = {e["text"]["text"]: e["url"] for e in actions["elements"]}
    assert urls["Runbook"] == "https://runbooks.example/HighCPU"
    assert urls["View in Vigil"].startswith("http://vigil.example/alerts?filter=")


async def test_slack_resolved_is_green(hook: HookServer, ctx: BuildContext) -> None:
    s = _slack(hook.url(), ctx)
    await s.notify(notification(resolved=True))
    await s.close()
    doc = hook.received()[0].json()
    check_slack_message(doc)
    assert doc["attachments"][0]["color"] == "good"
    assert doc["text"].startswith("[RESOLVED] HighCPU")


async def test_slack_go_template_fields_from_alertmanager_yml_are_translated(
    hook: HookServer, ctx: BuildContext
) -> None:
    s = _slack(
        hook.url(),
        ctx,
        title='{{ template "slack.default.title" . }}',
        text="{{ range .Alerts }}{{ .Labels.job }} {{ end }}",
        color='{{ if eq .Status "firing" }}#FF0000{{ else }}good{{ end }}',
    )
    await s.notify(notification())
    await s.close()
    doc = hook.received()[0].json()
    check_slack_message(doc)
    att = doc["attachments"][0]
    assert att["color"] == "#FF0000"
    assert att["blocks"][0]["text"]["text"] == TITLE
    assert att["blocks"][1]["text"]["text"] == "node app"


async def test_slack_long_title_is_cut_to_the_header_limit(
    hook: HookServer, ctx: BuildContext
) -> None:
    s = _slack(hook.url(), ctx, title="x" * 400)
    await s.notify(notification())
    await s.close()
    check_slack_message(hook.received()[0].json())


@pytest.mark.parametrize(
    ("status", "error"), [(404, PermanentError), (429, RetryableError), (500, RetryableError)]
)
async def test_slack_errors_are_classified_and_hide_the_webhook_url(
    hook: HookServer, ctx: BuildContext, status: int, error: type[Exception]
) -> None:
    hook.on("/services/" + SECRET, Answer(status=status, body=b"no_service"))
    s = _slack(hook.url("/services/" + SECRET), ctx)
    with pytest.raises(error) as info:
        await s.notify(notification())
    await s.close()
    assert SECRET not in str(info.value)
    assert f"HTTP {status}" in str(info.value)


async def test_slack_bad_template_fails_permanently(hook: HookServer, ctx: BuildContext) -> None:
    s = _slack(hook.url(), ctx, title='{{ template "my.custom" . }}')
    with pytest.raises(PermanentError, match=r"unknown template 'my\.custom'"):
        await s.notify(notification())
    assert hook.received() == []


async def test_httpx_request_log_lines_do_not_carry_the_webhook_path(
    hook: HookServer, ctx: BuildContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="httpx")
    s = _slack(hook.url("/services/" + SECRET), ctx)
    await s.notify(notification())
    await s.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert any("HTTP Request: POST" in line for line in lines)
    assert not any(SECRET in line for line in lines)
