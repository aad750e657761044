"""A bounded replay of the metrics stream, for the windows a rule reload adds or lengthens.

At start the alerter's own consumer replays the stream; after a reload, the
selectors that are new (or reach further back) need the stream's recent part
again, for their series only, while the live consumer goes on. ``replay``
reads the stream with a second ordered consumer from a given time up to the
message that was newest when it started, and hands each message over;
``SeriesCollector`` keeps, from those batches, the samples of the series some
selectors match, so each series is merged into its window once at the end
(``WindowStore.merge``), whatever the order the samples came in; until then
they are held in typed arrays (16 bytes a sample, as in the windows).

Errors: a JetStream failure or a stream that stops delivering for
``timeout_s`` raises ``ReplayError``; a batch that cannot be decoded is the
caller's to skip (the live consumer already counted and logged it).
"""

from __future__ import annotations

import contextlib
from array import array
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import numpy as np
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, ConsumerInfo, DeliverPolicy

from alerter.errors import ReplayError
from alerter.window import Selector
from shared.promql.storage import Series
from shared.promql.values import LabelKey, label_key
from shared.wire import MetricBatch


class SeriesCollector:
    """The samples of the series ``selectors`` match, gathered batch by batch."""

    def __init__(self, selectors: Sequence[Selector]) -> None:
        self._selectors = list(selectors)
        self._series: dict[LabelKey, tuple[dict[str, str], array[int], array[float]]] = {}
        self.samples = 0

    def add(self, host: str, batch: MetricBatch) -> None:
        """Keep the samples of ``batch`` (sent by ``host``) whose series a selector matches."""
        keep: dict[int, tuple[array[int], array[float]]] = {}
        for pos, desc in enumerate(batch.series):
            labels = {**desc.labels, "host": host, "__name__": desc.name}
            if any(s.matches(labels) for s in self._selectors):
                key = label_key(labels)
                held = self._series.get(key)
                if held is None:
                    held = self._series[key] = (labels, array("q"), array("d"))
                keep[pos] = (held[1], held[2])
        if not keep:
            return
        for pos, ts, value in zip(
            batch.series_index, batch.timestamps_ms, batch.values, strict=True
        ):
            into = keep.get(pos)
            if into is not None:
                into[0].append(ts)
                into[1].append(value)
                self.samples += 1

    def series(self) -> list[Series]:
        """Every series gathered, its samples sorted by time."""
        out = []
        for labels, ts, vals in self._series.values():
            t = np.frombuffer(ts, dtype=np.int64)
            order = np.argsort(t, kind="stable")
            out.append(Series(labels, t[order], np.frombuffer(vals, dtype=np.float64)[order]))
        return out


def catch_up_seq(info: ConsumerInfo) -> int | None:
    """The stream sequence of the newest message a just-made ordered consumer is to
    deliver (the stream's end when it was made), ``None`` when it has nothing to deliver.

    The server may have pushed some (or all) messages into the subscription's queue
    already: they count in ``delivered``, not in ``num_pending``, so ``num_pending`` 0
    alone does not mean that nothing is coming.
    """
    delivered = (info.delivered.stream_seq or 0) if info.delivered else 0
    handed = (info.delivered.consumer_seq or 0) if info.delivered else 0
    if not info.num_pending and not handed:
        return None
    return delivered + (info.num_pending or 0)


def reached(msg: Msg, last_seq: int) -> bool:
    """Whether ``msg`` is (or passed) the newest message a catch-up waits for."""
    meta = msg.metadata
    return meta.num_pending == 0 or meta.sequence.stream >= last_seq


async def replay(
    js: JetStreamContext,
    subject: str,
    from_ms: int,
    handle: Callable[[str, bytes], None],
    *,
    timeout_s: float,
) -> int:
    """Hand ``handle(subject, data)`` each message of ``subject`` from ``from_ms`` on.

    Stops at the message that was the newest when the replay began (later ones
    are the live consumer's); returns how many were handed over.
    """
    try:
        sub = await js.subscribe(
            subject,
            ordered_consumer=True,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_TIME,
                opt_start_time=datetime.fromtimestamp(from_ms / 1000, UTC),
            ),
        )
    except Exception as exc:  # any JetStream failure is the replay's
        raise ReplayError(f"cannot replay {subject}: {exc or type(exc).__name__}") from exc
    count = 0
    try:
        try:
            info = await sub.consumer_info()
        except Exception as exc:
            raise ReplayError(f"cannot replay {subject}: {exc or type(exc).__name__}") from exc
        last_seq = catch_up_seq(info)
        if last_seq is None:
            return 0
        while True:
            try:
                msg = await sub.next_msg(timeout=timeout_s)
            except Exception as exc:  # nats' TimeoutError, a closed connection
                raise ReplayError(
                    f"cannot replay {subject}: no message in {timeout_s:g}s after {count} "
                    f"({type(exc).__name__})"
                ) from exc
            handle(msg.subject, msg.data)
            count += 1
            if reached(msg, last_seq):
                return count
    finally:
        with contextlib.suppress(Exception):  # a closed connection took it already
            await sub.unsubscribe()
