"""Runs each collector at its interval and turns what it returns into stamped, labelled samples.

The scheduler owns everything around ``Collector.collect`` (see
``agent.collectors.base``):

- **Timing**: a collector of interval ``i`` runs at wall-clock times
  ``k*i + offset``; ``offset`` is a fraction of ``i`` fixed per host
  (``host_offset``), so a fleet does not publish in lock-step while each host
  keeps its own steady rhythm. A ``collect`` still running after ``i`` seconds
  is cancelled; that cycle counts as failed.
- **Timestamps**: a sample without ``ts_ms`` gets the cycle's scheduled tick.
- **Labels**: target labels are the agent's host labels overlaid with the
  collector's ``labels``; they win over a sample's own label of the same name,
  which is kept as ``exported_<name>`` (Prometheus' ``honor_labels: false``).
- **Validation**: a series seen for the first time is checked against the
  wire rules (``shared.codec.validate_batch``) before it goes into a batch, so
  one bad name from a custom command cannot get a whole batch rejected; its
  samples are dropped, counted (``vigil_agent_dropped_samples_total{reason="invalid"}``)
  and logged once per metric name.
- **Staleness**: ``agent.staleness.StalenessTracker`` per collector.
- **Errors**: a failing collector is logged once when it starts failing and
  once when it recovers, counted, and never touches the other collectors.
- **Idle**: when a cycle ends and no other collection is running, ``on_idle``
  (the batcher's flush) is called once the loop has started every cycle due at
  the same moment, so collectors ticking together make one batch and their
  samples leave at once instead of waiting for ``agent.flush_interval`` (which
  stays the upper bound while a slow collector runs).
"""

from __future__ import annotations

import asyncio
import time
import zlib
from array import array
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from agent.collectors.base import Collector, Sample
from agent.selfmetrics import AgentMetrics
from agent.staleness import SeriesKey, StalenessTracker, series_key
from shared.codec import validate_batch
from shared.errors import DecodeError
from shared.log import get_logger
from shared.wire import STALE_NAN, DecodeLimits, MetricBatch, MetricType, SeriesDesc

log = get_logger(__name__)

MAX_REPORTED_INVALID = 1000


class SampleSink(Protocol):
    """Takes finished samples (the batcher). Synchronous and non-blocking."""

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
    ) -> None: ...


def host_offset(hostname: str) -> float:
    """A fraction in [0, 1) fixed per host: where in each interval its collections fall."""
    return zlib.crc32(hostname.encode()) / 2**32


def next_tick(now: float, interval: float, offset: float) -> float:
    """The first time after ``now`` of the form ``k*interval + offset*interval``."""
    phase = offset * interval
    k = (now - phase) // interval + 1
    return k * interval + phase


def merge_labels(own: Mapping[str, str], target: Mapping[str, str]) -> dict[str, str]:
    """Target labels win; a sample's clashing label is kept as ``exported_<name>``."""
    out = dict(own)
    for key, value in target.items():
        mine = out.get(key)
        if mine:
            out["exported_" + key] = mine
        out[key] = value
    return out


@dataclass
class CollectorEntry:
    """One collector to run: its config name, the instance, its interval and target labels."""

    name: str
    collector: Collector
    interval: float
    labels: Mapping[str, str] = field(default_factory=dict)


class CollectorRunner:
    """The cycle of one collector; ``cycle`` is the unit tested without a loop."""

    def __init__(
        self,
        entry: CollectorEntry,
        sink: SampleSink,
        metrics: AgentMetrics,
        *,
        host_labels: Mapping[str, str],
        limits: DecodeLimits,
        tracker: StalenessTracker | None = None,
    ) -> None:
        self.entry = entry
        self.sink = sink
        self.metrics = metrics
        self.limits = limits
        self.target = {**host_labels, **entry.labels}
        self.tracker = tracker or StalenessTracker()
        self.failing = False
        self._reported_invalid: set[tuple[str, str]] = set()

    async def cycle(self, tick_s: float, *, clock: Callable[[], float] = time.monotonic) -> bool:
        """Collect once for the tick at ``tick_s`` (Unix seconds); True if it succeeded."""
        name = self.entry.name
        started = clock()
        try:
            async with asyncio.timeout(self.entry.interval):
                samples = await self.entry.collector.collect()
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            self._fail(f"collect did not finish within its interval of {self.entry.interval:g} s")
            return False
        except Exception as exc:  # noqa: BLE001 - a collector's failure is its own, never the agent's
            self._fail(str(exc) or type(exc).__name__)
            return False
        finally:
            self.metrics.collector_duration.labels(name).set(clock() - started)
        if self.failing:
            log.info("collector recovered", collector=name)
            self.failing = False
        self.emit(samples, int(tick_s * 1000))
        self.metrics.collector_samples.labels(name).set(len(samples))
        return True

    def _fail(self, reason: str) -> None:
        self.metrics.collector_errors.labels(self.entry.name).inc()
        self.tracker.failed()
        if not self.failing:
            log.warning("cannot collect", collector=self.entry.name, reason=reason)
            self.failing = True

    def emit(self, samples: list[Sample], ts_ms: int) -> None:
        """Label, stamp, check and hand on one successful cycle's samples, then its markers."""
        target, tracker, add = self.target, self.tracker, self.sink.add
        seen: dict[SeriesKey, Mapping[str, str]] = {}
        low = ts_ms - 1000 * self.limits.max_past_skew_seconds
        high = ts_ms + 1000 * self.limits.max_future_skew_seconds
        for s in samples:
            labels = merge_labels(s.labels, target) if target else dict(s.labels)
            key = series_key(s.name, labels)
            ts = ts_ms if s.ts_ms is None else s.ts_ms
            if key in seen:
                # One sample per series and cycle, as Prometheus keeps one per scrape:
                # a second would collide with the first in storage.
                self.metrics.dropped_samples.labels("duplicate").inc()
                continue
            if key not in tracker:
                reason = self._invalid(s, labels, ts)
                if reason is not None:
                    self._drop_invalid(s.name, reason)
                    continue
            elif s.ts_ms is not None and not low <= ts <= high:
                self._drop_invalid(s.name, "timestamp outside the accepted skew window")
                continue
            seen[key] = labels
            add(s.name, labels, ts, s.value, type=s.type, help=s.help, unit=s.unit)
        self.end_series(tracker.observe(seen), ts_ms)

    def end_series(self, gone: list[tuple[str, Mapping[str, str]]], ts_ms: int) -> None:
        add = self.sink.add
        for name, labels in gone:
            add(name, labels, ts_ms, STALE_NAN)
        if gone:
            self.metrics.staleness_markers.inc(len(gone))

    def _invalid(self, s: Sample, labels: Mapping[str, str], ts: int) -> str | None:
        # Uses the decoder's own checks, so the agent and ingest agree on what is valid.
        desc = SeriesDesc(s.name, dict(labels), s.type, s.help, s.unit)
        batch = MetricBatch(
            "check", 0, [desc], array("I", [0]), array("q", [ts]), array("d", [0.0])
        )
        try:
            validate_batch(
                batch, limits=self.limits, now_ms=ts if s.ts_ms is None else int(time.time() * 1000)
            )
        except DecodeError as exc:
            return str(exc).removeprefix("cannot decode batch: ")
        return None

    def _drop_invalid(self, metric: str, reason: str) -> None:
        self.metrics.dropped_samples.labels("invalid").inc()
        key = (metric[:200], reason[:60])
        if key in self._reported_invalid or len(self._reported_invalid) >= MAX_REPORTED_INVALID:
            return
        self._reported_invalid.add(key)
        log.warning(
            "cannot send series, dropping it",
            collector=self.entry.name,
            metric=metric[:200],
            reason=reason,
        )


Sleep = Callable[[float], Awaitable[None]]


class Scheduler:
    """All collector loops of one agent. ``replace`` swaps the set (reload); ``stop`` ends it."""

    def __init__(
        self,
        sink: SampleSink,
        metrics: AgentMetrics,
        *,
        hostname: str,
        host_labels: Mapping[str, str],
        limits: DecodeLimits,
        wall_clock: Callable[[], float] = time.time,
        on_idle: Callable[[], None] | None = None,
    ) -> None:
        self.sink = sink
        self.on_idle = on_idle
        """Called when the last running collection ends (see the module docstring)."""
        self._running = 0
        self._idle_pending = False
        self.metrics = metrics
        self.host_labels = dict(host_labels)
        self.limits = limits
        self.offset = host_offset(hostname)
        self._clock = wall_clock
        self.runners: dict[str, CollectorRunner] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def replace(self, entries: list[CollectorEntry]) -> None:
        """Stop the current collectors and run ``entries`` instead.

        A collector whose name stays keeps its live series (those it still
        returns are not interrupted); series of removed collectors get
        staleness markers now. Old collector instances are closed.
        """
        old = self.runners
        await self._cancel_all()
        self.runners = {}
        for entry in entries:
            previous = old.pop(entry.name, None)
            self.runners[entry.name] = CollectorRunner(
                entry,
                self.sink,
                self.metrics,
                host_labels=self.host_labels,
                limits=self.limits,
                tracker=previous.tracker if previous else None,
            )
            if previous is not None:
                await _close(previous)
        now_ms = int(self._clock() * 1000)
        for runner in old.values():
            runner.end_series(runner.tracker.end(), now_ms)
            self.metrics.forget_collector(runner.entry.name)
            await _close(runner)
        for name, runner in self.runners.items():
            self._tasks[name] = asyncio.create_task(self._loop(runner), name=f"collector {name}")

    async def _loop(self, runner: CollectorRunner) -> None:
        interval = runner.entry.interval
        while True:
            now = self._clock()
            tick = next_tick(now, interval, self.offset)
            await asyncio.sleep(tick - now)
            self._running += 1
            try:
                await runner.cycle(tick)
            finally:
                self._running -= 1
            if self._running == 0 and not self._idle_pending and self.on_idle is not None:
                # After the cycles woken by the same timer have started (they are
                # queued before this callback), so that they share the flush.
                self._idle_pending = True
                asyncio.get_running_loop().call_soon(self._idle)

    def _idle(self) -> None:
        self._idle_pending = False
        if self._running == 0 and self.on_idle is not None:
            self.on_idle()

    async def _cancel_all(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def stop(self) -> None:
        """Stop every loop, mark every live series stale, close the collectors."""
        await self._cancel_all()
        now_ms = int(self._clock() * 1000)
        for runner in self.runners.values():
            runner.end_series(runner.tracker.end(), now_ms)
            await _close(runner)
        self.runners = {}


async def _close(runner: CollectorRunner) -> None:
    try:
        await runner.entry.collector.close()
    except Exception as exc:  # noqa: BLE001 - closing one collector must not stop the others
        log.warning("cannot close collector", collector=runner.entry.name, reason=str(exc))
