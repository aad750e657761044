"""Which series ended: Prometheus' staleness, as a pure state machine per collector.

Prometheus writes a staleness marker (``shared.wire.STALE_NAN``, exact bits)
for a series that a scrape no longer returns, so queries and alerts see it
end at once instead of after the five-minute lookback. The agent does the
same per collector:

- ``observe(seen)`` after a successful cycle: every series live after the
  previous successful cycle and missing from ``seen`` is returned (mark it
  stale at this cycle's timestamp); ``seen`` becomes the live set.
- ``failed()`` after a failed or timed-out cycle: nothing is returned and the
  live set is kept. A broken collector says nothing about its series; marking
  them would end every series of a flapping target.
- ``end()`` when the collector goes away (agent stop, reload that removes it):
  every live series is returned and the live set is emptied.

Series are keyed by metric name plus the *final* label set (after the
scheduler merged host and collector labels), so a relabelled series is a
different series. No clock, no I/O: the caller stamps the markers.
"""

from __future__ import annotations

from collections.abc import Mapping

SeriesKey = tuple[str, frozenset[tuple[str, str]]]
"""(metric name, label items); the identity of a series."""


def series_key(name: str, labels: Mapping[str, str]) -> SeriesKey:
    return (name, frozenset(labels.items()))


class StalenessTracker:
    """The live series of one collector; see the module docstring for the contract."""

    __slots__ = ("_live",)

    def __init__(self) -> None:
        self._live: dict[SeriesKey, Mapping[str, str]] = {}

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, key: object) -> bool:
        return key in self._live

    def observe(
        self, seen: dict[SeriesKey, Mapping[str, str]]
    ) -> list[tuple[str, Mapping[str, str]]]:
        """A successful cycle saw ``seen`` (key -> labels); return the series that disappeared.

        Takes ownership of ``seen``.
        """
        live = self._live
        gone = [(key[0], labels) for key, labels in live.items() if key not in seen]
        self._live = seen
        return gone

    def failed(self) -> list[tuple[str, Mapping[str, str]]]:
        """A failed cycle: nothing ends, the live set is kept."""
        return []

    def end(self) -> list[tuple[str, Mapping[str, str]]]:
        """The collector is gone: every live series ends."""
        gone = [(key[0], labels) for key, labels in self._live.items()]
        self._live = {}
        return gone
