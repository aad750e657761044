"""``vigil-ingest``: writes metric batches from NATS to TimescaleDB."""

from __future__ import annotations

from shared.config.loader import LoadedConfig
from shared.runner import run_service
from shared.service import service_main


def _run(loaded: LoadedConfig) -> int:
    from ingest.app import App

    return run_service(lambda: App(loaded))


def main(argv: list[str] | None = None) -> int:
    return service_main(
        "ingest",
        argv,
        _run,
        description="Vigil ingest: writes metric batches from NATS to TimescaleDB.",
    )


if __name__ == "__main__":
    raise SystemExit(main())
