"""Opsgenie: create while firing, close by alias when resolved; the alias is stable."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from notifier.config.receivers import OpsgenieConfig
from notifier.errors import PermanentError
from notifier.receivers.base import BuildContext
from notifier.receivers.opsgenie import OpsgenieIntegration
from tests.notifier.hookserver import Answer, HookServer
from tests.notifier.receivers.data import SECRET, TITLE, notification

ACCEPTED = Answer(
    status=202, body=b'{"result":"Request will be processed","took":0.1,"requestId":"r"}'
)


def check_create(doc: Any) -> None:
    """Opsgenie Alert API "Create Alert" body."""
    assert set(doc) <= {
        "message", "alias", "description", "responders", "visibleTo", "actions", "tags",
        "details", "entity", "source", "priority", "user", "note",
    }  # fmt: skip
    assert 1 <= len(doc["message"]) <= 130
    assert len(doc["alias"]) <= 512
    assert len(doc.get("description", "")) <= 15000
    assert all(isinstance(v, str) for v in doc.get("details", {}).values())
    assert doc.get("priority", "P3") in {"P1", "P2", "P3", "P4", "P5"}
    assert all(isinstance(t, str) for t in doc.get("tags", []))


def _og(hook: HookServer, ctx: BuildContext, **kw: object) -> OpsgenieIntegration:
    cfg = OpsgenieConfig.model_validate({"api_key": SECRET, "api_url": hook.url("/"), **kw})
    return OpsgenieIntegration(cfg, 0, ctx)


async def test_opsgenie_creates_then_closes_by_alias(hook: HookServer, ctx: BuildContext) -> None:
    alias = hashlib.sha256(notification().group_key.encode()).hexdigest()
    close_path = f"/v2/alerts/{alias}/close?identifierType=alias"
    hook.on("/v2/alerts", ACCEPTED)
    hook.on(close_path, ACCEPTED)
    og = _og(hook, ctx, tags="vigil,{{ .CommonLabels.severity }}", priority="P1",
             responders=[{"type": "team", "name": "ops"}], note="from Vigil")  # fmt: skip
    await og.notify(notification())
    await og.notify(notification(resolved=True))
    await og.close()
    [create] = hook.received("/v2/alerts")
    [close] = hook.received(close_path)
    assert create.headers["authorization"] == f"GenieKey {SECRET}"
    assert close.headers["authorization"] == f"GenieKey {SECRET}"
    doc = create.json()
    check_create(doc)
    assert doc["alias"] == alias
    assert doc["message"] == TITLE
    assert doc["tags"] == ["vigil", "critical"]
    assert doc["priority"] == "P1"
    assert doc["responders"] == [{"type": "team", "name": "ops"}]
    assert doc["details"]["alertname"] == "HighCPU"
    assert doc["source"].startswith("http://vigil.example/alerts?")
    assert close.json()["note"] == "from Vigil"


async def test_opsgenie_403_is_permanent_and_hides_the_key(
    hook: HookServer, ctx: BuildContext
) -> None:
    hook.on("/v2/alerts", Answer(status=403, body=b'{"message":"Key is not authorized"}'))
    og = _og(hook, ctx)
    with pytest.raises(PermanentError) as info:
        await og.notify(notification())
    await og.close()
    assert SECRET not in str(info.value)
