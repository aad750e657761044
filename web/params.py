"""Request parameters as Prometheus' HTTP API reads them.

Times are RFC 3339 or Unix seconds as a float (``parseTime``), durations are
Prometheus durations or float seconds (``parseDuration``), ``match[]``
parameters are series selectors. Every failure is a ``BadData`` whose
message is Prometheus' (``invalid parameter "start": cannot parse "x" to a
valid timestamp``).

Parameters come from the query string and, for POST, from an
``application/x-www-form-urlencoded`` body, merged like Go's
``Request.ParseForm`` (body values first).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import promql_parser

from shared.duration import parse_duration
from shared.promql.errors import BadData
from shared.promql.storage import LabelMatcher, MatchOp

MIN_TIME_MS = int(datetime(1, 1, 2, tzinfo=UTC).timestamp() * 1000)
MAX_TIME_MS = int(datetime(9999, 12, 30, tzinfo=UTC).timestamp() * 1000)
"""The widest range the database driver can carry (Prometheus' is wider; no sample lies outside)."""

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
_PROM_MIN = "-292273086-05-16T16:47:06Z"
_PROM_MAX = "292277025-08-18T07:12:54.999999999Z"
_OPS: dict[str, MatchOp] = {
    "MatchOp.Equal": "=",
    "MatchOp.NotEqual": "!=",
    "MatchOp.Re": "=~",
    "MatchOp.NotRe": "!~",
}


class Params:
    """A request's parameters: the form body's values, then the query string's."""

    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        self._values: dict[str, list[str]] = {}
        for key, value in pairs:
            self._values.setdefault(key, []).append(value)

    @classmethod
    def parse(cls, query: str, body: bytes, content_type: str) -> Params:
        pairs: list[tuple[str, str]] = []
        if body and content_type.split(";", maxsplit=1)[0].strip().lower() == (
            "application/x-www-form-urlencoded"
        ):
            try:
                text = body.decode()
            except UnicodeDecodeError as exc:
                raise BadData(f"cannot parse form: {exc}") from exc
            pairs += parse_qsl(text, keep_blank_values=True)
        pairs += parse_qsl(query, keep_blank_values=True)
        return cls(pairs)

    def get(self, name: str) -> str | None:
        values = self._values.get(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return list(self._values.get(name, ()))


def _float_seconds(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def parse_time(name: str, text: str) -> int:
    """Prometheus' ``parseTime``: ms since the epoch, clamped to the range the database holds."""
    seconds = _float_seconds(text)
    if seconds is not None and not math.isnan(seconds) and "_" not in text:
        if math.isinf(seconds):
            return MAX_TIME_MS if seconds > 0 else MIN_TIME_MS
        whole = math.trunc(seconds)
        frac = round((seconds - whole) * 1000)
        return max(MIN_TIME_MS, min(MAX_TIME_MS, whole * 1000 + frac))
    if _RFC3339.fullmatch(text):
        try:
            dt = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
            return (delta.days * 86400 + delta.seconds) * 1000 + delta.microseconds // 1000
    if text == _PROM_MIN:
        return MIN_TIME_MS
    if text == _PROM_MAX:
        return MAX_TIME_MS
    raise BadData(f'invalid parameter "{name}": cannot parse "{text}" to a valid timestamp')


def time_param(params: Params, name: str, default: int) -> int:
    text = params.get(name)
    return default if text is None or text == "" else parse_time(name, text)


def parse_duration_ms(name: str, text: str) -> int:
    """Prometheus' ``parseDuration`` in milliseconds (truncated, as Go's Duration to ms)."""
    seconds = _float_seconds(text)
    if seconds is not None and "_" not in text:
        ns = seconds * 1e9
        if math.isnan(ns) or not -(2**63) <= ns <= 2**63 - 1:
            raise BadData(
                f'invalid parameter "{name}": cannot parse "{text}" to a valid duration. It overflows int64'
            )
        return int(ns) // 1_000_000 if ns >= 0 else -(int(-ns) // 1_000_000)
    try:
        return round(parse_duration(text) * 1000)
    except ValueError:
        pass
    raise BadData(f'invalid parameter "{name}": cannot parse "{text}" to a valid duration')


def parse_limit(params: Params) -> int | None:
    text = params.get("limit")
    if text is None or text == "":
        return None
    try:
        limit = int(text)
    except ValueError:
        raise BadData(
            f'invalid parameter "limit": cannot parse "{text}" to a valid limit'
        ) from None
    if limit < 0:
        raise BadData('invalid parameter "limit": limit must be non-negative')
    return limit or None


def _matcher(m: Any) -> LabelMatcher:
    return LabelMatcher(m.name, _OPS[str(m.op)], m.value)


def parse_selector(text: str) -> list[list[LabelMatcher]]:
    """A series selector as matcher sets (one per ``or`` alternative)."""
    try:
        expr = promql_parser.parse(text)
    except ValueError as exc:
        raise BadData(f'invalid parameter "match[]": {exc}') from exc
    if not isinstance(expr, promql_parser.VectorSelector):
        raise BadData(f'invalid parameter "match[]": expected a series selector, got "{text}"')
    name = [LabelMatcher("__name__", "=", expr.name)] if expr.name else []
    # With "or" the parser puts every alternative in or_matchers and none in matchers.
    alternatives = expr.matchers.or_matchers or [expr.matchers.matchers]
    sets = [name + [_matcher(m) for m in alt] for alt in alternatives]
    for ms in sets:
        if not any(_nonempty(m) for m in ms):
            raise BadData("match[] must contain at least one non-empty matcher")
    return sets


def _nonempty(m: LabelMatcher) -> bool:
    """Prometheus' ``!m.Matches("")``: the matcher rejects the empty value."""
    if m.op == "=":
        return m.value != ""
    if m.op == "!=":
        return m.value == ""
    try:
        hit = re.fullmatch(m.value, "") is not None
    except re.error:
        return True
    return not hit if m.op == "=~" else hit


def match_sets(params: Params) -> list[list[LabelMatcher]]:
    sets: list[list[LabelMatcher]] = []
    for text in params.all("match[]"):
        sets += parse_selector(text)
    return sets
