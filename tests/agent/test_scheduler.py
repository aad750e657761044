"""The scheduler's cycle: labels, timestamps, staleness markers, failures, validation."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Mapping

import pytest
from structlog.testing import capture_logs

from agent.collectors.base import Sample
from agent.scheduler import (
    CollectorEntry,
    CollectorRunner,
    Scheduler,
    host_offset,
    merge_labels,
    next_tick,
)
from agent.selfmetrics import AgentMetrics
from shared.wire import STALE_NAN, DecodeLimits, is_stale

TICK = 1_700_000_000.0


class ListSink:
    def __init__(self) -> None:
        self.got: list[tuple[str, dict[str, str], int, float]] = []

    def add(
        self, name: str, labels: Mapping[str, str], ts_ms: int, value: float, **_: object
    ) -> None:
        self.got.append((name, dict(labels), ts_ms, value))

    def stale(self) -> list[tuple[str, dict[str, str]]]:
        return [(n, lab) for n, lab, _t, v in self.got if is_stale(v)]


class Scripted:
    """Returns the next scripted answer each cycle: a list of samples or an exception."""

    def __init__(self, *answers: list[Sample] | Exception) -> None:
        self.answers = list(answers)
        self.closed = False

    async def collect(self) -> list[Sample]:
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def close(self) -> None:
        self.closed = True


class Hanging:
    async def collect(self) -> list[Sample]:
        await asyncio.sleep(3600)
        return []

    async def close(self) -> None:
        return None


def runner(
    collector: object, sink: ListSink, metrics: AgentMetrics, **kw: object
) -> CollectorRunner:
    entry = CollectorEntry("c1", collector, float(kw.get("interval", 10.0)), {"role": "db"})  # type: ignore[arg-type]
    return CollectorRunner(
        entry, sink, metrics, host_labels={"dc": "eu", "role": "x"}, limits=DecodeLimits()
    )


def test_next_tick_is_aligned_to_interval_multiples_plus_host_offset() -> None:
    assert next_tick(100.0, 10.0, 0.0) == 110.0
    assert next_tick(109.99, 10.0, 0.0) == 110.0
    assert next_tick(100.0, 10.0, 0.25) == 102.5
    assert next_tick(102.5, 10.0, 0.25) == 112.5
    assert 0.0 <= host_offset("web-1") < 1.0
    assert host_offset("web-1") == host_offset("web-1")


def test_target_labels_win_and_clashing_sample_labels_become_exported() -> None:
    assert merge_labels({"job": "x", "role": "mine"}, {"role": "db"}) == {
        "job": "x",
        "role": "db",
        "exported_role": "mine",
    }


async def test_samples_get_merged_labels_and_the_tick_timestamp() -> None:
    sink, metrics = ListSink(), AgentMetrics()
    r = runner(
        Scripted([Sample("m", {"a": "1"}, 2.0), Sample("n", {}, 3.0, ts_ms=123_000)]), sink, metrics
    )
    assert await r.cycle(TICK)
    assert sink.got[0] == ("m", {"a": "1", "dc": "eu", "role": "db"}, int(TICK * 1000), 2.0)
    # an explicit timestamp is kept, if within the skew window... this one is not: dropped
    assert len(sink.got) == 1
    assert metrics.dropped_samples.labels("invalid")._value.get() == 1


async def test_a_series_that_disappears_gets_one_bit_exact_staleness_marker() -> None:
    sink, metrics = ListSink(), AgentMetrics()
    a, b = Sample("m", {"k": "a"}, 1.0), Sample("m", {"k": "b"}, 1.0)
    r = runner(Scripted([a, b], [a], [a]), sink, metrics)
    for k in range(3):
        await r.cycle(TICK + 10 * k)
    stale = [(n, lab, t) for n, lab, t, v in sink.got if is_stale(v)]
    assert stale == [("m", {"k": "b", "dc": "eu", "role": "db"}, int((TICK + 10) * 1000))]
    marker = next(v for *_x, v in sink.got if is_stale(v))
    assert struct.pack("<d", marker) == struct.pack("<d", STALE_NAN)
    assert is_stale(marker)
    assert metrics.staleness_markers._value.get() == 1


async def test_a_failing_collector_is_logged_once_counted_and_marks_nothing() -> None:
    sink, metrics = ListSink(), AgentMetrics()
    a = Sample("m", {}, 1.0)
    r = runner(Scripted([a], OSError("boom"), OSError("boom"), [a]), sink, metrics)
    with capture_logs() as logs:
        results = [await r.cycle(TICK + 10 * k) for k in range(4)]
    assert results == [True, False, False, True]
    assert sink.stale() == []
    assert metrics.collector_errors.labels("c1")._value.get() == 2
    events = [e["event"] for e in logs]
    assert events == ["cannot collect", "collector recovered"]
    assert logs[0]["reason"] == "boom"


async def test_a_collect_outliving_its_interval_is_cancelled_and_counts_as_failed() -> None:
    sink, metrics = ListSink(), AgentMetrics()
    r = runner(Hanging(), sink, metrics, interval=0.05)
    assert not await r.cycle(TICK)
    assert metrics.collector_errors.labels("c1")._value.get() == 1


async def test_an_invalid_series_is_dropped_alone_and_logged_once() -> None:
    sink, metrics = ListSink(), AgentMetrics()
    good, bad = Sample("ok_metric", {}, 1.0), Sample("bad metric name", {}, 1.0)
    r = runner(Scripted([good, bad]), sink, metrics)
    with capture_logs() as logs:
        await r.cycle(TICK)
        await r.cycle(TICK + 10)
    assert [n for n, *_ in sink.got] == ["ok_metric", "ok_metric"]
    assert metrics.dropped_samples.labels("invalid")._value.get() == 2
    assert [e["event"] for e in logs] == ["cannot send series, dropping it"]


async def test_reload_marks_removed_collectors_keeps_renewed_ones_and_stop_marks_all() -> None:
    sink, metrics = ListSink(), AgentMetrics()
    clock = [TICK]
    s = Scheduler(
        sink,
        metrics,
        hostname="h",
        host_labels={},
        limits=DecodeLimits(),
        wall_clock=lambda: clock[0],
    )
    one, two = Scripted([Sample("a", {}, 1.0)]), Scripted([Sample("b", {}, 1.0)])
    await s.replace([CollectorEntry("one", one, 3600), CollectorEntry("two", two, 3600)])
    for r in s.runners.values():
        await r.cycle(TICK)
    one_again = Scripted([Sample("a", {}, 1.0)])
    await s.replace([CollectorEntry("one", one_again, 3600)])
    assert sink.stale() == [("b", {})]
    assert one.closed
    assert two.closed
    await s.runners["one"].cycle(TICK + 10)
    assert sink.stale() == [("b", {})]  # "a" continued without a marker
    await s.stop()
    assert sink.stale() == [("b", {}), ("a", {})]
    assert one_again.closed


@pytest.mark.parametrize("interval", [1.0, 7.0])
def test_ticks_never_go_backwards(interval: float) -> None:
    now = TICK
    for _ in range(100):
        nxt = next_tick(now, interval, 0.3)
        assert nxt > now
        assert nxt - now <= interval
        now = nxt


async def test_a_series_repeated_in_one_cycle_is_sent_once() -> None:
    sink, metrics = ListSink(), AgentMetrics()
    r = runner(
        Scripted([Sample("m", {"a": "1"}, 1.0), Sample("m", {"a": "1"}, 2.0)]), sink, metrics
    )
    assert await r.cycle(TICK)
    assert [(n, v) for n, _l, _t, v in sink.got] == [("m", 1.0)]
    assert metrics.dropped_samples.labels("duplicate")._value.get() == 1


class Slow:
    """Yields to the loop ``awaits`` times before answering."""

    def __init__(self, name: str, awaits: int) -> None:
        self.name, self.awaits = name, awaits

    async def collect(self) -> list[Sample]:
        for _ in range(self.awaits):
            await asyncio.sleep(0)
        return [Sample(self.name, {}, 1.0)]

    async def close(self) -> None:
        pass


def flushing_scheduler() -> tuple[Scheduler, ListSink, list[list[str]]]:
    """A scheduler whose idle flushes record the names the sink held at each."""
    sink = ListSink()
    flushes: list[list[str]] = []
    s = Scheduler(
        sink,
        AgentMetrics(),
        hostname="h",
        host_labels={},
        limits=DecodeLimits(),
        on_idle=lambda: flushes.append([n for n, *_ in sink.got]),
    )
    return s, sink, flushes


async def test_collectors_ticking_together_are_flushed_once_when_all_are_done() -> None:
    s, _sink, flushes = flushing_scheduler()
    # Two collectors that answer without yielding and one that yields a few times:
    # all three tick together and share one flush, after the last is done.
    entries = [
        CollectorEntry("instant", Slow("instant", 0), 0.2),
        CollectorEntry("few", Slow("few", 5), 0.2),
        CollectorEntry("third", Slow("third", 0), 0.2),
    ]
    await s.replace(entries)
    try:
        for _ in range(200):  # bounded: 2 s
            if len(flushes) >= 2:
                break
            await asyncio.sleep(0.01)
    finally:
        await s.stop()
    assert len(flushes) >= 2
    first_tick = flushes[0]
    assert sorted(first_tick) == ["few", "instant", "third"]  # one flush for the three
    assert sorted(flushes[1][3:]) == ["few", "instant", "third"]


class Gated:
    """Answers once ``gate`` is set."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()

    async def collect(self) -> list[Sample]:
        await self.gate.wait()
        return [Sample("gated", {}, 1.0)]

    async def close(self) -> None:
        pass


async def test_a_collection_still_running_holds_the_idle_flush_back() -> None:
    s, sink, flushes = flushing_scheduler()
    gated = Gated()
    await s.replace(
        [CollectorEntry("fast", Slow("fast", 0), 2.0), CollectorEntry("gated", gated, 2.0)]
    )
    try:
        for _ in range(300):  # bounded: 3 s, past the first tick
            if sink.got:
                break
            await asyncio.sleep(0.01)
        assert [n for n, *_ in sink.got] == ["fast"]
        await asyncio.sleep(0.05)
        assert flushes == []  # "gated" still collects
        gated.gate.set()
        for _ in range(100):
            if flushes:
                break
            await asyncio.sleep(0.01)
    finally:
        await s.stop()
    assert flushes[0] == ["fast", "gated"]
