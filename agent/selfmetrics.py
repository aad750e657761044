"""The agent's own ``vigil_agent_*`` metrics, and the built-in collector that ships them.

One ``AgentMetrics`` per ``App``, in its own prometheus-client registry, so
several agents can live in one test process. The admin server's ``/metrics``
serves that registry; ``SelfCollector`` reads the same registry every
``agent.self_metrics_interval`` and returns it as ordinary samples, so the
agent's health travels in the metrics stream like any host metric ("we
monitor Vigil with Vigil"). Label sets are bounded: ``collector`` takes the
configured collector names, ``reason`` a few fixed words.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge

from agent.collectors.base import Sample
from shared.wire import MetricType


@dataclass
class AgentMetrics:
    registry: CollectorRegistry = field(
        default_factory=lambda: CollectorRegistry(auto_describe=True)
    )

    def __post_init__(self) -> None:
        r = self.registry
        self.batches_published = Counter(
            "vigil_agent_batches_published", "Batches acknowledged by JetStream.", registry=r
        )
        self.samples_published = Counter(
            "vigil_agent_samples_published", "Samples in acknowledged batches.", registry=r
        )
        self.duplicate_acks = Counter(
            "vigil_agent_duplicate_acks",
            "Batches JetStream acknowledged as duplicates (a retry inside its duplicate window).",
            registry=r,
        )
        self.publish_errors = Counter(
            "vigil_agent_publish_errors",
            "Publishes that failed or were not acknowledged in time; the batch was spooled.",
            registry=r,
        )
        self.spool_bytes = Gauge(
            "vigil_agent_spool_bytes",
            "Bytes of batches in the disk spool not yet acknowledged.",
            registry=r,
        )
        self.spooled_batches = Counter(
            "vigil_agent_spooled_batches", "Batches written to the disk spool.", registry=r
        )
        self.replayed_batches = Counter(
            "vigil_agent_replayed_batches",
            "Spooled batches read back and acknowledged by JetStream.",
            registry=r,
        )
        self.dropped_samples = Counter(
            "vigil_agent_dropped_samples",
            "Samples that will never be published, by reason: spool_full (the spool's cap "
            "dropped its oldest data), spool_error (the spool could not be written), rejected (NATS refused the batch for good), invalid "
            "(a name or label breaks the wire rules).",
            ["reason"],
            registry=r,
        )
        for reason in ("spool_full", "spool_error", "rejected", "invalid", "duplicate"):
            self.dropped_samples.labels(reason)  # present at 0, so rate() works from the start
        self.spool_corrupt_bytes = Counter(
            "vigil_agent_spool_corrupt_bytes",
            "Spool bytes skipped because a record failed its length or CRC check.",
            registry=r,
        )
        self.collector_duration = Gauge(
            "vigil_agent_collector_duration_seconds",
            "Duration of the collector's last cycle.",
            ["collector"],
            registry=r,
        )
        self.collector_errors = Counter(
            "vigil_agent_collector_errors",
            "Cycles of the collector that failed or timed out.",
            ["collector"],
            registry=r,
        )
        self.collector_samples = Gauge(
            "vigil_agent_collector_samples",
            "Samples the collector returned in its last successful cycle.",
            ["collector"],
            registry=r,
        )
        self.staleness_markers = Counter(
            "vigil_agent_staleness_markers",
            "Staleness markers sent for series that disappeared or ended.",
            registry=r,
        )
        self.inflight = Gauge(
            "vigil_agent_inflight_batches", "Batches published, ack not yet received.", registry=r
        )

    def forget_collector(self, name: str) -> None:
        """Drop the per-collector series of a collector that was removed by a reload."""
        for metric in (self.collector_duration, self.collector_errors, self.collector_samples):
            with contextlib.suppress(KeyError):
                metric.remove(name)


_TYPES: dict[str, MetricType] = {"counter": "counter", "gauge": "gauge"}


class SelfCollector:
    """A built-in collector returning the agent's own metrics from ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    async def collect(self) -> list[Sample]:
        out: list[Sample] = []
        for family in self._registry.collect():
            mtype = _TYPES.get(family.type, "unknown")
            for s in family.samples:
                if s.name.endswith("_created"):
                    continue  # prometheus-client's creation time; not a Vigil series
                out.append(
                    Sample(
                        s.name,
                        s.labels,
                        float(s.value),
                        type=mtype,
                        help=family.documentation,
                    )
                )
        return out

    async def close(self) -> None:
        return None
