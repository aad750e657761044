"""Building every receiver type from an alertmanager.yml: globals filled, send_resolved kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifier.config.load import load_file
from notifier.config.receivers import DELIVERABLE
from notifier.receivers.base import BuildContext
from notifier.receivers.email import EmailIntegration
from notifier.receivers.opsgenie import OpsgenieIntegration
from notifier.receivers.pagerduty import PagerdutyIntegration
from notifier.receivers.registry import REGISTRY, Unsupported, build_receivers, template_problems
from notifier.receivers.slack import SlackIntegration
from notifier.receivers.telegram import TelegramIntegration
from tests.notifier.helpers import config
from tests.notifier.hookserver import HookServer
from tests.notifier.receivers.data import notification

FULL = Path(__file__).parent.parent.parent / "testdata" / "alertmanager" / "good" / "full.yml"

ALL = {
    "route": {"receiver": "all"},
    "global": {
        "slack_api_url": "https://hooks.slack.example/x",
        "smtp_smarthost": "mail.example:587",
        "smtp_from": "vigil@example.org",
        "smtp_auth_username": "u",
        "smtp_auth_password": "p",
        "opsgenie_api_key": "gk",
        "opsgenie_api_url": "https://og.example/",
        "pagerduty_url": "https://pd.example/v2/enqueue",
        "telegram_bot_token": "1:t",
    },
    "receivers": [
        {
            "name": "all",
            "webhook_configs": [{"url": "http://127.0.0.1:1/"}],
            "slack_configs": [{}],
            "mattermost_configs": [{"webhook_url": "http://127.0.0.1:1/m"}],
            "discord_configs": [{"webhook_url": "http://127.0.0.1:1/d"}],
            "msteamsv2_configs": [{"webhook_url": "http://127.0.0.1:1/t"}],
            "telegram_configs": [{"chat_id": 1}],
            "pagerduty_configs": [{"routing_key": "rk"}, {"service_key": "sk"}],
            "opsgenie_configs": [{}],
            "email_configs": [{"to": "a@example.org"}],
            "pushover_configs": [{"user_key": "u", "token": "t"}],
        }
    ],
}


def _ctx() -> BuildContext:
    return BuildContext(base_dir=Path(), guard=None)  # type: ignore[arg-type]  # never sends


def test_every_deliverable_type_builds_and_globals_fill_unset_fields() -> None:
    built = {i.kind + str(i.index): i for i in build_receivers(config(ALL).am, _ctx())["all"]}
    assert set(REGISTRY) == DELIVERABLE
    assert isinstance(built["pushover0"], Unsupported)
    slack = built["slack0"]
    assert isinstance(slack, SlackIntegration)
    assert slack.cfg.api_url is not None
    assert slack.cfg.api_url.get_secret_value() == "https://hooks.slack.example/x"
    mail = built["email0"]
    assert isinstance(mail, EmailIntegration)
    assert (mail.cfg.smarthost, mail.cfg.from_, mail.cfg.auth_username) == (
        "mail.example:587",
        "vigil@example.org",
        "u",
    )
    assert mail.cfg.require_tls is True
    og = built["opsgenie0"]
    assert isinstance(og, OpsgenieIntegration)
    assert og.cfg.api_url == "https://og.example/"
    tg = built["telegram0"]
    assert isinstance(tg, TelegramIntegration)
    assert tg.cfg.api_url == "https://api.telegram.org"  # global default
    assert tg.cfg.bot_token is not None
    assert tg.cfg.bot_token.get_secret_value() == "1:t"  # global.telegram_bot_token
    pd2, pd1 = built["pagerduty0"], built["pagerduty1"]
    assert isinstance(pd2, PagerdutyIntegration)
    assert isinstance(pd1, PagerdutyIntegration)
    assert pd2.cfg.url == "https://pd.example/v2/enqueue"
    assert pd1.cfg.url is None  # Events API v1 keeps its own endpoint


def test_a_receivers_own_secret_file_wins_over_the_global_value(tmp_path: Path) -> None:
    (tmp_path / "og").write_text("from-file\n")
    data = {
        **ALL,
        "receivers": [
            {"name": "all", "opsgenie_configs": [{"api_key_file": str(tmp_path / "og")}]}
        ],
    }
    [og] = build_receivers(config(data).am, _ctx())["all"]
    assert isinstance(og, OpsgenieIntegration)
    assert og.cfg.api_key is None
    assert og.cfg.api_key_file == str(tmp_path / "og")


@pytest.mark.parametrize(
    ("kind", "default"),
    [("webhook", True), ("slack", False), ("mattermost", False), ("discord", True),
     ("msteamsv2", True), ("telegram", True), ("pagerduty", True), ("opsgenie", True),
     ("email", False)],
)  # fmt: skip
def test_send_resolved_defaults_are_alertmanagers_and_can_be_set(kind: str, default: bool) -> None:
    [given] = ALL["receivers"]
    cfg0 = given[f"{kind}_configs"][0]  # type: ignore[index]
    for value in (None, not default):
        item = dict(cfg0) if value is None else {**cfg0, "send_resolved": value}
        data = {**ALL, "receivers": [{"name": "all", f"{kind}_configs": [item]}]}
        [integration] = build_receivers(config(data).am, _ctx())["all"]
        assert integration.send_resolved is (default if value is None else value)


def test_the_full_sample_alertmanager_yml_builds() -> None:
    cfg = load_file(FULL)
    built = build_receivers(cfg.am, _ctx())
    kinds = sorted(i.kind for i in built["chat"] if not isinstance(i, Unsupported))
    assert kinds == ["discord", "mattermost", "msteamsv2", "opsgenie", "slack", "telegram"]


async def test_slack_title_from_the_full_sample_renders(hook: HookServer) -> None:
    cfg = load_file(FULL)
    [slack] = [i for i in build_receivers(cfg.am, _ctx())["chat"] if i.kind == "slack"]
    assert isinstance(slack, SlackIntegration)
    doc = slack.payload(notification())
    assert doc["attachments"][0]["blocks"][0]["text"]["text"] == "HighCPU"


def test_template_problems_name_the_field_and_the_reason() -> None:
    data = {
        "route": {"receiver": "r"},
        "receivers": [
            {
                "name": "r",
                "slack_configs": [{"api_url": "http://x/", "title": '{{ template "mine" . }}'}],
                "pagerduty_configs": [{"routing_key": "k", "details": {"x": "{% if %}"}}],
                "email_configs": [{"to": "a@b", "smarthost": "h:25", "from": "c@d"}],
            }
        ],
    }
    problems = template_problems(build_receivers(config(data).am, _ctx()))
    paths = [p for p, _ in problems]
    assert paths == ["r.slack_configs[0].title", "r.pagerduty_configs[0].details.x"]
    assert "unknown template 'mine'" in problems[0][1]
    assert template_problems(build_receivers(load_file(FULL).am, _ctx())) == []
