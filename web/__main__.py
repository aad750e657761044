"""``vigil-web``: serves the Prometheus HTTP API and the dashboards."""

from __future__ import annotations

from shared.service import service_main


def main(argv: list[str] | None = None) -> int:
    return service_main(
        "web",
        argv,
        None,
        description="Vigil web: serves the Prometheus HTTP API and the dashboards.",
    )


if __name__ == "__main__":
    raise SystemExit(main())
