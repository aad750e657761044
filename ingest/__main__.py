"""``vigil-ingest``: writes metric batches from NATS to TimescaleDB."""

from __future__ import annotations

from shared.service import service_main


def main(argv: list[str] | None = None) -> int:
    return service_main(
        "ingest",
        argv,
        None,
        description="Vigil ingest: writes metric batches from NATS to TimescaleDB.",
    )


if __name__ == "__main__":
    raise SystemExit(main())
