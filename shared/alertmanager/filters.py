"""Query filters of the API: ``filter=`` matchers and the ``receiver`` regex.

``matches_filter`` is Alertmanager's ``matchFilterLabels``: every filter
matcher must match the value of its label in ``values``, except that
``name=""`` / ``name=~""`` also pass when the label is absent and
``name!=""`` / ``name!~""`` also pass when it is present. For alerts
``values`` are the labels; for silences each silence matcher's name maps to
its value (the pattern text), so ``alertname="X"`` finds the silences written
with ``alertname="X"``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from shared.alertmanager.apierrors import BadRequest
from shared.alertmanager.errors import MatcherError
from shared.alertmanager.matchers import LabelMatcher, parse_matchers


def parse_filter(values: Iterable[str]) -> list[LabelMatcher]:
    """Each ``filter=`` parameter holds one matcher (or a ``{...}`` list of them)."""
    out: list[LabelMatcher] = []
    for text in values:
        try:
            out += parse_matchers(text)
        except MatcherError as exc:
            raise BadRequest(f"cannot parse filter {text!r}: {exc}") from exc
    return out


def parse_receiver(pattern: str | None) -> re.Pattern[str] | None:
    """The ``receiver`` parameter as an anchored regex (``None``: no filter)."""
    if not pattern:
        return None
    try:
        return re.compile(f"^(?:{pattern})$")
    except re.error as exc:
        raise BadRequest(f"cannot parse receiver {pattern!r}: {exc}") from exc


def matches_filter(matchers: Iterable[LabelMatcher], values: Mapping[str, str]) -> bool:
    for m in matchers:
        present = m.name in values
        value = values.get(m.name, "")
        if m.op in ("!=", "!~"):
            if m.value == "" and present:
                continue
        elif m.value == "" and not present:
            continue
        if not m.matches(value):
            return False
    return True


def receivers_match(receivers: Iterable[str], pattern: re.Pattern[str] | None) -> bool:
    return pattern is None or any(pattern.match(r) for r in receivers)
