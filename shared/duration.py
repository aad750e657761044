"""Prometheus-style durations: ``1h30m``, ``15s``, ``500ms``, ``3y``.

The grammar is Prometheus' (``model.ParseDuration``): one or more
``<integer><unit>`` terms with units in descending order, each at most once,
units ``y`` (365 d), ``w``, ``d``, ``h``, ``m``, ``s``, ``ms``. A bare number
is taken as seconds, as YAML configs often carry one. ``Duration`` is the
pydantic type for config fields: it accepts either and holds float seconds.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

_UNITS: dict[str, float] = {
    "y": 365 * 86400.0,
    "w": 7 * 86400.0,
    "d": 86400.0,
    "h": 3600.0,
    "m": 60.0,
    "s": 1.0,
    "ms": 0.001,
}
_ORDER = list(_UNITS)
_TERM = re.compile(r"(\d+)(ms|y|w|d|h|m|s)")


def parse_duration(text: str) -> float:
    """Return seconds for a Prometheus duration; raise ValueError naming the text."""
    if not text:
        raise ValueError("cannot parse duration: empty string")
    if text == "0":
        return 0.0
    pos = 0
    total = 0.0
    last = -1
    while pos < len(text):
        m = _TERM.match(text, pos)
        if m is None:
            raise ValueError(
                f"cannot parse duration {text!r}: expected <number><unit>, unit one of {'/'.join(_ORDER)}"
            )
        rank = _ORDER.index(m.group(2))
        if rank <= last:
            raise ValueError(
                f"cannot parse duration {text!r}: units must appear once, largest first"
            )
        last = rank
        total += int(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return total


def format_duration(seconds: float) -> str:
    """Format seconds the way Prometheus prints durations (``1h30m``, ``0s``)."""
    ms = round(seconds * 1000)
    if ms == 0:
        return "0s"
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    parts: list[str] = []
    for unit in _ORDER:
        size = round(_UNITS[unit] * 1000)
        if ms >= size:
            parts.append(f"{ms // size}{unit}")
            ms %= size
    return sign + "".join(parts)


def _coerce(value: object) -> float:
    if isinstance(value, bool):
        raise ValueError(  # noqa: TRY004 - pydantic turns ValueError, not TypeError, into a field error
            "cannot parse duration: expected a string like '30s' or a number of seconds"
        )
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("cannot parse duration: must not be negative")
        return float(value)
    if isinstance(value, str):
        return parse_duration(value.strip())
    raise ValueError("cannot parse duration: expected a string like '30s' or a number of seconds")


Duration = Annotated[
    float,
    BeforeValidator(_coerce),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
"""A config field holding seconds, written as ``"5m"`` or ``300``."""
