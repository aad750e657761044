"""The ``notifier`` section: the notifier process' own settings.

Routing, receivers and inhibition are Alertmanager's configuration, named by
``alerting.alertmanager_config``; this section is about the process.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from shared.config.base import Section
from shared.config.http import (
    AUTH_DESCRIPTION,
    CORS_DESCRIPTION,
    TLS_DESCRIPTION,
    HttpAuthConfig,
    HttpTLSConfig,
    check_origins,
)
from shared.duration import Duration, parse_duration


class NotifierConfig(Section):
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
    auth: HttpAuthConfig = Field(default_factory=HttpAuthConfig, description=AUTH_DESCRIPTION)
    tls: HttpTLSConfig | None = Field(default=None, description=TLS_DESCRIPTION)
    cors_origins: Annotated[list[str], AfterValidator(check_origins)] = Field(
        default_factory=list, description=CORS_DESCRIPTION
    )
