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
        default=256, ge=1, description="Messages fetched (and written in one transaction) at a time."
    )
    fetch_timeout: Duration = Field(
        default=parse_duration("1s"), description="How long one fetch waits for messages."
    )
    series_cache_size: int = Field(
        default=1_000_000, ge=1000, description="Series ids kept in memory per replica."
    )
    listen_address: str = Field(
        default="127.0.0.1:9464", description="host:port of /metrics and /healthz (port 0: any)."
    )
