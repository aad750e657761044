"""PromQL label matchers as SQL on ingest's ``series`` table, and the time conversion
its queries share (web's storage and reports, the alerter's warm start).

Matchers become one SQL condition each on ``series``; every label name and
value travels as a bind parameter, so no value can change the SQL text (the
text depends only on the number and kinds of the matchers).

- ``__name__`` matchers apply to the ``metric`` column.
- ``name="v"`` with ``v`` non-empty: ``labels @> $n::jsonb`` (the GIN index
  ``series_labels_gin`` serves it).
- Every other matcher compares ``coalesce(labels->>$k, '')``: a series that
  lacks a label has it as ``""``, so a matcher that matches ``""``
  (``a=""``, ``a!="x"``, ``a=~"x|"``, ``a!~".+"``) also selects series
  without the label, as in Prometheus.
- Regexes are anchored as ``^(?:re)$`` and run with PostgreSQL's ``~``
  (Advanced Regular Expressions). Differences from Prometheus' RE2 that a
  user can meet: RE2's leading flag groups (``(?i)``, ``(?s)``, ``(?is)``)
  are moved in front of the anchor, where ARE accepts them, and ``(?s)`` is
  dropped (ARE's ``.`` matches a newline already; RE2's does not without
  it — label values with newlines are rare); flag groups elsewhere in the
  pattern, named groups ``(?P<n>...)`` and ``\\pL``-style Unicode classes
  are RE2-only and fail in PostgreSQL with ``bad_data``; ARE-only syntax
  (back-references ``\\1``, ``[[:<:]]``) is rejected earlier by the PromQL
  parser's RE2 check. Character classes ``\\d \\w \\s``, non-greedy
  quantifiers, ``{m,n}`` and non-capturing groups mean the same in both.
- A label value holding NUL (which PostgreSQL text cannot carry, so no
  stored label holds it) matches nothing under ``=`` and everything under
  ``!=``; in a regex it is ``bad_data``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.promql.errors import BadData
from shared.promql.storage import LabelMatcher

NAME = "__name__"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RE2_FLAGS = re.compile(r"^\(\?([imsU]+)\)")


def ms_to_datetime(ms: int) -> datetime:
    """Exact conversion (no float rounding) of epoch milliseconds to an aware datetime."""
    return _EPOCH + timedelta(milliseconds=ms)


def anchored_regex(pattern: str) -> str:
    """An RE2 pattern as a fully anchored PostgreSQL ARE (see the module docstring)."""
    prefix = ""
    m = _RE2_FLAGS.match(pattern)
    if m:
        flags = m.group(1).replace("s", "").replace("U", "")
        prefix = f"(?{flags})" if flags else ""
        pattern = pattern[m.end() :]
    return f"{prefix}^(?:{pattern})$"


class SeriesSql:
    """Builds a WHERE clause on ``series`` with numbered bind parameters (also used by ``web.reports``)."""

    def __init__(self, first: int = 1) -> None:
        self.params: list[Any] = []
        self._first = first

    def bind(self, value: Any) -> str:
        self.params.append(value)
        return f"${self._first + len(self.params) - 1}"

    def condition(self, m: LabelMatcher, alias: str = "s") -> str:
        if "\x00" in m.value:
            if m.op == "=":
                return "FALSE"
            if m.op == "!=":
                return "TRUE"
            raise BadData(f"cannot match label {m.name}: a regex must not contain NUL")
        if m.name == NAME:
            col = f"{alias}.metric"
        elif m.op == "=" and m.value:
            return f"{alias}.labels @> {self.bind(json.dumps({m.name: m.value}))}::jsonb"
        else:
            col = f"coalesce({alias}.labels->>{self.bind(m.name)}::text, '')"
        if m.op == "=":
            return f"{col} = {self.bind(m.value)}::text"
        if m.op == "!=":
            return f"{col} <> {self.bind(m.value)}::text"
        op = "~" if m.op == "=~" else "!~"
        return f"{col} {op} {self.bind(anchored_regex(m.value))}::text"

    def where(self, matchers: Sequence[LabelMatcher], alias: str = "s") -> str:
        conds = [self.condition(m, alias) for m in matchers]
        return " AND ".join(conds) if conds else "TRUE"

    def any_of(self, sets: Sequence[Sequence[LabelMatcher]], alias: str = "s") -> str:
        if not sets:
            return "TRUE"
        return "(" + " OR ".join(f"({self.where(ms, alias)})" for ms in sets) + ")"
