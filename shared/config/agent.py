"""The ``agent`` section: how the agent on each host batches, publishes and buffers.

What it collects is the ``collectors`` section; this one is about the host
and the pipeline behind the collectors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field, field_validator

from shared import hosttoken
from shared.config.base import Section, check_labels
from shared.duration import Duration, parse_duration


class AgentConfig(Section):
    """The agent's host identity and publishing pipeline."""

    hostname: str | None = Field(
        default=None, description="Host name this agent speaks for; defaults to the system's."
    )
    labels: Annotated[dict[str, str], AfterValidator(check_labels)] = Field(
        default_factory=dict, description="Labels added to every sample of this host."
    )
    spool_dir: Path | None = Field(
        default=None,
        description="Folder of the on-disk buffer used while NATS is unreachable; "
        "defaults to $STATE_DIRECTORY (systemd), else ~/.local/state/vigil/agent.",
    )
    spool_max_bytes: int = Field(
        default=256 * 1024**2,
        ge=1024**2,
        description="Cap of the spool; past it the oldest data goes.",
    )
    spool_fsync_interval: Duration = Field(
        default=parse_duration("1s"),
        description="Spooled data is fsynced at least this often; a power loss can lose this much.",
    )
    flush_interval: Duration = Field(
        default=parse_duration("1s"),
        description="A batch is sent at least this often; also as soon as no collection is "
        "running (the samples of collectors that tick together leave in one batch at once).",
    )
    batch_max_samples: int = Field(
        default=10_000, ge=1, description="A batch is sent when it holds this many samples."
    )
    batch_max_bytes: int = Field(
        default=512 * 1024,
        ge=4096,
        description="A batch is sent when its encoded size nears this; keep it under the NATS "
        "server's max_payload (1 MiB by default) and nats.limits.max_batch_bytes.",
    )
    max_inflight: int = Field(
        default=32, ge=1, description="Batches published and not yet acknowledged, at most."
    )
    publish_timeout: Duration = Field(
        default=parse_duration("5s"),
        description="A batch not acknowledged within this goes to the spool and is retried.",
    )
    self_metrics_interval: Duration = Field(
        default=parse_duration("10s"),
        description="How often the agent's own vigil_agent_* metrics are sent with the rest.",
    )
    listen_address: str | None = Field(
        default=None,
        description="host:port for the agent's own /metrics and /healthz; unset: none.",
    )

    @field_validator("hostname")
    @classmethod
    def _hostname_is_a_subject_token(cls, v: str | None) -> str | None:
        if v is not None:
            hosttoken.encode(v)  # ValueError for an empty or unencodable name
        return v

    @field_validator("flush_interval", "self_metrics_interval", "publish_timeout")
    @classmethod
    def _positive(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("must be more than 0 seconds")
        return v

    @field_validator("listen_address")
    @classmethod
    def _host_port(cls, v: str | None) -> str | None:
        if v is not None:
            _host, sep, port = v.rpartition(":")
            if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
                raise ValueError("must be host:port with a port 0-65535")
        return v
