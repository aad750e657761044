"""``/api/v2/status``'s ``config.original``: the Alertmanager file as loaded, secrets hidden.

The YAML the operator wrote (re-serialised), with every secret replaced by
``<secret>`` as Alertmanager does: passwords, tokens, keys, credentials, and
URLs that carry a token (``api_url``, ``webhook_url``, a webhook's ``url``).
Keys ending ``_file`` are paths and stay. amtool reads this text for
``config show`` and ``config routes``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import yaml

from shared.config.loader import LoadedConfig

SECRET: Final = "<secret>"  # noqa: S105 - the placeholder shown instead of a secret
SECRET_KEYS: Final = frozenset(
    {
        "password",
        "auth_password",
        "auth_secret",
        "smtp_auth_password",
        "smtp_auth_secret",
        "api_key",
        "api_secret",
        "opsgenie_api_key",
        "victorops_api_key",
        "token",
        "bot_token",
        "bearer_token",
        "routing_key",
        "service_key",
        "credentials",
        "client_secret",
        "user_key",
        "api_url",
        "slack_api_url",
        "webhook_url",
        "telegram_bot_token",
    }
)
_SECRET_URL_LISTS: Final = frozenset({"webhook_configs"})


def mask(value: Any, key: str = "", parent: str = "") -> Any:
    if isinstance(value, Mapping):
        return {k: mask(v, str(k), key or parent) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v, "", key) for v in value]
    if value is None or value == "":
        return value
    if key in SECRET_KEYS or (key == "url" and parent in _SECRET_URL_LISTS):
        return SECRET
    return value


def raw_config(loaded: LoadedConfig) -> dict[str, Any]:
    """The Alertmanager configuration's mapping as written (``{}`` for the built-in default)."""
    value = loaded.config.alerting.alertmanager_config
    if value is None:
        return {}
    if isinstance(value, str):
        data = yaml.safe_load(Path(loaded.resolve(value)).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    return dict(value)


def original(loaded: LoadedConfig) -> str:
    return yaml.safe_dump(mask(raw_config(loaded)), sort_keys=False, allow_unicode=True)
