"""``vigil-web``: serves the Prometheus HTTP API and the dashboards."""

from __future__ import annotations

from shared.config.loader import LoadedConfig
from shared.runner import run_service
from shared.service import service_main


def _run(loaded: LoadedConfig) -> int:
    from web.app import App

    return run_service(lambda: App(loaded, sighup=True))


def main(argv: list[str] | None = None) -> int:
    return service_main(
        "web",
        argv,
        _run,
        description="Vigil web: serves the Prometheus HTTP API and the dashboards.",
    )


if __name__ == "__main__":
    raise SystemExit(main())
