"""InfluxDB line protocol: a small, strict parser (no third-party dependency).

One point per line::

    measurement[,tag_key=tag_value...] field_key=field_value[,field_key=field_value...] [timestamp]

Rules, as InfluxDB 2's reference states them:

- **Escaping** with a backslash: in the measurement, comma and space; in tag
  keys, tag values and field keys, comma, equals sign and space; in string
  field values, double quote and backslash. A backslash before any other
  character is kept as it is (``a\\b`` is the three characters ``a\\b``).
- **Field values**: float (``1``, ``-1.5``, ``1e3``: a bare number is a float),
  integer (``1i``), unsigned integer (``1u``), string (``"text"``), boolean
  (``t``, ``T``, ``true``, ``True``, ``TRUE`` and the same for false). At
  least one field; ``inf`` and ``nan`` are not numbers in line protocol.
- **Timestamp**: an optional integer, in the writer's precision (nanoseconds
  by default); the caller converts it (``to_ms``).
- Lines that are empty or start with ``#`` are skipped. A newline inside a
  string field value is not supported (the line ends there), and neither are
  duplicate tag keys.

Errors::

    ValueError
     └── LineProtocolError   a line does not parse; ``line`` is its 1-based number
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final, Literal

FieldValue = float | int | bool | str
"""A parsed field: ``float``, ``int`` (from ``i`` or ``u``), ``bool`` or ``str``."""

Precision = Literal["ns", "us", "ms", "s"]

_MEASUREMENT_ESCAPES: Final = frozenset(", ")
_KEY_ESCAPES: Final = frozenset(",= ")
_FLOAT_RE: Final = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INT_RE: Final = re.compile(r"[+-]?\d+")
_UINT_RE: Final = re.compile(r"\d+")
_TRUE: Final = frozenset({"t", "T", "true", "True", "TRUE"})
_FALSE: Final = frozenset({"f", "F", "false", "False", "FALSE"})
_NS_PER: Final[dict[str, int]] = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}


class LineProtocolError(ValueError):
    """A line that does not parse. ``line`` is 1-based; the message names the line and the problem."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"cannot parse line protocol line {line}: {reason}")
        self.line = line
        self.reason = reason


@dataclass(slots=True)
class Point:
    """One parsed line. ``timestamp`` is as written (precision unknown to the parser)."""

    measurement: str
    tags: dict[str, str] = field(default_factory=dict)
    fields: dict[str, FieldValue] = field(default_factory=dict)
    timestamp: int | None = None


def to_ms(timestamp: int, precision: Precision = "ns") -> int:
    """A timestamp in ``precision`` units as Unix milliseconds (floored)."""
    return timestamp * _NS_PER[precision] // 1_000_000


def parse(text: str) -> list[Point]:
    """Every point of ``text``; ``LineProtocolError`` on the first line that does not parse."""
    points: list[Point] = []
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.strip(" \t\r")
        if not line or line.startswith("#"):
            continue
        try:
            points.append(_parse_line(line))
        except _Bad as exc:
            raise LineProtocolError(number, str(exc)) from None
    return points


class _Bad(Exception):
    """Internal: the reason a line is malformed, turned into ``LineProtocolError`` by ``parse``."""


def parse_line(line: str) -> Point:
    """One point from one line (no newline, not a comment); ``LineProtocolError`` if malformed."""
    try:
        return _parse_line(line)
    except _Bad as exc:
        raise LineProtocolError(1, str(exc)) from None


def _parse_line(line: str) -> Point:
    measurement, i = _token(line, 0, _MEASUREMENT_ESCAPES, ", ")
    if not measurement:
        raise _Bad("missing measurement")
    point = Point(measurement)
    i = _tags(line, i, point.tags)
    if i >= len(line) or line[i] != " ":
        raise _Bad("missing fields")
    i = _fields(line, _skip_spaces(line, i), point.fields)
    rest = line[i:].strip(" ")
    if rest:
        if not _INT_RE.fullmatch(rest):
            raise _Bad(f"invalid timestamp {rest[:40]!r}")
        point.timestamp = int(rest)
    return point


def _tags(line: str, i: int, tags: dict[str, str]) -> int:
    """Parse ``,k=v`` pairs from ``i`` into ``tags``; the index after them."""
    n = len(line)
    while i < n and line[i] == ",":
        key, i = _token(line, i + 1, _KEY_ESCAPES, ",= ")
        if not key:
            raise _Bad("empty tag key")
        if i >= n or line[i] != "=":
            raise _Bad(f"missing '=' after tag key {key!r}")
        value, i = _token(line, i + 1, _KEY_ESCAPES, ", ")
        if not value:
            raise _Bad(f"empty value of tag {key!r}")
        if key in tags:
            raise _Bad(f"duplicate tag key {key!r}")
        tags[key] = value
    return i


def _fields(line: str, i: int, fields: dict[str, FieldValue]) -> int:
    """Parse ``k=v[,k=v...]`` from ``i`` into ``fields``; the index after them."""
    n = len(line)
    while True:
        key, i = _token(line, i, _KEY_ESCAPES, ",= ")
        if not key:
            raise _Bad("empty field key")
        if i >= n or line[i] != "=":
            raise _Bad(f"missing '=' after field key {key!r}")
        fields[key], i = _field_value(line, i + 1)
        if i < n and line[i] == ",":
            i += 1
            continue
        return i


def _token(line: str, i: int, escapes: frozenset[str], stops: str) -> tuple[str, int]:
    """Unescaped text from ``i`` up to the first unescaped stop character (or the end)."""
    out: list[str] = []
    n = len(line)
    while i < n:
        c = line[i]
        if c == "\\" and i + 1 < n and line[i + 1] in escapes:
            out.append(line[i + 1])
            i += 2
            continue
        if c in stops:
            break
        out.append(c)
        i += 1
    return "".join(out), i


def _skip_spaces(line: str, i: int) -> int:
    while i < len(line) and line[i] == " ":
        i += 1
    return i


def _field_value(line: str, i: int) -> tuple[FieldValue, int]:
    n = len(line)
    if i < n and line[i] == '"':
        out: list[str] = []
        i += 1
        while i < n:
            c = line[i]
            if c == "\\" and i + 1 < n and line[i + 1] in '"\\':
                out.append(line[i + 1])
                i += 2
                continue
            if c == '"':
                return "".join(out), i + 1
            out.append(c)
            i += 1
        raise _Bad("unterminated string field value")
    end = i
    while end < n and line[end] not in ", ":
        end += 1
    raw = line[i:end]
    if not raw:
        raise _Bad("empty field value")
    return _scalar(raw), end


def _scalar(raw: str) -> FieldValue:
    last = raw[-1]
    if last == "i" and _INT_RE.fullmatch(raw[:-1]):
        return int(raw[:-1])
    if last == "u" and _UINT_RE.fullmatch(raw[:-1]):
        return int(raw[:-1])
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    if _FLOAT_RE.fullmatch(raw):
        return float(raw)
    raise _Bad(f"invalid field value {raw[:40]!r}")
