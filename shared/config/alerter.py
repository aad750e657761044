"""The ``alerter`` section: the alerter process' own settings.

Rules, evaluation interval, external URL and labels and resend delay are in
``alerting``; this section is about the process: its admin port, memory cap,
warm-up and ``up`` synthesis.
"""

from __future__ import annotations

from pydantic import Field

from shared.config.base import Section
from shared.duration import Duration, parse_duration


class AlerterConfig(Section):
    """One alerter replica (replicas side by side publish one event stream)."""

    listen_address: str = Field(
        default="127.0.0.1:9094",
        description="host:port of /metrics, /healthz, /readyz and /-/reload (port 0: any).",
    )
    max_series: int = Field(
        default=100_000,
        ge=1,
        description="Cap on series held in the rule windows; new series past it are refused "
        "and counted in vigil_alerter_series_refused_total.",
    )
    max_replay: Duration = Field(
        default=parse_duration("6h"),
        description="Longest history replayed from the metrics stream at start-up; rules whose "
        "window is longer are evaluated with what the stream and this cap allow.",
    )
    debounce: Duration = Field(
        default=parse_duration("25ms"),
        description="How long a group waits after a batch carrying one of its series before "
        "evaluating, so batches arriving together cause one evaluation.",
    )
    eval_resolution: Duration = Field(
        default=parse_duration("1s"),
        description="Data-driven evaluations happen at the batch's newest timestamp rounded up to "
        "a multiple of this, so replicas that group batches differently still evaluate at the "
        "same instants and publish identical events; 1ms evaluates at the exact data time.",
    )
    up_timeout: Duration = Field(
        default=parse_duration("30s"),
        description="A known agent is up (up=1) while its last batch is newer than this, "
        "else down (up=0); default three times the default collector interval.",
    )
    agents_write_interval: Duration = Field(
        default=parse_duration("30s"),
        description="At most one write per host of its last-seen time to the agents KV bucket.",
    )
    status_write_interval: Duration = Field(
        default=parse_duration("5s"),
        gt=0,
        description="At most one write per rule group of its rules' health and evaluation "
        "times (the document /api/v1/rules shows) to the alert_state KV bucket; the first "
        "evaluation after a start or a rules change, and one that changes a rule's health, "
        "are written at once.",
    )
    table_cache_series: int = Field(
        default=500_000,
        ge=0,
        description="Series held in the cache of series tables seen before (agents resend the "
        "same table with every batch, so a repeat skips decoding and validating it, at the "
        "replay and live). About 1 KiB each; keep it above hosts x series per host, or the "
        "least recently used tables keep being dropped. 0 turns it off.",
    )
    history_from_database: bool = Field(
        default=True,
        description="At start-up, read from the database (storage.database_url or "
        "VIGIL_DATABASE_URL) the part of the rules' windows older than the metrics stream "
        "holds; without a database, or while it fails, those rules wait until the stream "
        "alone covers their window.",
    )
    history_timeout: Duration = Field(
        default=parse_duration("30s"),
        gt=0,
        description="Longest one read of the rules' history from the database may take.",
    )
    history_retry: Duration = Field(
        default=parse_duration("30s"),
        gt=0,
        description="Wait between reads of the rules' history while the database fails "
        "(until it answers or the stream alone covers the windows).",
    )
    self_host: str = Field(
        default="vigil-alerter",
        description="Host token of the subject the alerter publishes ALERTS, ALERTS_FOR_STATE and "
        "recording-rule results on (<prefix>.metrics.<self_host>); ingest sets host=<self_host> "
        "on them, so a result's own host label travels as exported_host.",
    )
