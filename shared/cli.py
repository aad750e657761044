"""The umbrella ``vigil`` command.

Subcommands are entry points in the ``vigil.commands`` group: each maps a name
to a ``main(argv: list[str]) -> int``. Services register theirs in
``pyproject.toml`` (``vigil db migrate`` lives in ingest, ``vigil rules check``
in the alerter), so this module imports no service and ``shared`` stays a leaf.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points

GROUP = "vigil.commands"


def commands() -> dict[str, EntryPoint]:
    """Registered subcommands by name."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def _usage(found: dict[str, EntryPoint]) -> str:
    names = "\n".join(f"  {name}" for name in sorted(found))
    return f"usage: vigil COMMAND [ARGS...]\n\ncommands:\n{names}\n\n'vigil COMMAND --help' tells more."


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    found = commands()
    if not args or args[0] in {"-h", "--help", "help"}:
        print(_usage(found))
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in found:
        print(f"vigil: unknown command {name!r}\n\n{_usage(found)}", file=sys.stderr)
        return 2
    command: Callable[[list[str]], int | None] = found[name].load()
    return command(rest) or 0


if __name__ == "__main__":
    raise SystemExit(main())
