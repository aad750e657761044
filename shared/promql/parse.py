"""The adapter over ``promql-parser``: parse errors become ``BadData``, durations ms.

``holt_winters`` is unknown to promql-parser (Prometheus 3 renamed it
``double_exponential_smoothing``), so it answers ``BadData`` like any unknown function.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import promql_parser as pp

from shared.promql.errors import BadData
from shared.promql.storage import LabelMatcher, MatchOp

_OPS: dict[str, MatchOp] = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}


def parse(query: str) -> Any:
    """Parse ``query`` into promql-parser's tree, or raise ``BadData`` with its message."""
    try:
        return pp.parse(query)
    except BaseException as exc:  # pyo3 panics derive from BaseException
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        raise BadData(f"cannot parse query: {exc}") from exc


def enum_name(value: Any) -> str:
    """The member name of a promql-parser enum (they are not Python enums)."""
    return str(value).rsplit(".", 1)[-1]


def duration_ms(d: timedelta | None) -> int:
    if d is None:
        return 0
    return (d.days * 86_400 + d.seconds) * 1000 + d.microseconds // 1000


def matcher_sets(vs: Any) -> list[list[LabelMatcher]]:
    """The selector's matchers (``__name__`` included), one set per ``or`` alternative."""
    base: list[LabelMatcher] = []
    if vs.name:
        base.append(LabelMatcher("__name__", "=", vs.name))
    ms = vs.matchers
    sets = [list(ms.matchers)] if not ms.or_matchers else [list(o) for o in ms.or_matchers]
    out = []
    for s in sets:
        conv = [LabelMatcher(m.name, _OPS[enum_name(m.op)], m.value) for m in s]
        out.append(base + conv)
    return out


def at_ms(node: Any, start_ms: int, end_ms: int) -> int | None:
    """The ``@`` time of a selector or subquery in ms, ``None`` without ``@``."""
    at = node.at
    if at is None:
        return None
    kind = enum_name(at.type)
    if kind == "Start":
        return start_ms
    if kind == "End":
        return end_ms
    try:
        when = at.at
    except BaseException as exc:  # promql-parser panics on times before the epoch
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        raise BadData("cannot evaluate @ modifier: times before 1970 are not supported") from exc
    ms: int = round(float(when.timestamp()) * 1000)
    return ms
