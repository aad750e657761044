"""One scraped page to samples: parse, attach target labels, relabel, enforce the limit.

Parsing is prometheus-client's: ``prometheus_client.parser`` for the
Prometheus text format (0.0.4) and ``prometheus_client.openmetrics.parser``
for OpenMetrics (chosen by the response's ``Content-Type``, as Prometheus
does). The steps after it follow Prometheus' scrape loop, sample by sample:

1. empty label values are dropped (empty means absent);
2. target labels (``job``, ``instance``) are attached: with
   ``honor_labels: false`` they win and a clashing scraped label is kept as
   ``exported_<name>`` (``exported_exported_<name>`` if that is taken too);
   with ``honor_labels: true`` the scraped value wins;
3. ``metric_relabel_configs`` run with ``__name__`` as the metric name;
   a series whose rules drop it, or whose name they remove or make invalid,
   is not kept (Prometheus would fail the scrape on a missing name);
4. a series met a second time in the page (after relabeling) is dropped,
   the first kept, as Prometheus does with duplicate samples;
5. ``sample_limit``: more samples than this after relabeling fails the
   whole page (``SampleLimitExceeded``), as in Prometheus.

Metadata: every sample of a family carries the family's type (``untyped``
becomes ``unknown``), help and unit (OpenMetrics only), so ``h_bucket``,
``h_sum`` and ``h_count`` all say ``histogram``. OpenMetrics ``_created``
samples are not kept as series (Prometheus' default). Exemplars are ignored.
Timestamps in the page are kept in milliseconds with ``honor_timestamps``.

This runs in a worker thread: it is pure CPU and touches no shared state.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import parser as openmetrics_parser
from prometheus_client.parser import text_string_to_metric_families

from agent.collectors.base import Sample
from agent.collectors.exec_formats import declared_counters, exposed_name
from agent.collectors.scrape_relabel import NAME, Rule, relabel
from shared.wire import METRIC_NAME_RE, METRIC_TYPES, MetricType

_CREATED_TYPES = frozenset(("counter", "histogram", "summary", "gaugehistogram"))


class PageError(ValueError):
    """The page cannot be used; the message says why (malformed, over the limit)."""


class MalformedPage(PageError):
    """The page is not valid exposition text."""


class SampleLimitExceeded(PageError):
    """More samples than ``sample_limit`` after relabeling."""


@dataclass(frozen=True, slots=True)
class PageSpec:
    """How one target's pages become samples; built once per target."""

    target_labels: Mapping[str, str]
    honor_labels: bool = False
    honor_timestamps: bool = True
    rules: tuple[Rule, ...] = ()
    sample_limit: int = 0
    """0: no limit."""


@dataclass(slots=True)
class PageResult:
    samples: list[Sample]
    scraped: int
    """Samples in the page, before relabeling (``scrape_samples_scraped``)."""
    duplicates: int = 0
    """Samples dropped because an earlier one in the page had the same name and labels."""


def is_openmetrics(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "application/openmetrics-text"


def process_page(body: bytes, content_type: str, spec: PageSpec) -> PageResult:
    """The samples of one page; ``PageError`` if it is malformed or over the limit."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedPage(f"page is not UTF-8: {exc}") from exc
    openmetrics = is_openmetrics(content_type)
    try:
        if openmetrics:
            # The OpenMetrics parser is not annotated; it yields Metric objects.
            parse = openmetrics_parser.text_string_to_metric_families
            families: Iterable[Metric] = list(parse(text))  # type: ignore[no-untyped-call]
        else:
            families = list(text_string_to_metric_families(text))
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        fmt = "OpenMetrics" if openmetrics else "Prometheus text"
        raise MalformedPage(f"cannot parse {fmt} page: {str(exc)[:200]}") from exc
    # OpenMetrics requires counters to end in _total, so only the text format needs this.
    declared = set() if openmetrics else declared_counters(text)
    return _samples(families, spec, openmetrics=openmetrics, declared=declared)


def _samples(
    families: Iterable[Metric], spec: PageSpec, *, openmetrics: bool, declared: set[str]
) -> PageResult:
    out: list[Sample] = []
    scraped = duplicates = 0
    seen: set[tuple[str, frozenset[tuple[str, str]]]] = set()
    target = spec.target_labels
    rules = list(spec.rules)
    honor = spec.honor_labels
    for family in families:
        mtype: MetricType = family.type if family.type in METRIC_TYPES else "unknown"  # type: ignore[assignment]
        help_ = family.documentation or None
        unit = family.unit or None
        skip_created = openmetrics and mtype in _CREATED_TYPES
        for s in family.samples:
            if skip_created and s.name.endswith("_created"):
                continue
            scraped += 1
            labels = {k: v for k, v in s.labels.items() if v}
            _attach(labels, target, honor=honor)
            name = exposed_name(family.name, s.name, mtype, declared)
            if rules:
                labels[NAME] = name
                if relabel(labels, rules) is None:
                    continue
                name = labels.pop(NAME, "")
                if not METRIC_NAME_RE.fullmatch(name):
                    continue
            key = (name, frozenset(labels.items()))
            if key in seen:
                duplicates += 1
                continue
            seen.add(key)
            out.append(
                Sample(
                    name,
                    labels,
                    float(s.value),
                    mtype,
                    help_,
                    unit,
                    _ts_ms(s.timestamp) if spec.honor_timestamps else None,
                )
            )
    if spec.sample_limit and len(out) > spec.sample_limit:
        raise SampleLimitExceeded(
            f"sample limit exceeded: {len(out)} samples after relabeling, limit {spec.sample_limit}"
        )
    return PageResult(out, scraped, duplicates)


def _attach(labels: dict[str, str], target: Mapping[str, str], *, honor: bool) -> None:
    if honor:
        for key, value in target.items():
            if key not in labels:
                labels[key] = value
        return
    clashes: list[tuple[str, str]] = []
    for key, value in target.items():
        mine = labels.get(key)
        if mine:
            clashes.append((key, mine))
        labels[key] = value
    for key, mine in clashes:
        exported = key
        while True:
            exported = "exported_" + exported
            if exported not in labels:
                labels[exported] = mine
                break


def _ts_ms(ts: object) -> int | None:
    if ts is None:
        return None
    sec = getattr(ts, "sec", None)
    if sec is not None:  # openmetrics' Timestamp(sec, nsec)
        return int(sec) * 1000 + int(getattr(ts, "nsec", 0)) // 1_000_000
    if isinstance(ts, int | float) and math.isfinite(ts):
        return round(ts * 1000)  # the text parser gives float seconds of a ms value
    return None
