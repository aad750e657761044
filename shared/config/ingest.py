"""The ``ingest`` section: how ingest replicas consume the metrics stream and write."""

from __future__ import annotations

from pydantic import Field

from shared.config.base import Section
from shared.duration import Duration, parse_duration


class IngestConfig(Section):
    """Consumer and writer settings of each ingest replica."""

    consumer: str = Field(
        default="ingest", description="Durable pull consumer name, shared by all replicas."
    )
    fetch_batch: int = Field(
        default=256,
        ge=1,
        description="Messages fetched (and written in one transaction) at a time.",
    )
    fetch_timeout: Duration = Field(
        default=parse_duration("1s"), description="How long one fetch waits for messages."
    )
    series_cache_size: int = Field(
        default=1_000_000, ge=1000, description="Series ids kept in memory per replica."
    )
    table_cache_series: int = Field(
        default=500_000,
        ge=0,
        description="Series held, per replica, in the caches of series tables seen before "
        "(validated tables and their series ids per host; agents resend the same table with "
        "every batch, so a repeat skips decoding and lookups). About 1 KiB each; keep it above "
        "hosts x series per host, or the least recently used tables keep being dropped. "
        "0 turns them off.",
    )
    listen_address: str = Field(
        default="127.0.0.1:9464", description="host:port of /metrics and /healthz (port 0: any)."
    )
    workers: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Fetch-and-write loops per replica, each with its own database connection; "
        "two let decoding overlap the database's work.",
    )
    ack_wait: Duration = Field(
        default=parse_duration("30s"),
        description="How long NATS waits for an ack before redelivering a message; long "
        "writes send in-progress signals well within it.",
    )
    max_ack_pending: int = Field(
        default=20_000,
        ge=1,
        description="Most unacknowledged messages the consumer hands out across all replicas.",
    )
    retry_initial: Duration = Field(
        default=parse_duration("200ms"),
        description="First back-off after a database error (NAK delay and pause before the next fetch).",
    )
    retry_max: Duration = Field(
        default=parse_duration("10s"), description="Longest back-off after database errors."
    )
    lag_interval: Duration = Field(
        default=parse_duration("5s"), description="How often consumer lag is read for /metrics."
    )
    history: bool = Field(
        default=True,
        description="Also consume alert events, alert status, notification results and "
        "silence events into the history tables.",
    )
