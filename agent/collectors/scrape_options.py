"""Options of the ``scrape`` collector: Prometheus' scrape_config fields, names and defaults.

Everything here is validated when the collector is built, so a typo or an
unreadable certificate is a config error naming the field, never a failing
scrape. Secrets are ``SecretStr``; ``password_file`` and
``bearer_token_file`` are read at build time (``shared.config.base.Section``).
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from agent.collectors.scrape_relabel import RelabelConfig
from shared.config.base import Section
from shared.duration import Duration

Protocol_ = Literal["OpenMetricsText1.0.0", "OpenMetricsText0.0.1", "PrometheusText0.0.4"]
MEDIA_TYPES: dict[str, str] = {
    "OpenMetricsText1.0.0": "application/openmetrics-text;version=1.0.0",
    "OpenMetricsText0.0.1": "application/openmetrics-text;version=0.0.1",
    "PrometheusText0.0.4": "text/plain;version=0.0.4",
}
DEFAULT_PROTOCOLS: tuple[Protocol_, ...] = (
    "OpenMetricsText1.0.0",
    "OpenMetricsText0.0.1",
    "PrometheusText0.0.4",
)
DEFAULT_TIMEOUT = 10.0
DEFAULT_BODY_SIZE_LIMIT = 64 * 1024 * 1024


class BasicAuth(Section):
    """HTTP basic authentication; the password may come from ``password_file``."""

    username: str = Field(description="User name.")
    password: SecretStr | None = Field(default=None, description="Password.")


class ScrapeTLS(Section):
    """TLS for https targets, as Prometheus' ``tls_config``."""

    ca_file: Path | None = Field(
        default=None,
        description="CA bundle that signs the targets' certificates (default: system).",
    )
    cert_file: Path | None = Field(default=None, description="Client certificate (mutual TLS).")
    key_file: Path | None = Field(default=None, description="Client key (mutual TLS).")
    server_name: str | None = Field(
        default=None, description="Name sent in SNI and verified instead of the target's host."
    )
    insecure_skip_verify: bool = Field(
        default=False, description="Accept any certificate and host name (testing only)."
    )

    @model_validator(mode="after")
    def _cert_and_key_together(self) -> ScrapeTLS:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        return self


class ScrapeOptions(Section):
    """``options`` of an ``application`` collector of kind ``scrape``; Prometheus' names and defaults."""

    kind: Literal["scrape"] | None = Field(default=None, description="Registry key.")
    job: str | None = Field(
        default=None, description="Value of the job label; default: the collector's name."
    )
    timeout: Duration | None = Field(
        default=None,
        description="Per-target scrape timeout; default min(10s, interval); at most the interval.",
    )
    scheme: Literal["http", "https"] = Field(
        default="http", description="Scheme for targets given as host:port."
    )
    metrics_path: str = Field(
        default="/metrics", description="Path (and query) for targets given as host:port."
    )
    honor_labels: bool = Field(
        default=False,
        description="If true, a scraped job or instance label wins over the target's; if false "
        "the target's wins and the scraped one is kept as exported_<name>.",
    )
    honor_timestamps: bool = Field(
        default=True, description="Keep timestamps given in the page (else: the cycle's time)."
    )
    metric_relabel_configs: list[RelabelConfig] = Field(
        default_factory=list, description="Prometheus relabel rules applied to every sample."
    )
    sample_limit: int = Field(
        default=0,
        ge=0,
        description="Most samples per target after relabeling; more fails the scrape (up 0). "
        "0: no limit.",
    )
    body_size_limit: int = Field(
        default=DEFAULT_BODY_SIZE_LIMIT,
        gt=0,
        description="Largest page in bytes (after gzip decoding); larger fails the scrape.",
    )
    enable_compression: bool = Field(default=True, description="Ask for gzip-encoded pages.")
    scrape_protocols: list[Protocol_] = Field(
        default_factory=lambda: list(DEFAULT_PROTOCOLS),
        min_length=1,
        description="Formats asked for in Accept, most preferred first (Prometheus' names).",
    )
    basic_auth: BasicAuth | None = Field(default=None, description="HTTP basic authentication.")
    bearer_token: SecretStr | None = Field(
        default=None, description="Sent as 'Authorization: Bearer <token>'; or bearer_token_file."
    )
    tls_config: ScrapeTLS | None = Field(default=None, description="TLS for https targets.")
    target_files: list[str] = Field(
        default_factory=list,
        description="Glob patterns of Prometheus file_sd files (YAML or JSON) adding targets; "
        "their labels become target labels. Re-read when they change.",
    )

    @field_validator("metrics_path")
    @classmethod
    def _absolute_path(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError("must start with /")
        return v

    @model_validator(mode="after")
    def _one_authorization(self) -> ScrapeOptions:
        if self.basic_auth is not None and self.bearer_token is not None:
            raise ValueError("give basic_auth or bearer_token, not both")
        return self


def ssl_context(tls: ScrapeTLS | None, name: str) -> ssl.SSLContext:
    """The client context for https targets; ``ValueError`` naming collector ``name`` if a file fails."""
    try:
        context = ssl.create_default_context(
            cafile=str(tls.ca_file) if tls and tls.ca_file else None
        )
        if tls is not None and tls.cert_file is not None and tls.key_file is not None:
            context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(
            f"cannot configure collector {name!r}: options.tls_config: cannot load "
            f"certificates: {exc}"
        ) from exc
    if tls is not None and tls.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
