"""A SQL statement with its bind parameters, and its text form for snapshot tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any


@dataclass(frozen=True, slots=True)
class Statement:
    """``sql`` with ``$n`` placeholders for ``args``; values never go into ``sql``."""

    sql: str
    args: tuple[Any, ...] = ()
    why: str = ""
    """One line on what the statement is for, shown in the rendered plan."""


def render(statements: Sequence[Statement]) -> str:
    """Statements as reviewable text: each with its comment, SQL and parameters."""
    parts: list[str] = []
    for number, st in enumerate(statements, 1):
        lines = [f"-- {number}. {st.why}" if st.why else f"-- {number}."]
        lines.extend(f"-- ${i} = {_show(arg)}" for i, arg in enumerate(st.args, 1))
        lines.append(st.sql.strip() + ";")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def _show(arg: Any) -> str:
    if isinstance(arg, timedelta):
        return f"interval '{days_hours(arg.total_seconds())}'"
    return repr(arg)


def days_hours(seconds: float) -> str:
    """A duration in days, hours, minutes and seconds (``8d2m``, ``15d``), never weeks or
    years: how retention is usually written, and what a reader compares."""
    left = round(seconds)
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, left = divmod(left, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
