"""Alert events on the bus: ``AlertEvent`` from a state-machine ``Send``, and its ``Nats-Msg-Id``.

``msg_id`` follows the NATS contract: fingerprint + status + ``startsAt`` + the
aligned tick of the send. ``startsAt`` comes from data timestamps and the tick is
the evaluation time floored to a wall-clock multiple of the evaluation interval, so
two replicas that evaluate the same data publish the same id (JetStream's
duplicate window keeps one), while a periodic re-send, in a later tick, is a new
message. The fingerprint is the event's: external labels included.

``generatorURL`` is Prometheus': ``<external_url>/graph?g0.expr=<expr>&g0.tab=1``.
External labels are added to an alert's labels where it has no such label, as
Prometheus' notifier does.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from urllib.parse import quote_plus

from alerter.state import Send
from shared.wire import AlertEvent

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def aligned_tick(t_ms: int, interval_ms: int) -> int:
    """``t_ms`` floored to a multiple of ``interval_ms`` since the epoch (UTC wall clock)."""
    if interval_ms <= 0:
        raise ValueError(f"cannot align to interval {interval_ms} ms: must be positive")
    return t_ms - t_ms % interval_ms


def msg_id(fingerprint: str, status: str, starts_at_ms: int, tick_ms: int) -> str:
    """The ``Nats-Msg-Id`` of an alert event (stable across replicas for one tick)."""
    return f"{fingerprint}:{status}:{starts_at_ms}:{tick_ms}"


def generator_url(external_url: str, expr: str) -> str:
    """Prometheus' ``externalURL + strutil.TableLinkForExpression(expr)``."""
    return f"{external_url.rstrip('/')}/graph?g0.expr={quote_plus(expr, safe='')}&g0.tab=1"


def ms_to_datetime(t_ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=t_ms)


def build_event(
    send: Send,
    expr: str,
    *,
    external_url: str = "",
    external_labels: Mapping[str, str] | None = None,
) -> AlertEvent:
    labels = dict(send.alert.labels)
    for name, value in (external_labels or {}).items():
        if not labels.get(name):
            labels[name] = value
    return AlertEvent(
        labels=labels,
        annotations=dict(send.alert.annotations),
        starts_at=ms_to_datetime(send.starts_at_ms),
        ends_at=ms_to_datetime(send.ends_at_ms),
        generator_url=generator_url(external_url, expr),
        status="resolved" if send.status == "resolved" else "firing",
    )


def event_msg_id(event: AlertEvent, sent_at_ms: int, interval_ms: int) -> str:
    """``msg_id`` of a built event sent at evaluation time ``sent_at_ms``."""
    starts_ms = (event.starts_at - _EPOCH) // timedelta(milliseconds=1)
    return msg_id(event.fingerprint, event.status, starts_ms, aligned_tick(sent_at_ms, interval_ms))
