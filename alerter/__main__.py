"""``vigil-alerter``: evaluates PromQL alerting and recording rules on the live stream.

Rules come from ``alerting.rule_files``; the process' own settings from the
``alerter`` section (``listen_address``, ``max_series``, ``max_replay``,
``debounce``, ``up_timeout``, ...), which the environment overrides as any section
(``VIGIL_ALERTER__LISTEN_ADDRESS=...``). ``--check-config`` also loads and checks
every rule file the globs name.
"""

from __future__ import annotations

from shared.config.loader import LoadedConfig
from shared.runner import run_service
from shared.service import service_main


def _check(loaded: LoadedConfig) -> list[tuple[str, str]]:
    from alerter.errors import RuleFileError
    from alerter.rules import load_files

    try:
        load_files(loaded.config.alerting.rule_files, loaded.base_dir)
    except RuleFileError as exc:
        return [("alerting.rule_files", p) for p in exc.problems] or [
            ("alerting.rule_files", str(exc))
        ]
    return []


def _run(loaded: LoadedConfig) -> int:
    from alerter.app import App

    return run_service(lambda: App(loaded))


def main(argv: list[str] | None = None) -> int:
    return service_main(
        "alerter",
        argv,
        _run,
        description="Vigil alerter: evaluates PromQL alerting and recording rules on the live stream.",
        extra_check=_check,
    )


if __name__ == "__main__":
    raise SystemExit(main())
