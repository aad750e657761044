"""``vigil-agent``: collects this host's metrics and publishes them to NATS."""

from __future__ import annotations

from shared.service import service_main


def main(argv: list[str] | None = None) -> int:
    return service_main(
        "agent",
        argv,
        None,
        description="Vigil agent: collects this host's metrics and publishes them to NATS.",
    )


if __name__ == "__main__":
    raise SystemExit(main())
