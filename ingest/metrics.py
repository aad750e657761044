"""Ingest's own metrics for ``/metrics``: bounded label sets, one registry per ``App``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class IngestMetrics:
    """The counters and gauges an ingest replica exposes (``vigil_ingest_*``)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.samples = Counter(
            "vigil_ingest_samples", "Samples committed to the database.", registry=registry
        )
        self.batches = Counter(
            "vigil_ingest_batches", "Metric batches committed to the database.", registry=registry
        )
        self.write_seconds = Histogram(
            "vigil_ingest_write_seconds",
            "Time to write one fetch (series resolution, COPY, commit).",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "vigil_ingest_consumer_lag",
            "Messages in the metrics stream not yet delivered to the ingest consumer.",
            registry=registry,
        )
        self.rejects = Counter(
            "vigil_ingest_rejects",
            "Messages rejected (terminated and recorded in the rejects table), by reason.",
            ["reason"],
            registry=registry,
        )
        self.cache_hits = Counter(
            "vigil_ingest_series_cache_hits", "Series id lookups served by the cache.",
            registry=registry,
        )  # fmt: skip
        self.cache_misses = Counter(
            "vigil_ingest_series_cache_misses",
            "Series id lookups that went to the database.",
            registry=registry,
        )
        self.write_errors = Counter(
            "vigil_ingest_write_errors",
            "Fetches not written (negatively acknowledged for redelivery), by kind.",
            ["kind"],
            registry=registry,
        )
        self.history = Counter(
            "vigil_ingest_history_messages",
            "Alert, notification, silence and alert status messages stored, by stream.",
            ["kind"],
            registry=registry,
        )
