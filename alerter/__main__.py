"""``vigil-alerter``: evaluates PromQL alerting and recording rules on the live stream."""

from __future__ import annotations

from shared.service import service_main


def main(argv: list[str] | None = None) -> int:
    return service_main(
        "alerter",
        argv,
        None,
        description="Vigil alerter: evaluates PromQL alerting and recording rules on the live stream.",
    )


if __name__ == "__main__":
    raise SystemExit(main())
