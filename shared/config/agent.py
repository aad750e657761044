"""The ``agent`` section: how the agent on each host batches, publishes and buffers.

What it collects is the ``collectors`` section; this one is about the host
and the pipeline behind the collectors.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from shared.config.base import Section
from shared.duration import Duration, parse_duration


class AgentConfig(Section):
    """The agent's host identity and publishing pipeline."""

    hostname: str | None = Field(
        default=None, description="Host name this agent speaks for; defaults to the system's."
    )
    labels: dict[str, str] = Field(
        default_factory=dict, description="Labels added to every sample of this host."
    )
    spool_dir: Path | None = Field(
        default=None,
        description="Folder of the on-disk buffer used while NATS is unreachable; "
        "defaults to the state folder of the user running the agent.",
    )
    spool_max_bytes: int = Field(
        default=256 * 1024**2, ge=1024**2, description="Cap of the spool; past it the oldest data goes."
    )
    flush_interval: Duration = Field(
        default=parse_duration("1s"), description="A batch is sent at least this often."
    )
    batch_max_samples: int = Field(
        default=10_000, ge=1, description="A batch is sent when it holds this many samples."
    )
    max_inflight: int = Field(
        default=32, ge=1, description="Batches published and not yet acknowledged, at most."
    )
    listen_address: str | None = Field(
        default=None, description="host:port for the agent's own /metrics and /healthz; unset: none."
    )
