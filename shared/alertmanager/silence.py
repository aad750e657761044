"""Silences: which alerts they mute and when they are in force. Pure, the clock passed in.

A silence (``shared.wire.Silence``, Alertmanager's API v2 model) is

- *pending* before ``startsAt``, *active* from ``startsAt`` until ``endsAt``
  (exclusive), *expired* from ``endsAt`` on;
- matching an alert when every matcher matches its labels with
  ``shared.alertmanager.matchers`` semantics (absent label = ``""``, anchored regexes):
  ``isEqual: false`` negates (``!=``, ``!~``).

``validate`` applies Alertmanager's rules for a new silence: valid label names
and regexes, and at least one matcher that does not match the empty string (a
silence that would match every alert is refused).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Literal

from shared.alertmanager.errors import MatcherError
from shared.alertmanager.matchers import LABEL_NAME_RE, LabelMatcher, MatchType
from shared.wire import Matcher, Silence

SilenceState = Literal["pending", "active", "expired"]


def to_label_matcher(m: Matcher) -> LabelMatcher:
    op: MatchType
    op = ("=~" if m.is_equal else "!~") if m.is_regex else "=" if m.is_equal else "!="
    return LabelMatcher.make(m.name, op, m.value)


def state(silence: Silence, now: datetime) -> SilenceState:
    if now < silence.starts_at:
        return "pending"
    if now < silence.ends_at:
        return "active"
    return "expired"


def validate(silence: Silence) -> None:
    """Raise ``MatcherError`` if Alertmanager would refuse this silence."""
    matchers = []
    for m in silence.matchers:
        if not LABEL_NAME_RE.fullmatch(m.name):
            raise MatcherError(f"cannot accept silence {silence.id}: invalid label name {m.name!r}")
        matchers.append(to_label_matcher(m))
    if all(m.matches("") for m in matchers):
        raise MatcherError(
            f"cannot accept silence {silence.id}: at least one matcher must not match the empty string"
        )


class Silencer:
    """The current silences, compiled; answers which silences mute an alert at ``now``."""

    def __init__(self, silences: Iterable[Silence] = ()) -> None:
        self._silences: dict[str, tuple[Silence, tuple[LabelMatcher, ...]]] = {}
        for s in silences:
            self.put(s)

    def put(self, silence: Silence) -> None:
        """Add or replace a silence (``MatcherError`` if a regex does not compile)."""
        matchers = tuple(to_label_matcher(m) for m in silence.matchers)
        self._silences[silence.id] = (silence, matchers)

    def remove(self, silence_id: str) -> None:
        self._silences.pop(silence_id, None)

    def __len__(self) -> int:
        return len(self._silences)

    def silenced_by(self, labels: Mapping[str, str], now: datetime) -> list[str]:
        """Ids of the active silences that match ``labels``, sorted."""
        return sorted(
            sid
            for sid, (s, matchers) in self._silences.items()
            if state(s, now) == "active" and all(m.matches_labels(labels) for m in matchers)
        )
