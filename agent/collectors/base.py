"""The seam between collectors and the agent's pipeline.

A collector is built once from its ``CollectorConfig`` (the design's
``MetricsCollector``: type, interval, targets, labels, options) and then
asked, every ``interval`` seconds, for the samples it sees *now*. The
scheduler, not the collector, owns everything around that call:

- timestamps: a sample without ``ts_ms`` is stamped with the cycle's time;
- labels: the collector's ``labels`` and the agent's host labels are added
  by the scheduler (a collector's own labels win over neither: conflicts are
  resolved by the scheduler as Prometheus' ``honor_labels: false`` does);
- staleness: a series returned in one cycle and missing in the next gets
  Prometheus' staleness marker, so a collector simply stops returning it;
- errors: an exception from ``collect`` is logged once, counted, and the
  cycle's series of this collector are left alone (not marked stale) until
  it recovers; a ``collect`` that outlives its interval is cancelled.

Collectors must not block the event loop: blocking reads (psutil, /proc,
subprocesses) run in a thread via ``asyncio.to_thread`` or are async.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from shared.config.models import CollectorConfig
from shared.wire import MetricType


@dataclass(slots=True)
class Sample:
    """One observation. ``name`` and ``labels`` follow Prometheus' syntax; ``value`` any float64."""

    name: str
    labels: Mapping[str, str]
    value: float
    type: MetricType | None = None
    help: str | None = None
    unit: str | None = None
    ts_ms: int | None = None


class Collector(Protocol):
    """What the scheduler runs. One instance per configured collector; not shared across tasks."""

    async def collect(self) -> list[Sample]:
        """The samples observed now. Raise to report a failed cycle (the scheduler logs it)."""
        ...

    async def close(self) -> None:
        """Release sockets, subprocesses, listeners. Called once, at agent stop or reload."""
        ...


CollectorFactory = Callable[[CollectorConfig], Collector]
"""Builds a collector from its config; raises ``ValueError`` naming the bad option."""


@dataclass
class Registry:
    """Collector factories by kind. Config ``type`` plus ``options.kind`` select one."""

    factories: dict[str, CollectorFactory] = field(default_factory=dict)

    def register(self, kind: str, factory: CollectorFactory) -> None:
        if kind in self.factories:
            raise ValueError(f"BUG: collector kind {kind!r} registered twice")
        self.factories[kind] = factory
