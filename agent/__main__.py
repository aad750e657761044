"""``vigil-agent``: collects this host's metrics and publishes them to NATS.

``vigil-agent --config FILE`` runs the agent until SIGTERM/SIGINT (SIGHUP
reloads); ``--check-config`` validates the file and also builds each
collector, so options are checked by the collector's own model.
"""

from __future__ import annotations

import asyncio
import sys

from agent.collectors.registry import Unavailable, build, default_registry
from agent.errors import CollectorBuildError
from shared.config.loader import LoadedConfig
from shared.runner import run_service
from shared.service import service_main


def check_collectors(loaded: LoadedConfig) -> list[tuple[str, str]]:
    """Build (then close) every configured collector; one problem per collector that fails."""
    problems: list[tuple[str, str]] = []
    registry = default_registry()
    for i, c in enumerate(loaded.config.collectors):
        try:
            collector = build(registry, c)
        except Unavailable as exc:
            # Known kind, not in this build yet: the agent skips it at run time (logged).
            sys.stderr.write(f"collectors[{i}]: warning: {exc}\n")
            continue
        except CollectorBuildError as exc:
            problems.append((f"collectors[{i}]", str(exc)))
            continue
        asyncio.run(collector.close())
    return problems


def run(loaded: LoadedConfig) -> int:
    from agent.app import App

    return run_service(lambda: App(loaded))


def main(argv: list[str] | None = None) -> int:
    return service_main(
        "agent",
        argv,
        run,
        description="Vigil agent: collects this host's metrics and publishes them to NATS.",
        extra_check=check_collectors,
    )


if __name__ == "__main__":
    raise SystemExit(main())
