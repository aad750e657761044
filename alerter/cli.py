"""``vigil rules check FILE...``: validate rule files the way ``promtool check rules`` does.

Output per file: ``Checking FILE`` then ``  SUCCESS: N rules found`` or
``  FAILED:`` and one error per line (``FILE: LINE:COL: group "g", rule i, "name": ...``)
on standard error, then a blank line. Exit status 1 when any file failed, 2 on
bad usage.
"""

from __future__ import annotations

import argparse
import sys

from alerter.errors import RuleFileError
from alerter.rules import load_file


def check_files(files: list[str]) -> int:
    failed = False
    for file in files:
        sys.stdout.write(f"Checking {file}\n")
        try:
            groups = load_file(file)
        except RuleFileError as exc:
            failed = True
            sys.stdout.flush()
            sys.stderr.write("  FAILED:\n" + "".join(f"{p}\n" for p in exc.problems) + "\n")
            sys.stderr.flush()
            continue
        count = sum(len(g.rules) for g in groups)
        sys.stdout.write(f"  SUCCESS: {count} rules found\n\n")
    sys.stdout.flush()
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vigil rules", description="Vigil rule-file commands.")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="check rule files for errors (like promtool check rules)")
    check.add_argument("files", nargs="+", metavar="FILE", help="rule files to check")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    return check_files(args.files)


if __name__ == "__main__":
    raise SystemExit(main())
