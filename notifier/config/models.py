"""The Alertmanager configuration file (``alertmanager.yml``), as pydantic models.

Top level: ``global``, ``route``, ``receivers``, ``inhibit_rules``,
``time_intervals``, ``mute_time_intervals`` (older name, same shape) and
``templates``. The models check each field; ``notifier.config.load`` checks
what spans the file (receiver and interval names, the root route's rules) and
fills receivers' settings from ``global``. Defaults are Alertmanager's.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator

from notifier.config.common import (
    AMModel,
    HTTPConfig,
    LabelName,
    MatcherLine,
    TLSConfig,
    check_legacy,
    flatten,
    legacy_matchers,
)
from notifier.config.receivers import Receiver
from notifier.timeinterval import TimeInterval
from shared.alertmanager.matchers import LABEL_NAME_RE, LabelMatcher
from shared.duration import Duration, parse_duration

DEFAULT_GROUP_WAIT = parse_duration("30s")
DEFAULT_GROUP_INTERVAL = parse_duration("5m")
DEFAULT_REPEAT_INTERVAL = parse_duration("4h")


class GlobalConfig(AMModel):
    """``global``: defaults for receivers and the resolve timeout."""

    resolve_timeout: Duration = Field(
        parse_duration("5m"),
        description="endsAt given to alerts that arrive without one (Alertmanager API).",
    )
    http_config: HTTPConfig | None = Field(None, description="Default HTTP client settings.")
    smtp_from: str | None = None
    smtp_hello: str = "localhost"
    smtp_smarthost: str | None = None
    smtp_auth_username: str | None = None
    smtp_auth_password: SecretStr | None = None
    smtp_auth_password_file: str | None = None
    smtp_auth_secret: SecretStr | None = None
    smtp_auth_secret_file: str | None = None
    smtp_auth_identity: str | None = None
    smtp_require_tls: bool = True
    smtp_tls_config: TLSConfig | None = None
    smtp_force_implicit_tls: bool | None = None
    slack_api_url: SecretStr | None = None
    slack_api_url_file: str | None = None
    slack_app_token: SecretStr | None = None
    slack_app_token_file: str | None = None
    slack_app_url: str | None = None
    pagerduty_url: str = "https://events.pagerduty.com/v2/enqueue"
    opsgenie_api_url: str = "https://api.opsgenie.com/"
    opsgenie_api_key: SecretStr | None = None
    opsgenie_api_key_file: str | None = None
    wechat_api_url: str = "https://qyapi.weixin.qq.com/cgi-bin/"
    wechat_api_secret: SecretStr | None = None
    wechat_api_corp_id: str | None = None
    victorops_api_url: str = "https://alert.victorops.com/integrations/generic/20131114/alert/"
    victorops_api_key: SecretStr | None = None
    victorops_api_key_file: str | None = None
    telegram_api_url: str = "https://api.telegram.org"
    telegram_bot_token: SecretStr | None = None
    telegram_bot_token_file: str | None = None
    webex_api_url: str = "https://webexapis.com/v1/messages"
    rocketchat_api_url: str | None = None
    rocketchat_token: SecretStr | None = None
    rocketchat_token_file: str | None = None
    rocketchat_token_id: SecretStr | None = None
    rocketchat_token_id_file: str | None = None
    jira_api_url: str | None = None


class RouteConfig(AMModel):
    """One node of the routing tree; unset options are inherited from the parent."""

    receiver: str | None = Field(None, description="Receiver of the matching alerts.")
    group_by: list[str] | None = Field(
        None, description="Labels to group by; ['...'] groups by all labels."
    )
    continue_: bool = Field(
        False, alias="continue", description="Keep matching sibling routes after this one."
    )
    match: dict[str, str] | None = Field(None, description="Deprecated: equality matchers.")
    match_re: dict[str, str] | None = Field(None, description="Deprecated: regex matchers.")
    matchers: list[MatcherLine] = Field(
        default_factory=list, description="Matchers like 'severity=~\"warning|critical\"'."
    )
    group_wait: Duration | None = None
    group_interval: Duration | None = None
    repeat_interval: Duration | None = None
    mute_time_intervals: list[str] = Field(default_factory=list)
    active_time_intervals: list[str] = Field(default_factory=list)
    routes: list[RouteConfig] = Field(default_factory=list)

    @field_validator("group_by")
    @classmethod
    def _group_by(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        seen: set[str] = set()
        for name in v:
            if name == "...":
                if len(v) != 1:
                    raise ValueError(
                        "cannot have wildcard group_by (`...`) and other labels at the same time"
                    )
                continue
            if not LABEL_NAME_RE.fullmatch(name):
                raise ValueError(f"invalid label name {name!r} in group_by list")
            if name in seen:
                raise ValueError(f"duplicated label {name!r} in group_by")
            seen.add(name)
        return v

    @field_validator("group_interval", "repeat_interval")
    @classmethod
    def _not_zero(cls, v: float | None) -> float | None:
        if v is not None and v == 0:
            raise ValueError("must not be zero")
        return v

    @model_validator(mode="after")
    def _legacy(self) -> RouteConfig:
        check_legacy(self.match, self.match_re)
        return self

    def all_matchers(self) -> tuple[LabelMatcher, ...]:
        """``match``, ``match_re`` and ``matchers`` together, as Alertmanager combines them."""
        return legacy_matchers(self.match, self.match_re) + flatten(self.matchers)


class InhibitRuleConfig(AMModel):
    """Mute alerts matching the target while an alert matching the source fires."""

    source_matchers: list[MatcherLine] = Field(default_factory=list)
    target_matchers: list[MatcherLine] = Field(default_factory=list)
    source_match: dict[str, str] | None = None
    source_match_re: dict[str, str] | None = None
    target_match: dict[str, str] | None = None
    target_match_re: dict[str, str] | None = None
    equal: list[LabelName] = Field(default_factory=list)

    @model_validator(mode="after")
    def _legacy(self) -> InhibitRuleConfig:
        check_legacy(self.source_match, self.source_match_re)
        check_legacy(self.target_match, self.target_match_re)
        return self

    def sources(self) -> tuple[LabelMatcher, ...]:
        return legacy_matchers(self.source_match, self.source_match_re) + flatten(
            self.source_matchers
        )

    def targets(self) -> tuple[LabelMatcher, ...]:
        return legacy_matchers(self.target_match, self.target_match_re) + flatten(
            self.target_matchers
        )


class NamedTimeInterval(AMModel):
    name: str = Field(min_length=1)
    time_intervals: list[TimeInterval] = Field(default_factory=list)


class AlertmanagerConfig(AMModel):
    """The whole ``alertmanager.yml``."""

    global_: GlobalConfig = Field(default_factory=GlobalConfig, alias="global")
    route: RouteConfig | None = Field(None, description="The root of the routing tree.")
    receivers: list[Receiver] = Field(default_factory=list)
    inhibit_rules: list[InhibitRuleConfig] = Field(default_factory=list)
    time_intervals: list[NamedTimeInterval] = Field(default_factory=list)
    mute_time_intervals: list[NamedTimeInterval] = Field(default_factory=list)
    templates: list[str] = Field(default_factory=list, description="Template file globs.")
    tracing: dict[str, Any] | None = Field(None, description="Accepted and ignored.")

    def intervals(self) -> dict[str, list[TimeInterval]]:
        return {
            ti.name: ti.time_intervals for ti in [*self.mute_time_intervals, *self.time_intervals]
        }

    def receiver(self, name: str) -> Receiver:
        for r in self.receivers:
            if r.name == name:
                return r
        raise KeyError(name)
