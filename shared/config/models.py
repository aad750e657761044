"""Vigil's configuration: the design's ``MonitoringConfig`` plus ``nats``.

One YAML file holds every section; each service reads the sections it needs::

    collectors:     what the agent collects (the design's MetricsCollector)
    storage:        TimescaleDB: connection, retention per resolution, pools
    alerting:       rule files, evaluation, the notifier's Alertmanager config
    visualization:  the web service: listen address, dashboards
    nats:           servers, auth, TLS, subject prefix, stream limits, decode limits
    log:            level and format of every service's log
    agent:          the agent's host identity, batching, publishing and spool
    ingest:         ingest replicas' consumer and writer
    notifier:       notifier replicas' admin port, name, URL guard, replay

Durations are Prometheus durations (``"30s"``, ``"15d"``) or seconds.
Secrets are ``SecretStr`` and may come from ``<field>_file``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, SecretStr, field_validator, model_validator

from shared.config.agent import AgentConfig
from shared.config.alerter import AlerterConfig
from shared.config.base import Section, check_labels
from shared.config.http import HttpServing
from shared.config.ingest import IngestConfig
from shared.config.notifier import NotifierConfig
from shared.duration import Duration, parse_duration
from shared.wire import DecodeLimits, Names

Labels = Annotated[dict[str, str], AfterValidator(check_labels)]

CollectorType = Literal["system", "application", "network", "custom"]

DEFAULT_INTERVALS: dict[str, float] = {
    "system": 10.0,
    "application": 10.0,
    "custom": 10.0,
    "network": 30.0,
}
"""Default collection interval in seconds per collector type."""


class CollectorConfig(Section):
    """One collector: the design's ``MetricsCollector``."""

    type: CollectorType = Field(
        description="Which collector family: system, application, network or custom."
    )
    name: str | None = Field(
        default=None,
        description="Name of this collector instance, unique in the file; defaults to the type. "
        "Needed when two collectors share a type.",
    )
    interval: Duration | None = Field(
        default=None,
        description="Seconds between collections; at least 1. Defaults: 10 for system, application "
        "and custom, 30 for network.",
    )
    targets: list[str] = Field(
        default_factory=list,
        description="What to collect from: URLs to scrape, process names, probe targets, commands. "
        "Meaning depends on the type.",
    )
    labels: Labels = Field(
        default_factory=dict, description="Labels added to every sample of this collector."
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Collector-specific settings, validated by that collector's own model in the agent.",
    )

    @field_validator("interval")
    @classmethod
    def _interval_at_least_one_second(cls, v: float | None) -> float | None:
        if v is not None and v < 1:
            raise ValueError("interval must be at least 1 second")
        return v

    @property
    def effective_interval(self) -> float:
        """The interval in seconds, with the type's default filled in."""
        return self.interval if self.interval is not None else DEFAULT_INTERVALS[self.type]

    @property
    def effective_name(self) -> str:
        return self.name or self.type


class RetentionConfig(Section):
    """How long each resolution is kept."""

    raw: Duration = Field(default=parse_duration("15d"), description="Raw samples.")
    rollup_1m: Duration = Field(
        default=parse_duration("90d"), description="One-minute rollups (samples_1m)."
    )
    rollup_1h: Duration = Field(
        default=parse_duration("3y"), description="One-hour rollups (samples_1h)."
    )

    @model_validator(mode="after")
    def _coarser_kept_longer(self) -> RetentionConfig:
        if not self.raw <= self.rollup_1m <= self.rollup_1h:
            raise ValueError(
                "retention must not shrink with coarser resolution: raw <= rollup_1m <= rollup_1h"
            )
        return self


class StorageConfig(Section):
    """TimescaleDB, written only by ingest."""

    database_url: SecretStr | None = Field(
        default=None,
        description="postgresql:// URL. Unset: VIGIL_DATABASE_URL, else the local development server.",
    )
    retention: RetentionConfig = Field(
        default_factory=RetentionConfig, description="Retention per resolution."
    )
    chunk_interval: Duration = Field(
        default=parse_duration("1d"), description="Hypertable chunk interval of samples."
    )
    compress_after: Duration = Field(
        default=parse_duration("2d"),
        description="Compress raw chunks older than this (timescale license only).",
    )
    rollup_late_window: Duration = Field(
        default=parse_duration("8d"),
        gt=0,
        description="timescale license only: how old a sample may be when it arrives and still be "
        "rolled up (the look-back of the continuous aggregates' refresh policies). Must stay "
        "below retention.raw, or a refresh would reach dropped raw data and delete rollups. "
        "Default: the decoder's 7-day past-skew window plus a day. apache mode rolls up late "
        "data of any age its retention still holds.",
    )
    rollup_interval: Duration = Field(
        default=parse_duration("30s"),
        gt=0,
        description="apache license: how often a replica runs the rollup and retention jobs "
        "(one replica at a time; a run with work left over is followed at once by the next).",
    )
    pool_min: int = Field(default=1, ge=1, description="Smallest connection pool per process.")
    pool_max: int = Field(default=8, ge=1, description="Largest connection pool per process.")

    @model_validator(mode="after")
    def _pool_bounds(self) -> StorageConfig:
        if self.pool_min > self.pool_max:
            raise ValueError("pool_min must not exceed pool_max")
        return self


class AlertingConfig(Section):
    """Rules for the alerter; routing for the notifier."""

    rule_files: list[str] = Field(
        default_factory=list,
        description="Globs of Prometheus rule files, relative to the config file's folder.",
    )
    evaluation_interval: Duration = Field(
        default=parse_duration("15s"),
        description="Fallback evaluation tick; rules are otherwise evaluated as data arrives.",
    )
    external_url: str = Field(
        default="", description="Base URL of Vigil's UI, used in generatorURL and links."
    )
    external_labels: Labels = Field(
        default_factory=dict, description="Labels added to every alert."
    )
    alertmanager_config: str | dict[str, Any] | None = Field(
        default=None,
        description="The notifier's configuration in Alertmanager's format: a path (relative to the "
        "config file's folder) or the configuration inline as a mapping.",
    )
    resend_delay: Duration = Field(
        default=parse_duration("1m"), description="How often active alerts are re-sent."
    )


class VisualizationConfig(HttpServing):
    """The web service (the design's ``DashboardConfig``)."""

    listen_address: str = Field(
        default="127.0.0.1:9090", description="host:port of the HTTP API and UI."
    )
    external_url: str = Field(default="", description="URL under which users reach the UI.")
    dashboards: list[str] = Field(
        default_factory=list, description="Globs of dashboard definition files (YAML or JSON)."
    )
    refresh_interval: Duration = Field(
        default=parse_duration("2s"), description="Live panel refresh."
    )
    default_range: Duration = Field(
        default=parse_duration("1h"), description="Time range of a dashboard opened without one."
    )
    query_timeout: Duration = Field(
        default=parse_duration("2m"),
        gt=0,
        description="Longest a PromQL query may run (Prometheus' --query.timeout); a request's "
        "timeout parameter can only shorten it.",
    )
    query_max_samples: int = Field(
        default=50_000_000,
        ge=1,
        description="Most samples one query may hold in memory (Prometheus' --query.max-samples).",
    )
    query_lookback_delta: Duration = Field(
        default=parse_duration("5m"),
        gt=0,
        description="How far back an instant selector looks for a sample (--query.lookback-delta).",
    )
    query_rollups: bool = Field(
        default=False,
        description="Answer max/min/sum/count/avg_over_time from the 1m/1h rollups when range, "
        "step and end are whole buckets (web/storage_tsdb.py says exactly when).",
    )
    sla_objective: float = Field(
        default=0.999,
        gt=0,
        lt=1,
        description="SLA report: the availability objective the error budget is measured "
        "against (a fraction; ?objective= overrides it per request). docs/reports.md.",
    )
    sla_max_gap: Duration = Field(
        default=parse_duration("5m"),
        gt=0,
        description="SLA report: how long one sample counts for at most; longer silences "
        "are gaps without data (?max_gap= overrides it per request).",
    )
    capacity_lookback: Duration = Field(
        default=parse_duration("7d"),
        gt=0,
        description="Capacity report: how far back the linear trend is fitted (?lookback= "
        "overrides it per request).",
    )

    @field_validator("listen_address")
    @classmethod
    def _host_port(cls, v: str) -> str:
        _host, sep, port = v.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError("must be host:port with a port 0-65535")
        return v


class TLSConfig(Section):
    """TLS to NATS. Paths are read at connect time."""

    ca_file: Path | None = Field(
        default=None, description="CA bundle that signs the server certificate."
    )
    cert_file: Path | None = Field(default=None, description="Client certificate (mutual TLS).")
    key_file: Path | None = Field(default=None, description="Client key (mutual TLS).")
    server_name: str | None = Field(
        default=None, description="Name to verify instead of the URL's host."
    )

    @model_validator(mode="after")
    def _cert_and_key_together(self) -> TLSConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        return self


class StreamConfig(Section):
    """Limits of one JetStream stream (limits retention, file storage)."""

    max_age: Duration = Field(description="Messages older than this are removed.")
    max_bytes: int = Field(description="Size cap of the stream in bytes; -1 for none.", ge=-1)
    discard: Literal["old", "new"] = Field(
        default="old",
        description="At the cap: drop the oldest messages (old) or refuse new ones (new).",
    )
    replicas: int = Field(default=1, ge=1, le=5, description="JetStream replicas (cluster only).")
    duplicate_window: Duration = Field(
        default=parse_duration("2m"), description="Window in which Nats-Msg-Id dedups."
    )


def _metrics_stream() -> StreamConfig:
    # Discard old: when ingest lags past the cap (a long database outage) the
    # oldest samples go first, while publishers and the alerter keep flowing;
    # alerting must not stop because storage is behind.
    return StreamConfig(max_age=86400.0, max_bytes=10 * 1024**3, discard="old")


def _alerts_stream() -> StreamConfig:
    return StreamConfig(max_age=7 * 86400.0, max_bytes=1024**3, discard="old")


def _notifications_stream() -> StreamConfig:
    return StreamConfig(max_age=7 * 86400.0, max_bytes=1024**3, discard="old")


def _silences_stream() -> StreamConfig:
    return StreamConfig(max_age=30 * 86400.0, max_bytes=256 * 1024**2, discard="old")


class StreamsConfig(Section):
    """The contract's streams."""

    metrics: StreamConfig = Field(default_factory=_metrics_stream, description="Metric batches.")
    alerts: StreamConfig = Field(default_factory=_alerts_stream, description="Alert events.")
    notifications: StreamConfig = Field(
        default_factory=_notifications_stream, description="Delivery results."
    )
    silences: StreamConfig = Field(default_factory=_silences_stream, description="Silence history.")


class NatsConfig(Section):
    """How every service reaches NATS, and the names and limits it uses there."""

    servers: list[str] = Field(
        default_factory=lambda: ["nats://127.0.0.1:4222"],
        min_length=1,
        description="Server URLs (nats:// or tls://).",
    )
    prefix: str = Field(
        default="vigil", description="Prefix of every subject, stream and bucket name."
    )
    name: str | None = Field(
        default=None, description="Client connection name; defaults to the service."
    )
    user: str | None = Field(default=None, description="User for user/password auth.")
    password: SecretStr | None = Field(default=None, description="Password for user/password auth.")
    token: SecretStr | None = Field(default=None, description="Token auth.")
    nkey_seed_file: Path | None = Field(default=None, description="File with an NKey seed (SU...).")
    creds_file: Path | None = Field(default=None, description="A .creds file (JWT + NKey seed).")
    tls: TLSConfig | None = Field(
        default=None, description="TLS settings; tls:// URLs use system CAs without it."
    )
    inbox_prefix: str | None = Field(
        default=None,
        description="Inbox prefix for replies (JetStream acks); agents enrolled per host must use "
        "the prefix their credentials allow.",
    )
    connect_timeout: Duration = Field(
        default=parse_duration("5s"), description="Timeout of one connection attempt."
    )
    reconnect_wait: Duration = Field(
        default=parse_duration("1s"), description="Pause between reconnect attempts."
    )
    streams: StreamsConfig = Field(default_factory=StreamsConfig, description="Stream limits.")
    kv_history: int = Field(default=5, ge=1, le=64, description="Revisions kept per KV key.")
    limits: DecodeLimits = Field(
        default_factory=DecodeLimits, description="Limits on decoded messages."
    )

    @field_validator("prefix")
    @classmethod
    def _prefix_is_token(cls, v: str) -> str:
        Names(v)  # one rule for what a prefix may be: the wire module's
        return v

    @field_validator("servers")
    @classmethod
    def _urls(cls, v: list[str]) -> list[str]:
        for url in v:
            if "://" not in url:
                raise ValueError(f"server {url!r} needs a scheme, e.g. nats://host:4222")
        return v

    @model_validator(mode="after")
    def _one_auth_method(self) -> NatsConfig:
        if self.password is not None and self.user is None:
            raise ValueError("password needs user")
        methods = [
            name
            for name, set_ in (
                ("user/password", self.user is not None),
                ("token", self.token is not None),
                ("nkey_seed_file", self.nkey_seed_file is not None),
                ("creds_file", self.creds_file is not None),
            )
            if set_
        ]
        if len(methods) > 1:
            raise ValueError(f"choose one auth method, not {' and '.join(methods)}")
        return self


class LogConfig(Section):
    """Logging of every service."""

    level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Least severity logged."
    )
    format: Literal["auto", "json", "console"] = Field(
        default="auto", description="auto: console on a terminal, JSON otherwise."
    )


def _default_collectors() -> list[CollectorConfig]:
    return [CollectorConfig(type="system")]


class VigilConfig(Section):
    """The whole file: the design's ``MonitoringConfig`` plus ``nats`` and ``log``."""

    collectors: list[CollectorConfig] = Field(
        default_factory=_default_collectors,
        description="What the agent collects; by default the host's system metrics.",
    )
    storage: StorageConfig = Field(default_factory=StorageConfig, description="TimescaleDB.")
    alerting: AlertingConfig = Field(
        default_factory=AlertingConfig, description="Rules and notifications."
    )
    visualization: VisualizationConfig = Field(
        default_factory=VisualizationConfig, description="Web service."
    )
    nats: NatsConfig = Field(default_factory=NatsConfig, description="The message bus.")
    log: LogConfig = Field(default_factory=LogConfig, description="Logging.")
    agent: AgentConfig = Field(default_factory=AgentConfig, description="The agent's pipeline.")
    ingest: IngestConfig = Field(default_factory=IngestConfig, description="Ingest replicas.")
    notifier: NotifierConfig = Field(
        default_factory=NotifierConfig, description="Notifier replicas."
    )
    alerter: AlerterConfig = Field(default_factory=AlerterConfig, description="Alerter replicas.")

    @field_validator("collectors")
    @classmethod
    def _unique_names(cls, v: list[CollectorConfig]) -> list[CollectorConfig]:
        seen: set[str] = set()
        for c in v:
            if c.effective_name in seen:
                raise ValueError(
                    f"two collectors are named {c.effective_name!r}: give each a distinct name"
                )
            seen.add(c.effective_name)
        return v
