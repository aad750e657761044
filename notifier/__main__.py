"""``vigil-notifier``: routes, groups, silences and delivers alert notifications.

The Alertmanager configuration comes from ``alerting.alertmanager_config`` in
Vigil's file; the process' own settings from its ``notifier`` section
(``listen_address``, ``replica``, ``allow_networks``, ``replay``), which the
environment overrides as any section (``VIGIL_NOTIFIER__LISTEN_ADDRESS=...``).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from shared.config.loader import LoadedConfig
from shared.runner import run_service
from shared.service import service_main

if TYPE_CHECKING:
    from notifier.app import Settings


def settings_from_config(loaded: LoadedConfig) -> Settings:
    """The process settings of the ``notifier`` section."""
    from notifier.app import Settings

    section = loaded.config.notifier
    s = Settings()
    s.listen_address = section.listen_address
    if section.replica:
        s.replica = section.replica
    s.allow_networks = list(section.allow_networks)
    s.replay = section.replay
    return s


def _check(loaded: LoadedConfig) -> list[tuple[str, str]]:
    """The Alertmanager configuration's problems, then its templates' (unusable texts)."""
    from notifier.config import load_from
    from notifier.errors import AlertmanagerConfigError
    from notifier.receivers.base import BuildContext
    from notifier.receivers.registry import build_receivers, template_problems
    from notifier.ssrf import URLGuard

    try:
        config = load_from(loaded)
    except AlertmanagerConfigError as exc:
        return exc.problems or [("alerting.alertmanager_config", str(exc))]
    for where, message in config.warnings:
        sys.stderr.write(f"  warning: {where}: {message}\n")
    ctx = BuildContext(base_dir=config.base_dir, guard=URLGuard([]))
    return [
        (f"receivers.{where}", reason)
        for where, reason in template_problems(build_receivers(config.am, ctx))
    ]


def _run(loaded: LoadedConfig) -> int:
    from notifier.app import App

    settings = settings_from_config(loaded)
    return run_service(lambda: App(loaded, settings))


def main(argv: list[str] | None = None) -> int:
    return service_main(
        "notifier",
        argv,
        _run,
        description="Vigil notifier: routes, groups, silences and delivers alert notifications.",
        extra_check=_check,
    )


if __name__ == "__main__":
    raise SystemExit(main())
