"""Text formats a custom command or a push may send, turned into ``Sample`` lists.

- **Prometheus text format** (0.0.4), parsed by prometheus-client's
  ``text_string_to_metric_families``, with corrections to what it returns:
  a counter declared without ``_total`` (``# TYPE foo counter`` / ``foo 1``)
  keeps its name ``foo`` (the parser would rename it ``foo_total``, which
  Prometheus does not), ``untyped`` is ``unknown``, and an empty label
  value means no label, as in Prometheus. Timestamps
  (milliseconds in the text) are kept as ``ts_ms``. A parse error names the
  line it happened on.
- **Influx line protocol** (``agent.lineprotocol``): each numeric field of a
  point is one sample named ``<measurement>_<field>``, its tags are labels,
  its timestamp (nanoseconds unless configured) is kept. Integers, unsigned
  integers and floats are values, booleans are 1/0, string fields are
  skipped and counted. (Telegraf's Prometheus output names a field called
  ``value`` after the measurement alone; here every field is suffixed, so a
  name never depends on which fields a line happens to carry.)

Names are made Prometheus-legal as Telegraf's and statsd_exporter's
Prometheus outputs do it: every character outside ``[a-zA-Z0-9_:]``
(``[a-zA-Z0-9_]`` for labels) becomes ``_`` and a leading digit gets a
``_`` in front; in addition a label name that would start with the
reserved ``__`` gets the prefix ``tag``. So ``cpu.load-1m`` becomes
``cpu_load_1m`` and the tag ``2nd`` becomes the label ``_2nd``.

``sniff`` tells the two formats apart for ``format: auto``.

Errors::

    ValueError
     ├── ExpositionError      Prometheus text that does not parse (message names the line)
     └── LineProtocolError    (agent.lineprotocol) a line protocol line that does not parse
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final, Literal, TextIO, cast

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_fd_to_metric_families

from agent import lineprotocol
from agent.collectors.base import Sample
from agent.lineprotocol import FieldValue, Precision
from shared.wire import MetricType

Format = Literal["prometheus", "influx"]

_NAME_BAD: Final = re.compile(r"[^a-zA-Z0-9_:]")
_LABEL_BAD: Final = re.compile(r"[^a-zA-Z0-9_]")
_TYPE_LINE: Final = re.compile(r"^[ \t]*#[ \t]+TYPE[ \t]+(\S+)[ \t]+counter[ \t]*$", re.MULTILINE)
_PROM_SAMPLE: Final = re.compile(
    r"[a-zA-Z_:][a-zA-Z0-9_:]*(?:\{.*\})?[ \t]+[^ \t=]+(?:[ \t]+-?\d+)?[ \t]*"
)
_TYPES: Final[dict[str, MetricType]] = {
    "counter": "counter",
    "gauge": "gauge",
    "histogram": "histogram",
    "gaugehistogram": "gaugehistogram",
    "summary": "summary",
    "info": "info",
    "stateset": "stateset",
    "untyped": "unknown",
    "unknown": "unknown",
}


class ExpositionError(ValueError):
    """Prometheus text that does not parse; the message names the line."""


def sanitize_metric_name(name: str) -> str:
    """``name`` made a legal Prometheus metric name (see the module docstring)."""
    out = _NAME_BAD.sub("_", name)
    if not out or out[0].isdigit():
        out = "_" + out
    return out


def sanitize_label_name(name: str) -> str:
    """``name`` made a legal, non-reserved Prometheus label name (see the module docstring)."""
    out = _LABEL_BAD.sub("_", name)
    if not out or out[0].isdigit():
        out = "_" + out
    if out.startswith("__"):
        out = "tag" + out
    return out


def sniff(text: str) -> Format:
    """Which format ``text`` is in, from its first ``# HELP``/``# TYPE`` line or sample line.

    A data line that reads as a Prometheus sample (a legal name, optional
    ``{labels}``, a value without ``=``, an optional integer timestamp) means
    Prometheus; anything else means line protocol, whose second token always
    holds an ``=``. No data line at all: Prometheus (an empty exposition).
    """
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split(None, 2)
            if len(parts) > 1 and parts[1] in ("HELP", "TYPE"):
                return "prometheus"
            continue
        return "prometheus" if _PROM_SAMPLE.fullmatch(line) else "influx"
    return "prometheus"


@dataclass(slots=True)
class Family:
    """One metric family of an exposition; ``name`` as prometheus-client names families."""

    name: str
    type: MetricType
    help: str | None
    samples: list[Sample] = field(default_factory=list)


class _Lines:
    """Iterates the lines of a text, remembering the number of the current one."""

    def __init__(self, text: str) -> None:
        self.number = 0
        self._lines = text.splitlines(keepends=True)

    def __iter__(self) -> Iterator[str]:
        for line in self._lines:
            self.number += 1
            yield line


def declared_counters(text: str) -> set[str]:
    """Names given as counters by ``# TYPE`` lines, as written (with or without ``_total``)."""
    return set(_TYPE_LINE.findall(text))


def exposed_name(family: str, sample: str, mtype: str, declared: set[str]) -> str:
    """The sample name as the page wrote it.

    prometheus-client renames the samples of ``# TYPE foo counter`` to
    ``foo_total``; Prometheus keeps ``foo``, and so must we.
    """
    if mtype == "counter" and family in declared and sample == family + "_total":
        return family
    return sample


def parse_families(text: str) -> list[Family]:
    """Every family of a Prometheus text exposition; ``ExpositionError`` naming the bad line."""
    declared = declared_counters(text)
    lines = _Lines(text)
    try:
        out = [
            _family(metric, declared) for metric in text_fd_to_metric_families(cast(TextIO, lines))
        ]
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        reason = str(exc) or "malformed line"
        raise ExpositionError(
            f"cannot parse Prometheus text at line {lines.number}: {reason}"
        ) from exc
    return out


def _family(metric: Metric, declared: set[str]) -> Family:
    mtype = _TYPES.get(metric.type)
    if mtype is None:
        raise ValueError(f"unknown metric type {metric.type!r}")
    fam = Family(metric.name, mtype, metric.documentation or None)
    for s in metric.samples:
        name = exposed_name(metric.name, s.name, mtype, declared)
        ts_ms = None
        if s.timestamp is not None:
            ts = float(cast(float, s.timestamp))
            if not math.isfinite(ts):
                raise ValueError(f"invalid timestamp of {name}")
            ts_ms = round(ts * 1000)
        labels = s.labels
        if "" in labels.values():  # an empty label value is no label, as in Prometheus
            labels = {k: v for k, v in labels.items() if v}
        fam.samples.append(Sample(name, labels, float(s.value), mtype, fam.help, ts_ms=ts_ms))
    return fam


def parse_prometheus(text: str) -> list[Sample]:
    """Every sample of a Prometheus text exposition; ``ExpositionError`` naming the bad line."""
    return [s for fam in parse_families(text) for s in fam.samples]


def influx_samples(
    points: list[lineprotocol.Point], precision: Precision = "ns"
) -> tuple[list[Sample], int]:
    """Samples of line-protocol ``points`` (see the module docstring), and the fields skipped."""
    out: list[Sample] = []
    skipped = 0
    for p in points:
        labels = {sanitize_label_name(k): v for k, v in p.tags.items()}
        base = p.measurement
        ts_ms = None if p.timestamp is None else lineprotocol.to_ms(p.timestamp, precision)
        for key, value in p.fields.items():
            number = _number(value)
            if number is None:
                skipped += 1
                continue
            out.append(
                Sample(
                    sanitize_metric_name(f"{base}_{key}"), labels, number, "unknown", ts_ms=ts_ms
                )
            )
    return out, skipped


def _number(value: FieldValue) -> float | None:
    if isinstance(value, str):
        return None
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    return float(value)


def first_of_each_series(samples: list[Sample]) -> list[Sample]:
    """``samples`` without repeats of a series (name, labels, timestamp); the first one wins.

    Prometheus keeps the first of duplicate samples in a scrape and drops the rest.
    """
    seen: set[tuple[str, frozenset[tuple[str, str]], int | None]] = set()
    out: list[Sample] = []
    for s in samples:
        key = (s.name, frozenset(s.labels.items()), s.ts_ms)
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out
