"""PagerDuty: Events API v2 trigger and resolve with a stable dedup_key."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from notifier.config.receivers import PagerdutyConfig
from notifier.errors import PermanentError, RetryableError
from notifier.receivers.base import BuildContext
from notifier.receivers.pagerduty import PagerdutyIntegration
from tests.notifier.hookserver import Answer, HookServer
from tests.notifier.receivers.data import SECRET, TITLE, notification

ACCEPTED = Answer(
    status=202, body=b'{"status":"success","message":"Event processed","dedup_key":"x"}'
)


def check_event_v2(doc: Any) -> None:
    """The Events API v2 event (developer.pagerduty.com, "Send an Alert Event")."""
    assert set(doc) <= {
        "routing_key",
        "event_action",
        "dedup_key",
        "payload",
        "images",
        "links",
        "client",
        "client_url",
    }
    assert isinstance(doc["routing_key"], str)
    assert doc["routing_key"]
    assert doc["event_action"] in ("trigger", "acknowledge", "resolve")
    assert len(doc["dedup_key"]) <= 255
    if doc["event_action"] == "trigger":
        p = doc["payload"]
        assert set(p) <= {
            "summary",
            "source",
            "severity",
            "timestamp",
            "component",
            "group",
            "class",
            "custom_details",
        }
        assert 1 <= len(p["summary"]) <= 1024
        assert p["source"]
        assert p["severity"] in ("critical", "error", "warning", "info")
        for link in doc.get("links", []):
            assert set(link) <= {"href", "text"}


def _pd(hook: HookServer, ctx: BuildContext, **kw: object) -> PagerdutyIntegration:
    hook.on("/v2/enqueue", ACCEPTED)
    cfg = PagerdutyConfig.model_validate(
        {"routing_key": SECRET, "url": hook.url("/v2/enqueue"), **kw}
    )
    return PagerdutyIntegration(cfg, 0, ctx)


async def test_pagerduty_triggers_then_resolves_with_the_same_dedup_key(
    hook: HookServer, ctx: BuildContext
) -> None:
    pd = _pd(hook, ctx)
    await pd.notify(notification())
    await pd.notify(notification())  # a retry or another replica: same key
    await pd.notify(notification(resolved=True))
    await pd.close()
    trigger, again, resolve = (r.json() for r in hook.received("/v2/enqueue"))
    for doc in (trigger, again, resolve):
        check_event_v2(doc)
    group_key = notification().group_key
    assert trigger["dedup_key"] == hashlib.sha256(group_key.encode()).hexdigest()
    assert again["dedup_key"] == resolve["dedup_key"] == trigger["dedup_key"]
    assert trigger["event_action"] == "trigger"
    assert resolve["event_action"] == "resolve"
    assert resolve["routing_key"] == SECRET
    p = trigger["payload"]
    assert p["summary"] == TITLE
    assert p["severity"] == "critical"  # from the alerts' label when severity is not configured
    assert p["custom_details"]["num_firing"] == 2
    assert p["custom_details"]["runbook_url"] == "https://runbooks.example/HighCPU"
    assert trigger["client"] == "Vigil"
    assert trigger["client_url"].startswith("http://vigil.example/alerts?")
    assert {"href": "https://runbooks.example/HighCPU", "text": "Runbook"} in trigger["links"]


async def test_pagerduty_configured_fields_are_templates(
    hook: HookServer, ctx: BuildContext
) -> None:
    pd = _pd(
        hook,
        ctx,
        severity='{{ if eq .CommonLabels.severity "critical" }}warning{{ end }}',
        component="{{ .CommonLabels.job }}",
        group="{{ .GroupLabels.alertname }}",
        details={"team": "{{ .CommonLabels.instance }}"},
    )
    await pd.notify(notification())
    await pd.close()
    doc = hook.received("/v2/enqueue")[0].json()
    check_event_v2(doc)
    assert doc["payload"]["severity"] == "warning"
    assert "component" not in doc["payload"] or doc["payload"]["component"] == ""
    assert doc["payload"]["group"] == "HighCPU"
    assert doc["payload"]["custom_details"]["team"] == "web-1"


@pytest.mark.parametrize(
    ("status", "error"), [(400, PermanentError), (429, RetryableError), (502, RetryableError)]
)
async def test_pagerduty_errors_are_classified_and_hide_the_routing_key(
    hook: HookServer, ctx: BuildContext, status: int, error: type[Exception]
) -> None:
    pd = _pd(hook, ctx)
    hook.on(
        "/v2/enqueue",
        Answer(
            status=status, body=b'{"status":"invalid event","message":"Event object is invalid"}'
        ),
    )
    with pytest.raises(error) as info:
        await pd.notify(notification())
    await pd.close()
    assert SECRET not in str(info.value)
