"""Flush decisions and batch building: limits, the interval, ids per instance."""

from __future__ import annotations

from agent.batcher import Batcher, FlushPolicy, Outgoing
from shared.codec import decode_batch
from shared.wire import DecodeLimits

LIMITS = DecodeLimits()


class Sink:
    def __init__(self) -> None:
        self.items: list[Outgoing] = []

    def submit(self, item: Outgoing) -> None:
        self.items.append(item)


def make(**kw: float) -> tuple[Batcher, Sink, list[float]]:
    now = [100.0]
    policy = FlushPolicy(
        max_samples=int(kw.get("max_samples", 1000)),
        max_series=int(kw.get("max_series", 1000)),
        max_bytes=int(kw.get("max_bytes", 1 << 20)),
        interval_s=kw.get("interval_s", 1.0),
    )
    sink = Sink()
    return Batcher(policy, sink, clock=lambda: now[0], instance_id="abc"), sink, now


def test_policy_is_pure() -> None:
    p = FlushPolicy(max_samples=10, max_series=5, max_bytes=100, interval_s=1.0)
    assert not p.full(9, 4, 99)
    assert p.full(10, 0, 0)
    assert p.full(0, 5, 0)
    assert p.full(0, 0, 100)
    assert not p.expired(None, 1e9)
    assert not p.expired(10.0, 10.9)
    assert p.expired(10.0, 11.0)


def test_full_batches_go_at_max_samples_with_growing_sequence() -> None:
    b, sink, _ = make(max_samples=3)
    for k in range(7):
        b.add("m", {"k": str(k)}, 1_000_000 + k, float(k))
    assert [i.msg_id for i in sink.items] == ["abc:0", "abc:1"]
    assert [i.samples for i in sink.items] == [3, 3]
    b.flush()
    assert [i.samples for i in sink.items] == [3, 3, 1]
    batch = decode_batch(sink.items[2].payload, limits=LIMITS, now_ms=1_000_000)
    assert (batch.agent_id, batch.seq, list(batch.values)) == ("abc", 2, [6.0])


def test_size_estimate_flushes_before_the_byte_limit() -> None:
    b, sink, _ = make(max_bytes=2000)
    for k in range(200):
        b.add("metric_with_a_long_name", {"label": "v" * 20 + str(k)}, 1, 1.0)
    assert sink.items
    assert all(len(i.payload) <= 2100 for i in sink.items)


def test_interval_flushes_an_open_batch_and_never_an_empty_one() -> None:
    b, sink, now = make(interval_s=1.0)
    b.tick(now[0] + 5)
    assert sink.items == []
    b.add("m", {}, 1, 1.0)
    now[0] += 0.5
    b.tick(now[0])
    assert sink.items == []
    now[0] += 0.5
    b.tick(now[0])
    assert len(sink.items) == 1


def test_instance_ids_differ_per_process() -> None:
    sink = Sink()
    p = FlushPolicy(max_samples=1, max_series=1, max_bytes=1 << 20, interval_s=1)
    ids = {Batcher(p, sink, clock=lambda: 0.0).instance_id for _ in range(50)}
    assert len(ids) == 50
