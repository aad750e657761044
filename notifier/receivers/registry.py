"""Which module builds which integration type, and a receiver's integrations from config.

One entry per module under ``notifier/receivers/``; a type listed in the
configuration but not here (Slack, email, ... until their modules land)
becomes an ``Unsupported`` integration whose every notification fails
permanently with a clear reason, so the result is recorded, not lost silently.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from notifier.config.models import AlertmanagerConfig
from notifier.errors import PermanentError
from notifier.receivers import webhook
from notifier.receivers.base import BuildContext, Integration, Notification

Factory = Callable[[Any, int, BuildContext], Integration]

REGISTRY: dict[str, Factory] = {
    "webhook": webhook.build,
}
"""Integration type (the config key without ``_configs``) -> factory."""


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
    """Every receiver's integrations; ``global.http_config`` fills a missing ``http_config``."""
    out: dict[str, list[Integration]] = {}
    default_http = am.global_.http_config
    for receiver in am.receivers:
        integrations: list[Integration] = []
        for kind, index, given in receiver.integrations():
            factory = REGISTRY.get(kind)
            if factory is None:
                integrations.append(
                    Unsupported(kind, index, bool(getattr(given, "send_resolved", False)))
                )
                continue
            cfg = given
            if default_http is not None and getattr(given, "http_config", "absent") is None:
                cfg = given.model_copy(update={"http_config": default_http})
            integrations.append(factory(cfg, index, ctx))
        out[receiver.name] = integrations
    return out
