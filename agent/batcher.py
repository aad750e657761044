"""Samples in, encoded batches out: the flush decision and the batch builder around it.

``FlushPolicy`` is the pure decision: a batch is flushed when it holds
``max_samples`` samples or ``max_series`` series, when its estimated encoded
size reaches ``max_bytes``, or when its first sample is ``interval_s`` old.
``Batcher`` applies it around ``shared.wire.BatchBuilder``: ``add`` is
synchronous and cheap, checks the size limits after each sample, and hands
each full batch, encoded, with ``Nats-Msg-Id`` = ``<instance id>:<seq>``, to
its ``BatchSink`` (the publisher), which never blocks. The time limit is
checked by ``tick(now)``, called by the app's flush timer.

The instance id is random per process (16 hex digits from ``secrets``);
sequences start at 0 and grow by one per batch, so a restarted agent can
never reuse an id, and an audit can find a lost batch as a gap in one
instance's sequence.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from shared.codec import encode_batch
from shared.wire import BatchBuilder, MetricType


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One encoded batch on its way to JetStream."""

    msg_id: str
    payload: bytes
    samples: int


class BatchSink(Protocol):
    """Takes encoded batches. ``submit`` must not block: it queues or spools."""

    def submit(self, item: Outgoing) -> None: ...


@dataclass(frozen=True, slots=True)
class FlushPolicy:
    """When a batch must go. Sizes are inclusive limits; ``interval_s`` in seconds."""

    max_samples: int
    max_series: int
    max_bytes: int
    interval_s: float

    def full(self, samples: int, series: int, approx_bytes: int) -> bool:
        return (
            samples >= self.max_samples
            or series >= self.max_series
            or (approx_bytes >= self.max_bytes)
        )

    def expired(self, opened_at: float | None, now: float) -> bool:
        """``opened_at``: clock time of the batch's first sample, None for an empty batch."""
        return opened_at is not None and now - opened_at >= self.interval_s


def new_instance_id() -> str:
    return secrets.token_hex(8)


class Batcher:
    """Builds batches and hands them to ``sink``; one per agent process."""

    def __init__(
        self,
        policy: FlushPolicy,
        sink: BatchSink,
        *,
        clock: Callable[[], float],
        instance_id: str | None = None,
    ) -> None:
        self.policy = policy
        self.sink = sink
        self.instance_id = instance_id or new_instance_id()
        self.next_seq = 0
        self._clock = clock
        self._builder = BatchBuilder()
        self._opened_at: float | None = None

    def add(
        self,
        name: str,
        labels: Mapping[str, str],
        ts_ms: int,
        value: float,
        *,
        type: MetricType | None = None,
        help: str | None = None,
        unit: str | None = None,
    ) -> None:
        b = self._builder
        if self._opened_at is None:
            self._opened_at = self._clock()
        b.add(name, labels, ts_ms, value, type=type, help=help, unit=unit)
        if self.policy.full(len(b), b.series_count, b.approx_bytes):
            self.flush()

    def tick(self, now: float) -> None:
        """Flush if the open batch is older than the policy's interval."""
        if self.policy.expired(self._opened_at, now):
            self.flush()

    def flush(self) -> None:
        """Send whatever is open now (nothing if empty)."""
        self._opened_at = None
        if not len(self._builder):
            return
        batch = self._builder.build(self.instance_id, self.next_seq)
        self.next_seq += 1
        self.sink.submit(Outgoing(batch.msg_id, encode_batch(batch), len(batch)))
