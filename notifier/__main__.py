"""``vigil-notifier``: routes, groups, silences and delivers alert notifications."""

from __future__ import annotations

from shared.service import service_main


def main(argv: list[str] | None = None) -> int:
    return service_main(
        "notifier",
        argv,
        None,
        description="Vigil notifier: routes, groups, silences and delivers alert notifications.",
    )


if __name__ == "__main__":
    raise SystemExit(main())
