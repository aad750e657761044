"""send_resolved through the real pipeline: real receivers, a real local HTTP server."""

from __future__ import annotations

from typing import Any

import pytest

from notifier.group import Dispatcher
from notifier.inhibit import Inhibitor
from notifier.nflogkv import NotificationLog
from notifier.pipeline import Pipeline
from notifier.receivers.base import BuildContext
from notifier.receivers.registry import build_receivers
from notifier.route import build
from shared.alertmanager.silence import Silencer
from tests.notifier.helpers import alert, at, config
from tests.notifier.hookserver import HookServer


async def _ignore(_msg: Any) -> None:
    return None


def _integration(kind: str, url: str, send_resolved: bool) -> dict[str, Any]:
    item: dict[str, Any] = {"send_resolved": send_resolved}
    if kind == "pagerduty":
        item |= {"routing_key": "rk", "url": url}
    elif kind == "opsgenie":
        item |= {"api_key": "k", "api_url": url}
    elif kind == "telegram":
        item |= {"bot_token": "1:t", "chat_id": 1, "api_url": url}
    elif kind == "slack":
        item |= {"api_url": url}
    else:
        item |= {"webhook_url": url}
    return {f"{kind}_configs": [item]}


@pytest.mark.parametrize(
    "kind", ["slack", "mattermost", "discord", "msteamsv2", "telegram", "pagerduty", "opsgenie"]
)
@pytest.mark.parametrize("send_resolved", [True, False])
async def test_resolution_is_sent_only_with_send_resolved(
    hook: HookServer, ctx: BuildContext, kind: str, send_resolved: bool
) -> None:
    cfg = config(
        {
            "route": {"receiver": "r", "group_wait": "0s", "group_interval": "1m"},
            "receivers": [{"name": "r", **_integration(kind, hook.url("/x/"), send_resolved)}],
        }
    )
    receivers = build_receivers(cfg.am, ctx)
    pipeline = Pipeline(
        receivers=receivers,
        intervals={},
        silencer=Silencer(),
        inhibitor=Inhibitor([]),
        nflog=NotificationLog(None, "me"),
        publish=_ignore,
        publish_status=_ignore,
    )
    d = Dispatcher(build(cfg.route))
    d.process(alert(0, alertname="Down", instance="a"), 1, at(0))
    for f in d.tick(at(0)):
        d.complete(f, await pipeline.handle(f))
    d.process(alert(0, 30, resolved=True, alertname="Down", instance="a"), 2, at(30))
    for f in d.tick(at(60)):
        d.complete(f, await pipeline.handle(f))
    for integration in receivers["r"]:
        await integration.close()
    assert len(hook.requests) == (2 if send_resolved else 1)
    if send_resolved and kind == "pagerduty":
        assert hook.requests[1].json()["event_action"] == "resolve"
    if send_resolved and kind == "opsgenie":
        assert hook.requests[1].path.endswith("/close?identifierType=alias")
