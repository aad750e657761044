"""The notifier's own metrics (names after Alertmanager's, under ``vigil_notifier_``).

Label sets are bounded: ``integration`` is a type (webhook, slack, ...),
never a URL or receiver name chosen by users.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class NotifierMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.alerts_received = Counter(
            "vigil_notifier_alerts_received_total",
            "Alert events taken from the alerts stream, by status.",
            ["status"],
            registry=registry,
        )
        self.alerts_invalid = Counter(
            "vigil_notifier_alerts_invalid_total",
            "Messages on the alerts stream that could not be decoded.",
            registry=registry,
        )
        self.notifications = Counter(
            "vigil_notifier_notifications_total",
            "Notifications delivered or failed for good, by integration type.",
            ["integration"],
            registry=registry,
        )
        self.notifications_failed = Counter(
            "vigil_notifier_notifications_failed_total",
            "Notifications that failed after every attempt, by integration type.",
            ["integration"],
            registry=registry,
        )
        self.requests = Counter(
            "vigil_notifier_notification_requests_total",
            "Delivery attempts, by integration type.",
            ["integration"],
            registry=registry,
        )
        self.requests_failed = Counter(
            "vigil_notifier_notification_requests_failed_total",
            "Failed delivery attempts, by integration type.",
            ["integration"],
            registry=registry,
        )
        self.latency = Histogram(
            "vigil_notifier_notification_latency_seconds",
            "Duration of delivery attempts, by integration type.",
            ["integration"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )
        self.groups = Gauge(
            "vigil_notifier_aggregation_groups",
            "Aggregation groups held in memory.",
            registry=registry,
        )
        self.alerts = Gauge("vigil_notifier_alerts", "Alerts held in memory.", registry=registry)
        self.silences = Gauge(
            "vigil_notifier_silences", "Silences known (any state).", registry=registry
        )
        self.nflog_conflicts = Counter(
            "vigil_notifier_nflog_conflicts_total",
            "Deliveries left to another replica after a lost compare-and-set.",
            registry=registry,
        )
