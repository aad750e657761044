"""Mattermost, Discord and Microsoft Teams: payloads checked against the providers' shapes."""

from __future__ import annotations

from typing import Any

import pytest

from notifier.config.receivers import DiscordConfig, MattermostConfig, MSTeamsV2Config
from notifier.errors import PermanentError, RetryableError
from notifier.receivers.base import BuildContext
from notifier.receivers.discord import DiscordIntegration
from notifier.receivers.mattermost import MattermostIntegration
from notifier.receivers.msteamsv2 import MSTeamsV2Integration
from tests.notifier.hookserver import Answer, HookServer
from tests.notifier.receivers.data import SECRET, TITLE, notification


def check_mattermost(doc: Any) -> None:
    assert set(doc) <= {
        "text",
        "channel",
        "username",
        "icon_url",
        "icon_emoji",
        "attachments",
        "props",
    }
    for att in doc["attachments"]:
        assert set(att) <= {
            "fallback", "color", "pretext", "text", "author_name", "author_link", "author_icon",
            "title", "title_link", "fields", "image_url", "thumb_url", "footer", "footer_icon",
        }  # fmt: skip
        assert att["fallback"]
        for f in att.get("fields", []):
            assert set(f) == {"short", "title", "value"}
            assert isinstance(f["value"], str)


def check_discord(doc: Any) -> None:
    assert set(doc) <= {"content", "username", "avatar_url", "tts", "embeds", "allowed_mentions"}
    assert len(doc.get("content", "")) <= 2000
    assert 1 <= len(doc["embeds"]) <= 10
    for e in doc["embeds"]:
        assert set(e) <= {"title", "description", "url", "color", "timestamp", "fields", "footer"}
        assert len(e["title"]) <= 256
        assert len(e["description"]) <= 4096
        assert isinstance(e["color"], int)
        assert 0 <= e["color"] <= 0xFFFFFF
        for f in e.get("fields", []):
            assert set(f) <= {"name", "value", "inline"}
            assert len(f["name"]) <= 256
            assert len(f["value"]) <= 1024


def check_teams(doc: Any) -> None:
    assert doc["type"] == "message"
    [att] = doc["attachments"]
    assert att["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = att["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["version"] == "1.4"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    for el in card["body"]:
        assert el["type"] in ("TextBlock", "FactSet", "Container", "ColumnSet")
        if el["type"] == "TextBlock":
            assert isinstance(el["text"], str)
        if el["type"] == "FactSet":
            assert all(set(f) == {"title", "value"} for f in el["facts"])
    for a in card.get("actions", []):
        assert a["type"] == "Action.OpenUrl"
        assert a["url"].startswith("http")


async def test_mattermost_posts_an_attachment_with_fields(
    hook: HookServer, ctx: BuildContext
) -> None:
    cfg = MattermostConfig.model_validate(
        {"webhook_url": hook.url("/hooks/" + SECRET), "channel": "ops"}
    )
    m = MattermostIntegration(cfg, 0, ctx)
    await m.notify(notification())
    await m.close()
    doc = hook.received("/hooks/" + SECRET)[0].json()
    check_mattermost(doc)
    assert doc["channel"] == "ops"
    att = doc["attachments"][0]
    assert att["title"] == TITLE
    assert att["title_link"].startswith("http://vigil.example/alerts?")
    assert "[Runbook](https://runbooks.example/HighCPU)" in att["text"]
    assert {f["title"]: f["value"] for f in att["fields"]}["Severity"] == "critical"


async def test_discord_posts_an_embed_red_while_firing_green_resolved(
    hook: HookServer, ctx: BuildContext
) -> None:
    cfg = DiscordConfig.model_validate({"webhook_url": hook.url("/api/webhooks/1/" + SECRET)})
    d = DiscordIntegration(cfg, 0, ctx)
    await d.notify(notification())
    await d.notify(notification(resolved=True))
    await d.close()
    firing, resolved = (r.json() for r in hook.received("/api/webhooks/1/" + SECRET))
    check_discord(firing)
    check_discord(resolved)
    assert firing["embeds"][0]["title"] == TITLE
    assert firing["embeds"][0]["color"] == 0xE74C3C
    assert resolved["embeds"][0]["color"] == 0x2ECC71
    assert "**CPU above 90%**" in firing["embeds"][0]["description"]


async def test_discord_rate_limit_retry_after_from_the_body(
    hook: HookServer, ctx: BuildContext
) -> None:
    hook.on(
        "/d",
        Answer(
            status=429,
            body=b'{"message": "You are being rate limited.", "retry_after": 2.5, "global": false}',
        ),
    )
    d = DiscordIntegration(DiscordConfig.model_validate({"webhook_url": hook.url("/d")}), 0, ctx)
    with pytest.raises(RetryableError) as info:
        await d.notify(notification())
    await d.close()
    assert info.value.retry_after == 2.5


async def test_teams_posts_an_adaptive_card_message(hook: HookServer, ctx: BuildContext) -> None:
    cfg = MSTeamsV2Config.model_validate({"webhook_url": hook.url("/workflows/" + SECRET)})
    t = MSTeamsV2Integration(cfg, 0, ctx)
    await t.notify(notification())
    await t.close()
    doc = hook.received("/workflows/" + SECRET)[0].json()
    check_teams(doc)
    card = doc["attachments"][0]["content"]
    assert card["body"][0]["text"] == TITLE
    assert card["body"][0]["color"] == "Attention"
    facts = {f["title"]: f["value"] for f in card["body"][2]["facts"]}
    assert facts == {"Status": "firing", "Severity": "critical", "Firing": "2", "Resolved": "0"}
    assert [a["title"] for a in card["actions"]] == ["View in Vigil", "Runbook"]


async def test_teams_title_override_and_permanent_400_without_the_url(
    hook: HookServer, ctx: BuildContext
) -> None:
    hook.on("/w/" + SECRET, Answer(status=400, body=b"bad card"))
    cfg = MSTeamsV2Config.model_validate(
        {
            "webhook_url": hook.url("/w/" + SECRET),
            "title": "{{ CommonLabels.alertname }} on {{ CommonLabels.instance }}",
        }
    )
    t = MSTeamsV2Integration(cfg, 0, ctx)
    with pytest.raises(PermanentError) as info:
        await t.notify(notification())
    await t.close()
    assert SECRET not in str(info.value)
    assert (
        hook.received("/w/" + SECRET)[0].json()["attachments"][0]["content"]["body"][0]["text"]
        == "HighCPU on web-1"
    )
