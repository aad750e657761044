"""A typical notification for the receiver tests."""

from __future__ import annotations

from notifier.receivers.base import Notification
from tests.notifier.helpers import alert, at

SECRET = "s3cr3t-T0KEN"
TITLE = "[FIRING:2] HighCPU (web-1 critical)"


def notification(*, resolved: bool = False, n_resolved: int = 0) -> Notification:
    """Two HighCPU alerts on web-1 (critical, with a runbook); all resolved if ``resolved``."""
    ann = {
        "summary": "CPU above 90%",
        "description": "web-1 has been busy for 10 minutes",
        "runbook_url": "https://runbooks.example/HighCPU",
    }
    alerts = [
        alert(0, 600 if resolved else None, resolved=resolved, alertname="HighCPU",
              instance="web-1", severity="critical", job=job, annotations=ann)
        for job in ("node", "app")
    ]  # fmt: skip
    extra = [
        alert(0, 60, resolved=True, alertname="HighCPU", instance="web-1", severity="critical",
              job=f"old{i}", annotations=ann)
        for i in range(n_resolved)
    ]  # fmt: skip
    return Notification(
        receiver="team",
        group_key='{}/{severity="critical"}:{alertname="HighCPU"}',
        group_labels={"alertname": "HighCPU"},
        firing=[] if resolved else alerts,
        resolved=(alerts if resolved else []) + extra,
        external_url="http://vigil.example",
        at=at(30),
    )
