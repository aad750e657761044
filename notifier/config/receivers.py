"""The receiver section: one model per integration type, Alertmanager's fields and defaults.

Every Alertmanager integration type parses (so an unmodified ``alertmanager.yml``
loads); ``DELIVERABLE`` names those Vigil can deliver in this build, and the rest
are reported by ``--check-config`` as warnings. ``mattermost_configs`` is Vigil's
addition (Alertmanager has none). A key that names no integration is an error.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, SecretStr, model_validator

from notifier.config.common import AMModel, HTTPConfig, TLSConfig, at_most_one
from shared.duration import Duration


class IntegrationConfig(AMModel):
    """Fields every integration has."""

    send_resolved: bool = Field(True, description="Whether to notify about resolved alerts.")
    http_config: HTTPConfig | None = Field(None, description="HTTP client settings.")


class WebhookConfig(IntegrationConfig):
    url: SecretStr | None = Field(None, description="Endpoint to POST the payload to.")
    url_file: str | None = Field(None, description="File holding the URL.")
    max_alerts: int = Field(0, ge=0, description="Most alerts in one payload; 0 for all.")
    timeout: Duration = Field(0.0, description="Per-attempt timeout; 0 for the default.")

    @model_validator(mode="after")
    def _url(self) -> WebhookConfig:
        at_most_one(self, "url", "url_file")
        if self.url is None and self.url_file is None:
            raise ValueError("one of url or url_file must be configured")
        return self


class SlackConfig(IntegrationConfig):
    send_resolved: bool = False
    api_url: SecretStr | None = None
    api_url_file: str | None = None
    channel: str | None = None
    username: str | None = None
    color: str | None = None
    title: str | None = None
    title_link: str | None = None
    pretext: str | None = None
    text: str | None = None
    fields: list[dict[str, Any]] = Field(default_factory=list)
    short_fields: bool = False
    footer: str | None = None
    fallback: str | None = None
    callback_id: str | None = None
    icon_emoji: str | None = None
    icon_url: str | None = None
    image_url: str | None = None
    thumb_url: str | None = None
    link_names: bool = False
    mrkdwn_in: list[str] = Field(default_factory=list)
    actions: list[dict[str, Any]] = Field(default_factory=list)
    timeout: Duration = 0.0
    app_token: SecretStr | None = None
    app_token_file: str | None = None
    message_text: str | None = None
    update_message: bool = False


class MattermostConfig(IntegrationConfig):
    """Vigil's addition: a Mattermost incoming webhook."""

    send_resolved: bool = False
    webhook_url: SecretStr | None = None
    webhook_url_file: str | None = None
    channel: str | None = None
    username: str | None = None
    icon_url: str | None = None
    icon_emoji: str | None = None
    text: str | None = None
    title: str | None = None


class EmailConfig(AMModel):
    send_resolved: bool = False
    to: str = Field(description="Addresses, comma-separated.")
    from_: str | None = Field(None, alias="from")
    smarthost: str | None = None
    hello: str | None = None
    auth_username: str | None = None
    auth_password: SecretStr | None = None
    auth_password_file: str | None = None
    auth_secret: SecretStr | None = None
    auth_secret_file: str | None = None
    auth_identity: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    html: str | None = None
    text: str | None = None
    require_tls: bool | None = None
    force_implicit_tls: bool | None = None
    tls_config: TLSConfig | None = None
    threading: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _check(self) -> EmailConfig:
        if not self.to.strip():
            raise ValueError("missing to address in email config")
        lowered = [h.lower() for h in self.headers]
        if len(set(lowered)) != len(lowered):
            raise ValueError("duplicate header in email config")
        return self


class PagerdutyConfig(IntegrationConfig):
    routing_key: SecretStr | None = None
    routing_key_file: str | None = None
    service_key: SecretStr | None = None
    service_key_file: str | None = None
    url: str | None = None
    client: str = '{{ template "pagerduty.default.client" . }}'
    client_url: str = '{{ template "pagerduty.default.clientURL" . }}'
    description: str = '{{ template "pagerduty.default.description" .}}'
    details: dict[str, Any] = Field(default_factory=dict)
    images: list[dict[str, Any]] = Field(default_factory=list)
    links: list[dict[str, Any]] = Field(default_factory=list)
    source: str | None = None
    severity: str = "error"
    class_: str | None = Field(None, alias="class")
    component: str | None = None
    group: str | None = None
    timeout: Duration = 0.0

    @model_validator(mode="after")
    def _key(self) -> PagerdutyConfig:
        keys = (self.routing_key, self.routing_key_file, self.service_key, self.service_key_file)
        if all(k is None for k in keys):
            raise ValueError("missing service or routing key in PagerDuty config")
        at_most_one(self, "routing_key", "routing_key_file")
        at_most_one(self, "service_key", "service_key_file")
        return self


class OpsgenieConfig(IntegrationConfig):
    api_key: SecretStr | None = None
    api_key_file: str | None = None
    api_url: str | None = None
    message: str | None = None
    description: str | None = None
    source: str | None = None
    details: dict[str, str] = Field(default_factory=dict)
    entity: str | None = None
    responders: list[dict[str, Any]] = Field(default_factory=list)
    actions: str | None = None
    tags: str | None = None
    note: str | None = None
    priority: str | None = None
    update_alerts: bool = False
    visible_to: list[dict[str, Any]] = Field(default_factory=list)


class TelegramConfig(IntegrationConfig):
    api_url: str | None = None
    bot_token: SecretStr | None = None
    bot_token_file: str | None = None
    chat_id: int | None = None
    message_thread_id: int | None = None
    message: str | None = None
    disable_notifications: bool = False
    parse_mode: str = "HTML"

    @model_validator(mode="after")
    def _check(self) -> TelegramConfig:
        # a missing bot token may come from global.telegram_bot_token(_file): load checks
        at_most_one(self, "bot_token", "bot_token_file")
        if self.chat_id is None:
            raise ValueError("missing chat_id on telegram_config")
        return self


class _WebhookURLConfig(IntegrationConfig):
    webhook_url: SecretStr | None = None
    webhook_url_file: str | None = None

    @model_validator(mode="after")
    def _url(self) -> _WebhookURLConfig:
        at_most_one(self, "webhook_url", "webhook_url_file")
        if self.webhook_url is None and self.webhook_url_file is None:
            raise ValueError("one of webhook_url or webhook_url_file must be configured")
        return self


class DiscordConfig(_WebhookURLConfig):
    title: str | None = None
    message: str | None = None
    content: str | None = None
    username: str | None = None
    avatar_url: str | None = None


class MSTeamsConfig(_WebhookURLConfig):
    title: str | None = None
    summary: str | None = None
    text: str | None = None


class MSTeamsV2Config(_WebhookURLConfig):
    title: str | None = None
    text: str | None = None


class OtherIntegrationConfig(IntegrationConfig):
    """An Alertmanager integration Vigil parses but cannot deliver to yet (fields kept as given)."""

    model_config = ConfigDict(extra="allow", frozen=True)


INTEGRATION_TYPES: dict[str, type[AMModel]] = {
    "webhook_configs": WebhookConfig,
    "slack_configs": SlackConfig,
    "mattermost_configs": MattermostConfig,
    "email_configs": EmailConfig,
    "pagerduty_configs": PagerdutyConfig,
    "opsgenie_configs": OpsgenieConfig,
    "telegram_configs": TelegramConfig,
    "discord_configs": DiscordConfig,
    "msteams_configs": MSTeamsConfig,
    "msteamsv2_configs": MSTeamsV2Config,
    "wechat_configs": OtherIntegrationConfig,
    "pushover_configs": OtherIntegrationConfig,
    "victorops_configs": OtherIntegrationConfig,
    "sns_configs": OtherIntegrationConfig,
    "webex_configs": OtherIntegrationConfig,
    "jira_configs": OtherIntegrationConfig,
    "rocketchat_configs": OtherIntegrationConfig,
    "incidentio_configs": OtherIntegrationConfig,
}
"""Receiver keys and their models; the integration's name is the key without ``_configs``."""


class Receiver(AMModel):
    """A named receiver and its integrations (zero integrations: a black hole)."""

    name: str = Field(min_length=1)
    webhook_configs: list[WebhookConfig] = Field(default_factory=list)
    slack_configs: list[SlackConfig] = Field(default_factory=list)
    mattermost_configs: list[MattermostConfig] = Field(default_factory=list)
    email_configs: list[EmailConfig] = Field(default_factory=list)
    pagerduty_configs: list[PagerdutyConfig] = Field(default_factory=list)
    opsgenie_configs: list[OpsgenieConfig] = Field(default_factory=list)
    telegram_configs: list[TelegramConfig] = Field(default_factory=list)
    discord_configs: list[DiscordConfig] = Field(default_factory=list)
    msteams_configs: list[MSTeamsConfig] = Field(default_factory=list)
    msteamsv2_configs: list[MSTeamsV2Config] = Field(default_factory=list)
    wechat_configs: list[OtherIntegrationConfig] = Field(default_factory=list)
    pushover_configs: list[OtherIntegrationConfig] = Field(default_factory=list)
    victorops_configs: list[OtherIntegrationConfig] = Field(default_factory=list)
    sns_configs: list[OtherIntegrationConfig] = Field(default_factory=list)
    webex_configs: list[OtherIntegrationConfig] = Field(default_factory=list)
    jira_configs: list[OtherIntegrationConfig] = Field(default_factory=list)
    rocketchat_configs: list[OtherIntegrationConfig] = Field(default_factory=list)
    incidentio_configs: list[OtherIntegrationConfig] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _known_types(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in data:
                if key != "name" and key not in INTEGRATION_TYPES:
                    known = ", ".join(sorted(INTEGRATION_TYPES))
                    raise ValueError(f"unknown receiver type {key!r}; known types: {known}")
        return data

    def integrations(self) -> list[tuple[str, int, AMModel]]:
        """``(type, index, config)`` for each integration, type without ``_configs``."""
        out: list[tuple[str, int, AMModel]] = []
        for key in INTEGRATION_TYPES:
            for i, cfg in enumerate(getattr(self, key)):
                out.append((key.removesuffix("_configs"), i, cfg))
        return out


DELIVERABLE: frozenset[str] = frozenset(
    {
        "webhook",
        "slack",
        "mattermost",
        "discord",
        "msteamsv2",
        "telegram",
        "pagerduty",
        "opsgenie",
        "email",
    }
)
"""Integration types (without ``_configs``) this build delivers to."""
