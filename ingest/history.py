"""History: alert events, notification results and silence events into their tables.

Each of the ALERTS, NOTIFICATIONS and SILENCES streams has a durable pull
consumer (``<ingest.consumer>_alerts`` ...). ``HistoryHandler`` decodes a
fetch with ``shared.codec.decode_message``, inserts the rows in one
transaction with ``ON CONFLICT DO NOTHING`` on keys that contain the
JetStream stream sequence (a redelivery is a no-op), then acks. Undecodable
messages are recorded in ``rejects`` and terminated. Database errors nak
with back-off, as for metrics.

Alert status is a plain subject (``<prefix>.alertstatus``), not a stream:
``AlertStatusRecorder`` stores what arrives on a core subscription, at most
once: a status published while ingest or the database is down is not kept.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections.abc import Callable
from typing import Any

import asyncpg
from nats.aio.msg import Msg

from ingest.backoff import Backoff
from ingest.consumer import stream_seq
from ingest.errors import StorageError
from ingest.metrics import IngestMetrics
from ingest.writer import REJECTS_SQL, Reject, reject_columns, translate
from shared.codec import decode_message
from shared.errors import DecodeError
from shared.log import get_logger
from shared.wire import AlertEvent, AlertStatus, NotificationResult, SilenceEvent, WireMessage

log = get_logger(__name__)

_ALERT = """
INSERT INTO alert_events (stream_seq, fingerprint, status, labels, annotations, starts_at,
                          ends_at, generator_url, subject)
VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7, $8, $9) ON CONFLICT DO NOTHING
"""
_NOTIFICATION = """
INSERT INTO notification_results (stream_seq, receiver, integration, integration_index, group_key,
    firing, resolved, fingerprints, outcome, attempt, error, duration_seconds, at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT DO NOTHING
"""
_SILENCE = """
INSERT INTO silence_events (stream_seq, id, kind, matchers, starts_at, ends_at, created_by,
                            comment, updated_at)
VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING
"""
_STATUS = """
INSERT INTO alert_status (fingerprint, state, silenced_by, inhibited_by, notified_at, receivers, at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _alert(seq: int, subject: str, m: AlertEvent) -> tuple[str, tuple[Any, ...]]:
    return _ALERT, (
        seq, m.fingerprint, m.status, _json(m.labels), _json(m.annotations), m.starts_at,
        m.ends_at, m.generator_url, subject,
    )  # fmt: skip


def _notification(seq: int, _subject: str, m: NotificationResult) -> tuple[str, tuple[Any, ...]]:
    return _NOTIFICATION, (
        seq, m.receiver, m.integration, m.integration_index, m.group_key, m.firing, m.resolved,
        m.fingerprints, m.outcome, m.attempt, m.error, m.duration_seconds, m.at,
    )  # fmt: skip


def _silence(seq: int, _subject: str, m: SilenceEvent) -> tuple[str, tuple[Any, ...]]:
    matchers = [x.model_dump(by_alias=True) for x in m.matchers]
    return _SILENCE, (
        seq, m.id, m.kind, _json(matchers), m.starts_at, m.ends_at, m.created_by, m.comment,
        m.updated_at,
    )  # fmt: skip


Row = Callable[[int, str, Any], tuple[str, tuple[Any, ...]]]
KINDS: dict[str, tuple[type[WireMessage], Row]] = {
    "alerts": (AlertEvent, _alert),
    "notifications": (NotificationResult, _notification),
    "silences": (SilenceEvent, _silence),
}


def _check_text(args: tuple[Any, ...]) -> None:
    if any(isinstance(a, str) and ("\x00" in a or "\\u0000" in a) for a in args):
        raise DecodeError("cannot store message: text contains NUL", reason="nul_character")


def _clean(text: str) -> str:
    return text.replace("\x00", "\\0")


class HistoryHandler:
    """``FetchHandler`` for one history stream (``kind`` in ``KINDS``)."""

    def __init__(
        self,
        *,
        kind: str,
        stream: str,
        pool: asyncpg.Pool,
        metrics: IngestMetrics,
        backoff: Backoff,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._kind = kind
        self._model, self._row = KINDS[kind]
        self._stream = stream
        self._pool = pool
        self._metrics = metrics
        self._backoff = backoff
        self._clock = clock

    async def __call__(self, msgs: list[Msg]) -> float:
        msgs = sorted(msgs, key=stream_seq)
        statements: list[tuple[str, tuple[Any, ...]]] = []
        rejects: list[Reject] = []
        for msg in msgs:
            seq = stream_seq(msg)
            try:
                message = decode_message(msg.data, self._model)
                sql, args = self._row(seq, _clean(msg.subject), message)
                _check_text(args)
                statements.append((sql, args))
            except DecodeError as exc:
                rejects.append(
                    Reject.of(
                        self._stream,
                        seq=seq,
                        subject=msg.subject,
                        host=None,
                        reason=exc.reason,
                        detail=str(exc),
                        payload=msg.data,
                    )
                )
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                for sql, args in statements:
                    await conn.execute(sql, *args)
                if rejects:
                    await conn.execute(REJECTS_SQL, *reject_columns(rejects))
        except Exception as exc:  # noqa: BLE001 - database trouble or a BUG: nak, back off
            err = exc if isinstance(exc, StorageError) else translate(exc, f"write {self._kind}")
            delay, first = self._backoff.failed(self._clock(), rand=0.5 + random.random() / 2)  # noqa: S311
            if first:
                log.warning("cannot write history: retrying", stream=self._stream, error=str(err))
            for msg in msgs:
                with contextlib.suppress(Exception):
                    await msg.nak(delay=delay)
            return delay
        if self._backoff.succeeded(self._clock()) is not None:
            log.info("writing history again", stream=self._stream)
        rejected = {r.stream_seq for r in rejects}
        for msg in msgs:
            with contextlib.suppress(Exception):
                await (msg.term() if stream_seq(msg) in rejected else msg.ack())
        self._metrics.history.labels(self._kind).inc(len(statements))
        for r in rejects:
            self._metrics.rejects.labels(r.reason).inc()
        return 0.0


class AlertStatusRecorder:
    """Stores alert status messages from a core subscription (at most once)."""

    def __init__(self, pool: asyncpg.Pool, metrics: IngestMetrics) -> None:
        self._pool = pool
        self._metrics = metrics
        self._failing = False

    async def record(self, msg: Msg) -> None:
        try:
            m = decode_message(msg.data, AlertStatus)
        except DecodeError as exc:
            self._metrics.rejects.labels(exc.reason).inc()
            return
        args = (
            m.fingerprint, m.state, m.silenced_by, m.inhibited_by, m.notified_at, m.receivers,
            m.at,
        )  # fmt: skip
        if any(isinstance(a, list) and any("\x00" in s for s in a) for a in args):
            self._metrics.rejects.labels("nul_character").inc()
            return
        try:
            async with self._pool.acquire() as conn:
                await conn.execute(_STATUS, *args)
        except Exception as exc:  # noqa: BLE001 - at most once by design: drop, say so once
            if not self._failing:
                log.warning("cannot write alert status: dropping until the database is back",
                            error=str(exc) or type(exc).__name__)  # fmt: skip
                self._failing = True
            return
        if self._failing:
            log.info("writing alert status again")
            self._failing = False
        self._metrics.history.labels("alertstatus").inc()
