"""StatsD aggregation as a pure state machine: lines in, Prometheus samples out, clock passed in.

Line syntax (Etsy StatsD plus DogStatsD's extensions)::

    <name>:<value>[:<value>...]|<type>[|@<sample rate>][|#<tag>:<value>,...]

=====  =================================================================
type   becomes
=====  =================================================================
``c``  counter ``<name>_total`` (``_total`` not doubled): cumulative sum of
       ``value / rate`` since the series appeared
``g``  gauge ``<name>``: set to ``value``; a leading ``+`` or ``-`` adds
       to the current value (so a negative gauge is set by ``0`` first,
       as in StatsD)
``ms`` histogram ``<name>`` (``_bucket{le}``, ``_sum``, ``_count``) of the
       value converted to **seconds**, name unchanged (as
       statsd_exporter does), buckets ``timer_buckets``
``h``,  histogram ``<name>`` of the value as sent, buckets
``d``  ``histogram_buckets``
=====  =================================================================

Timers and histograms are Prometheus histograms, not summaries: bucket
counts are cheap and fixed in size per series, aggregate across hosts, and
need no sliding window of observations. A sample rate weighs an
observation ``1/rate`` (count, sum and its bucket). DogStatsD tags are
labels; a tag without a value and other ``|`` sections (``|c:``, ``|T``)
are ignored. Names and label names are sanitised as for exec output (``.``
and ``-`` become ``_``; ``agent.collectors.exec_formats``).

A series not updated for ``ttl`` seconds is dropped (and then gets its
staleness marker from the scheduler); a counter that comes back starts
again from 0, which Prometheus' rate() reads as a reset. One name has one
type: a line of another type for a name in use is dropped (reason
``type_conflict``) until the name's series expire. At most ``max_series``
series (a name and tag set; a histogram counts once, whatever its buckets);
lines for new series beyond that are dropped (``series_limit``).
Malformed lines are dropped (``malformed``). Drops are counted by reason and
returned by ``samples`` as ``vigil_statsd_dropped_lines_total{reason}``, next
to ``vigil_statsd_lines_total`` (lines accepted).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from agent.collectors.base import Sample
from agent.collectors.exec_formats import sanitize_label_name, sanitize_metric_name

Kind = Literal["counter", "gauge", "timer", "histogram"]
Reason = Literal["malformed", "type_conflict", "series_limit"]
REASONS: Final[tuple[Reason, ...]] = ("malformed", "type_conflict", "series_limit")

DEFAULT_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Prometheus' default histogram buckets."""

_KINDS: Final[dict[str, Kind]] = {
    "c": "counter",
    "g": "gauge",
    "ms": "timer",
    "h": "histogram",
    "d": "histogram",
}
_MAX_LINE: Final = 4096

LabelKey = tuple[tuple[str, str], ...]


class Malformed(ValueError):
    """A line that does not parse (internal: counted, the first one logged)."""


@dataclass(slots=True)
class Line:
    """One parsed StatsD line."""

    name: str
    kind: Kind
    values: list[float]
    delta: bool
    rate: float
    labels: LabelKey


def parse_line(raw: str) -> Line:
    """One line; ``Malformed`` naming the problem."""
    if len(raw) > _MAX_LINE:
        raise Malformed("line too long")
    head, _, rest = raw.partition("|")
    name, sep, value_part = head.partition(":")
    if not sep or not name or not value_part:
        raise Malformed("expected <name>:<value>|<type>")
    sections = rest.split("|")
    kind = _KINDS.get(sections[0])
    if kind is None:
        raise Malformed(f"unsupported type {sections[0][:10]!r}")
    rate = 1.0
    labels: dict[str, str] = {}
    for section in sections[1:]:
        if section.startswith("@"):
            rate = _number(section[1:])
            if not 0 < rate <= 1:
                raise Malformed(f"sample rate {section[1:]!r} not in (0, 1]")
        elif section.startswith("#"):
            for tag in section[1:].split(","):
                key, colon, value = tag.partition(":")
                if colon and key and value:
                    labels[sanitize_label_name(key)] = value
    texts = value_part.split(":")
    delta = kind == "gauge" and texts[0][:1] in "+-"
    if kind == "gauge" and len(texts) > 1:
        raise Malformed("a gauge takes one value")
    values = [_number(t) for t in texts]
    return Line(
        sanitize_metric_name(name), kind, values, delta, rate, tuple(sorted(labels.items()))
    )


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise Malformed(f"invalid number {text[:20]!r}") from None
    if not math.isfinite(value):
        raise Malformed(f"invalid number {text[:20]!r}")
    return value


@dataclass(slots=True)
class _Series:
    updated: float
    value: float = 0.0  # counter total, gauge value, histogram sum
    count: float = 0.0
    buckets: list[float] = field(default_factory=list)  # per bucket, not cumulative; last is +Inf


class StatsdState:
    """Aggregated series; ``feed`` lines, ``samples`` the current state. ``now`` in seconds."""

    def __init__(
        self,
        *,
        ttl: float,
        max_series: int,
        timer_buckets: Sequence[float] = DEFAULT_BUCKETS,
        histogram_buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> None:
        self.ttl = ttl
        self.max_series = max_series
        self.timer_buckets = tuple(timer_buckets)
        self.histogram_buckets = tuple(histogram_buckets)
        self._le = {
            "timer": [*(_le(b) for b in self.timer_buckets), "+Inf"],
            "histogram": [*(_le(b) for b in self.histogram_buckets), "+Inf"],
        }
        self._series: dict[tuple[str, LabelKey], _Series] = {}
        self._kinds: dict[str, tuple[Kind, int]] = {}  # name -> (kind, live series)
        self.lines = 0
        self.dropped: dict[Reason, int] = dict.fromkeys(REASONS, 0)
        self.first_malformed: str | None = None

    def __len__(self) -> int:
        return len(self._series)

    def feed(self, packet: str, now: float) -> None:
        """Apply every line of one packet (newline-separated)."""
        for raw in packet.split("\n"):
            line = raw.strip()
            if not line:
                continue
            try:
                self.apply(parse_line(line), now)
            except Malformed as exc:
                self.dropped["malformed"] += 1
                if self.first_malformed is None:
                    self.first_malformed = f"{line[:200]!r}: {exc}"

    def apply(self, line: Line, now: float) -> None:
        """Apply one parsed line (or count why it is dropped)."""
        key = (line.name, line.labels)
        series = self._series.get(key)
        if series is None:
            known = self._kinds.get(line.name)
            if known is not None and known[0] != line.kind:
                self.dropped["type_conflict"] += 1
                return
            if len(self._series) >= self.max_series:
                self.dropped["series_limit"] += 1
                return
            series = _Series(now)
            if line.kind in ("timer", "histogram"):
                series.buckets = [0.0] * len(self._le[line.kind])
            self._series[key] = series
            self._kinds[line.name] = (line.kind, known[1] + 1 if known else 1)
        elif self._kinds[line.name][0] != line.kind:
            self.dropped["type_conflict"] += 1
            return
        self.lines += 1
        series.updated = now
        weight = 1.0 / line.rate
        if line.kind == "counter":
            series.value += sum(line.values) * weight
        elif line.kind == "gauge":
            series.value = series.value + line.values[0] if line.delta else line.values[0]
        else:
            bounds = self.timer_buckets if line.kind == "timer" else self.histogram_buckets
            for v in line.values:
                x = v / 1000.0 if line.kind == "timer" else v
                series.buckets[bisect_left(bounds, x)] += weight
                series.count += weight
                series.value += x * weight

    def expire(self, now: float) -> None:
        """Drop series not updated within ``ttl`` of ``now``."""
        cutoff = now - self.ttl
        for key in [k for k, s in self._series.items() if s.updated < cutoff]:
            del self._series[key]
            kind, n = self._kinds[key[0]]
            if n <= 1:
                del self._kinds[key[0]]
            else:
                self._kinds[key[0]] = (kind, n - 1)

    def samples(self, now: float) -> list[Sample]:
        """Expire, then every live series as samples (histograms cumulative), plus the line counts."""
        self.expire(now)
        out: list[Sample] = []
        for (name, labels), s in self._series.items():
            kind = self._kinds[name][0]
            lbl = dict(labels)
            if kind == "counter":
                total = name if name.endswith("_total") else name + "_total"
                out.append(Sample(total, lbl, s.value, "counter"))
            elif kind == "gauge":
                out.append(Sample(name, lbl, s.value, "gauge"))
            else:
                cumulative = 0.0
                for le, n in zip(self._le[kind], s.buckets, strict=True):
                    cumulative += n
                    out.append(Sample(name + "_bucket", {**lbl, "le": le}, cumulative, "histogram"))
                out.append(Sample(name + "_sum", lbl, s.value, "histogram"))
                out.append(Sample(name + "_count", lbl, s.count, "histogram"))
        out.append(
            Sample(
                "vigil_statsd_lines_total",
                {},
                float(self.lines),
                "counter",
                "StatsD lines applied.",
            )
        )
        for reason, n in self.dropped.items():
            out.append(
                Sample(
                    "vigil_statsd_dropped_lines_total",
                    {"reason": reason},
                    float(n),
                    "counter",
                    "StatsD lines dropped, by reason.",
                )
            )
        return out


def _le(bound: float) -> str:
    # The shortest form, without Python's trailing ".0" (1.0 -> "1", as Go clients print it).
    text = repr(float(bound))
    return text.removesuffix(".0")
