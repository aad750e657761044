"""The command line every service shares: ``--config FILE``, ``--check-config``.

``vigil-<service> --config FILE --check-config`` validates the file (plus
whatever the service checks on top, through ``extra_check``) and exits 0 or
1, listing each bad field with its path. Without ``--check-config`` the
service's ``run`` is called with the loaded configuration.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from shared.config.loader import LoadedConfig, load_config
from shared.errors import ConfigError
from shared.log import configure_logging

ExtraCheck = Callable[[LoadedConfig], list[tuple[str, str]]]


def service_main(
    service: str,
    argv: list[str] | None,
    run: Callable[[LoadedConfig], int] | None,
    *,
    description: str = "",
    extra_check: ExtraCheck | None = None,
) -> int:
    parser = argparse.ArgumentParser(prog=f"vigil-{service}", description=description)
    parser.add_argument(
        "--config",
        "-c",
        metavar="FILE",
        default=os.environ.get("VIGIL_CONFIG"),
        help="configuration file (default: $VIGIL_CONFIG, else built-in defaults)",
    )
    parser.add_argument(
        "--check-config", action="store_true", help="validate the configuration and exit"
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    source = args.config or "the default configuration"
    try:
        loaded = load_config(args.config)
        problems = extra_check(loaded) if extra_check else []
    except ConfigError as exc:
        problems = exc.problems or [("(file)", str(exc))]
    if problems:
        print(f"{source}: FAILED: {len(problems)} problem(s)", file=sys.stderr)
        for where, msg in problems:
            print(f"  {where}: {msg}", file=sys.stderr)
        return 1
    if args.check_config:
        print(f"{source}: SUCCESS")
        return 0
    configure_logging(loaded.config.log.level, loaded.config.log.format, service=service)
    if run is None:
        print(f"vigil-{service}: this service is not built yet", file=sys.stderr)
        return 2
    return run(loaded)
