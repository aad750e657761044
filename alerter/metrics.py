"""The alerter's own metrics (``/metrics``): evaluation, windows, events, input."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class AlerterMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.eval_seconds = Histogram(
            "vigil_alerter_group_evaluation_duration_seconds",
            "Time to evaluate one rule group.",
            ["group"],
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.eval_failures = Counter(
            "vigil_alerter_rule_evaluation_failures_total",
            "Rule evaluations that failed.",
            ["group"],
            registry=registry,
        )
        self.series = Gauge(
            "vigil_alerter_series_held", "Series held in the rule windows.", registry=registry
        )
        self.samples = Gauge(
            "vigil_alerter_samples_held", "Samples held in the rule windows.", registry=registry
        )
        self.bytes = Gauge(
            "vigil_alerter_window_bytes", "Bytes of the window sample arrays.", registry=registry
        )
        self.refused = Gauge(
            "vigil_alerter_series_refused",
            "Series refused since start: over max_series.",
            registry=registry,
        )
        self.events = Counter(
            "vigil_alerter_events_published_total",
            "Alert events published.",
            ["status"],
            registry=registry,
        )
        self.publish_errors = Counter(
            "vigil_alerter_publish_errors_total",
            "Publishes (events, series, state) that failed.",
            ["what"],
            registry=registry,
        )
        self.batches = Counter(
            "vigil_alerter_batches_total", "Metric batches consumed.", registry=registry
        )
        self.batches_invalid = Counter(
            "vigil_alerter_batches_invalid_total",
            "Metric batches skipped because they cannot be decoded.",
            ["reason"],
            registry=registry,
        )
        self.history_samples = Counter(
            "vigil_alerter_history_samples_total",
            "Samples read from the database into the rule windows at a warm start.",
            registry=registry,
        )
        self.history_failures = Counter(
            "vigil_alerter_history_failures_total",
            "Reads of the rule windows' history from the database that failed.",
            registry=registry,
        )
        self.warm = Gauge(
            "vigil_alerter_warm",
            "1 once the replay has caught up with the stream.",
            registry=registry,
        )
