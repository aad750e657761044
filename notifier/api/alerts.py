"""Postable alerts in: Alertmanager's checks, then ``AlertEvent``s on the alerts stream.

As Alertmanager's ``postAlertsHandler``: a missing ``startsAt`` is ``endsAt``
when given, else now; a missing ``endsAt`` is now + ``resolve_timeout``; an
alert whose ``endsAt`` is not after now is resolved; empty label values are
dropped; an alert needs one label, valid label and annotation names, and
``endsAt`` not before ``startsAt``. The valid alerts are published even when
others are not, and the answer then says 400 with every problem.

Events go to ``<prefix>.alerts.api`` with ``Nats-Msg-Id`` = fingerprint,
status, ``startsAt`` and ``endsAt``: a client retrying the same POST is
dropped by the duplicate window, while Prometheus' periodic re-send (a later
``endsAt``) is a new event that keeps the alert alive.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta

import nats.errors
import nats.js.errors
from nats.js.client import JetStreamContext

from shared.alertmanager.apierrors import ApiError, BadRequest
from shared.alertmanager.models import PostableAlert
from shared.codec import encode_message
from shared.wire import LABEL_NAME_RE, AlertEvent, Names

API_GROUP = "api"
"""The alert-group token of the subject that API alerts are published on."""


def _problem(alert: PostableAlert, labels: dict[str, str]) -> str | None:
    if not labels:
        return "at least one label pair required"
    for name in labels:
        if not LABEL_NAME_RE.fullmatch(name):
            return f"invalid label set: invalid name {name!r}"
    for name in alert.annotations:
        if not LABEL_NAME_RE.fullmatch(name):
            return f"invalid annotations: invalid name {name!r}"
    return None


def to_events(
    alerts: Sequence[PostableAlert], now: datetime, resolve_timeout: float
) -> tuple[list[AlertEvent], list[str]]:
    """The valid alerts as events, and a message per invalid one."""
    events: list[AlertEvent] = []
    problems: list[str] = []
    for alert in alerts:
        starts = alert.starts_at or alert.ends_at or now
        ends = alert.ends_at or now + timedelta(seconds=resolve_timeout)
        labels = {k: v for k, v in alert.labels.items() if v}
        problem = _problem(alert, labels)
        if problem is None and ends < starts:
            problem = "start time must be before end time"
        if problem is not None:
            problems.append(problem)
            continue
        events.append(
            AlertEvent(
                labels=labels,
                annotations=dict(alert.annotations),
                starts_at=starts,
                ends_at=ends,
                generator_url=alert.generator_url,
                status="firing" if ends > now else "resolved",
            )
        )
    return events, problems


def msg_id(event: AlertEvent) -> str:
    return (
        f"api:{event.fingerprint}:{event.status}:"
        f"{int(event.starts_at.timestamp() * 1000)}:{int(event.ends_at.timestamp() * 1000)}"
    )


async def publish(
    js: JetStreamContext | None,
    names: Names,
    alerts: Sequence[PostableAlert],
    now: datetime,
    resolve_timeout: float,
) -> None:
    """Publish the valid alerts; ``BadRequest`` naming the invalid ones afterwards."""
    if js is None:
        raise ApiError("cannot accept alerts: the notifier is starting")
    events, problems = to_events(alerts, now, resolve_timeout)
    subject = names.alerts(API_GROUP)
    try:
        await asyncio.gather(
            *(
                js.publish(subject, encode_message(e), headers={"Nats-Msg-Id": msg_id(e)})
                for e in events
            )
        )
    except (nats.errors.Error, nats.js.errors.Error) as exc:
        raise ApiError(f"cannot publish alerts to {subject}: {exc}") from exc
    if problems:
        raise BadRequest("; ".join(problems))
