"""The ``notifier`` section: the notifier process' own settings.

Routing, receivers and inhibition are Alertmanager's configuration, named by
``alerting.alertmanager_config``; this section is about the process.
"""

from __future__ import annotations

from pydantic import Field

from shared.config.http import HttpServing
from shared.duration import Duration, parse_duration


class NotifierConfig(HttpServing):
    """One notifier replica."""

    listen_address: str = Field(
        default="127.0.0.1:9093",
        description="host:port of /metrics, /healthz and /-/reload (port 0: any).",
    )
    replica: str | None = Field(
        default=None,
        description="This replica's name, unique among replicas; default: host name and process id.",
    )
    allow_networks: list[str] = Field(
        default_factory=list,
        description="CIDRs and host names the outgoing-URL guard lets through although they "
        "are link-local or metadata addresses (refused by default).",
    )
    replay: Duration = Field(
        default=parse_duration("1h"),
        description="How far back a start re-reads the alerts stream to rebuild its groups.",
    )
