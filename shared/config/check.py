"""``vigil check-config FILE...``: validate configuration files, list every problem.

Exit status 0 when every file is valid, 1 when any is not, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from shared.config.loader import load_config
from shared.errors import ConfigError


def check_files(paths: list[str], out: TextIO | None = None) -> int:
    """Check each file; print one verdict per file and one line per bad field."""
    stream = out if out is not None else sys.stdout
    failed = 0
    for path in paths:
        try:
            load_config(path)
        except ConfigError as exc:
            failed += 1
            problems = exc.problems or [("(file)", str(exc))]
            print(f"{path}: FAILED: {len(problems)} problem(s)", file=stream)
            for where, msg in problems:
                print(f"  {where}: {msg}", file=stream)
        else:
            print(f"{path}: SUCCESS", file=stream)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vigil check-config", description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", metavar="FILE", help="configuration files to check")
    args = parser.parse_args(argv)
    return check_files(args.files)
