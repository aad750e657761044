"""Which module builds which integration type, and a receiver's integrations from config.

One entry per module under ``notifier/receivers/``; a type listed in the
configuration but not here (``msteams`` v1, ``pushover``, ...) becomes an
``Unsupported`` integration whose every notification fails permanently with a
clear reason, so the result is recorded, not lost silently.

``build_receivers`` fills what an integration leaves unset from ``global``,
as Alertmanager's ``config.Load`` does: ``http_config`` for every HTTP
integration, the Slack webhook URL, the SMTP settings, PagerDuty's events URL,
Opsgenie's API URL and key, Telegram's API URL and bot token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from notifier.config.models import AlertmanagerConfig, GlobalConfig
from notifier.errors import PermanentError
from notifier.receivers import (
    discord,
    email,
    mattermost,
    msteamsv2,
    opsgenie,
    pagerduty,
    slack,
    telegram,
    webhook,
)
from notifier.receivers.base import BuildContext, Integration, Notification
from notifier.template import Text

Factory = Callable[[Any, int, BuildContext], Integration]

REGISTRY: dict[str, Factory] = {
    "webhook": webhook.build,
    "slack": slack.build,
    "mattermost": mattermost.build,
    "discord": discord.build,
    "msteamsv2": msteamsv2.build,
    "telegram": telegram.build,
    "pagerduty": pagerduty.build,
    "opsgenie": opsgenie.build,
    "email": email.build,
}
"""Integration type (the config key without ``_configs``) -> factory."""

# integration type -> (its field, global's field) pairs filled when the field is unset;
# a pair of secret fields is filled only when neither the value nor its *_file is set
_GLOBALS: dict[str, list[tuple[str, str]]] = {
    "slack": [("api_url", "slack_api_url"), ("api_url_file", "slack_api_url_file")],
    "email": [
        ("from_", "smtp_from"),
        ("smarthost", "smtp_smarthost"),
        ("hello", "smtp_hello"),
        ("auth_username", "smtp_auth_username"),
        ("auth_password", "smtp_auth_password"),
        ("auth_password_file", "smtp_auth_password_file"),
        ("auth_secret", "smtp_auth_secret"),
        ("auth_secret_file", "smtp_auth_secret_file"),
        ("auth_identity", "smtp_auth_identity"),
        ("require_tls", "smtp_require_tls"),
        ("tls_config", "smtp_tls_config"),
        ("force_implicit_tls", "smtp_force_implicit_tls"),
    ],
    "opsgenie": [
        ("api_url", "opsgenie_api_url"),
        ("api_key", "opsgenie_api_key"),
        ("api_key_file", "opsgenie_api_key_file"),
    ],
    "telegram": [
        ("api_url", "telegram_api_url"),
        ("bot_token", "telegram_bot_token"),
        ("bot_token_file", "telegram_bot_token_file"),
    ],
}
_SECRET_PAIRS = {
    "api_url_file": "api_url",
    "auth_password_file": "auth_password",
    "auth_secret_file": "auth_secret",
    "api_key_file": "api_key",
    "bot_token_file": "bot_token",
}


def with_globals(kind: str, cfg: BaseModel, g: GlobalConfig) -> BaseModel:
    """``cfg`` with its unset fields taken from ``global`` (see the module docstring)."""
    update: dict[str, Any] = {}
    if getattr(cfg, "http_config", "absent") is None and g.http_config is not None:
        update["http_config"] = g.http_config
    pairs = list(_GLOBALS.get(kind, []))
    if kind == "pagerduty" and (
        getattr(cfg, "routing_key", None) is not None
        or getattr(cfg, "routing_key_file", None) is not None
    ):
        pairs.append(("url", "pagerduty_url"))  # v1 (service_key) keeps its own endpoint
    for field, gfield in pairs:
        value = getattr(g, gfield)
        if value is None or getattr(cfg, field) is not None:
            continue
        # a secret and its *_file are one setting: either being set keeps the other unset
        partner = _SECRET_PAIRS.get(field) or next(
            (k for k, v in _SECRET_PAIRS.items() if v == field), None
        )
        if partner is not None and (
            getattr(cfg, partner, None) is not None or update.get(partner) is not None
        ):
            continue
        update[field] = value
    return cfg.model_copy(update=update) if update else cfg


class Unsupported:
    """An integration type this build cannot deliver to."""

    def __init__(self, kind: str, index: int, send_resolved: bool) -> None:
        self.kind = kind
        self.index = index
        self.send_resolved = send_resolved

    async def notify(self, notification: Notification) -> None:
        raise PermanentError(
            f"cannot notify {self.kind} {notification.receiver}: {self.kind} delivery is not "
            "implemented in this build"
        )

    async def close(self) -> None:
        return None


def build_receivers(am: AlertmanagerConfig, ctx: BuildContext) -> dict[str, list[Integration]]:
    """Every receiver's integrations, unset settings filled from ``global``."""
    out: dict[str, list[Integration]] = {}
    for receiver in am.receivers:
        integrations: list[Integration] = []
        for kind, index, given in receiver.integrations():
            factory = REGISTRY.get(kind)
            if factory is None:
                integrations.append(
                    Unsupported(kind, index, bool(getattr(given, "send_resolved", False)))
                )
                continue
            integrations.append(factory(with_globals(kind, given, am.global_), index, ctx))
        out[receiver.name] = integrations
    return out


def template_problems(
    receivers: dict[str, list[Integration]],
) -> list[tuple[str, str]]:
    """``(receiver.kind[index].field, reason)`` for every configured text that cannot be used.

    For ``--check-config`` and reloads: an unsupported Go construct or broken Jinja2
    is reported when the configuration loads, not when the first alert fires.
    """
    out: list[tuple[str, str]] = []
    for name, integrations in receivers.items():
        for integration in integrations:
            where = f"{name}.{integration.kind}_configs[{integration.index}]"
            for attr, value in sorted(vars(integration).items()):
                texts = value.items() if isinstance(value, dict) else [(None, value)]
                for key, text in texts:
                    if isinstance(text, Text) and text.error:
                        field = attr if key is None else f"{attr}.{key}"
                        out.append((f"{where}.{field}", text.error))
    return out
