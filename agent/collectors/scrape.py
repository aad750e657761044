"""``application`` collector of kind ``scrape``: Prometheus/OpenMetrics endpoints, as Prometheus scrapes them.

Each cycle scrapes every target concurrently (``asyncio.gather``), each under
its own ``timeout``, so a hanging target costs its own ``up 0`` and nothing
else. Per target, with labels ``job`` and ``instance``, the cycle reports
what Prometheus reports:

=========================================  ======================================
``up``                                     1 if the page was fetched and parsed
``scrape_duration_seconds``                fetch plus parse
``scrape_samples_scraped``                 samples in the page
``scrape_samples_post_metric_relabeling``  samples kept after relabeling
=========================================  ======================================

followed, when ``up`` is 1, by the page's samples (see
``agent.collectors.scrape_page`` for parsing, label and relabel semantics).
A failed target (unreachable, timeout, HTTP status other than 200, malformed
page, ``sample_limit`` exceeded) yields only those four, with ``up 0``; the
scheduler then marks the target's previous series stale, as Prometheus does.
A failure is logged once per target when it starts and once when it
recovers. ``collect`` itself never raises for a target's failure.

Targets are ``http://`` or ``https://`` URLs, or ``host:port`` (then
``scheme`` and ``metrics_path`` complete the URL). ``instance`` is
``host:port``, with the scheme's default port filled in. More targets may
come from Prometheus file_sd files (``target_files``, via
``agent.targets.TargetSource``), re-checked every cycle; as in Prometheus,
a file's labels become target labels and win over ``job`` and ``instance``.
Two targets with the same labels would write the same series: among static
targets that is a config error, among file targets the later one is
skipped (logged once), as is a file target that is not a usable URL.

Differences from Prometheus, on purpose or for now: one connection per
scrape (no keep-alive), redirects are not followed (a 3xx is ``up 0``), no
proxy, no ``params``, no ``__address__``-style relabeling of targets.
``honor_labels`` governs the target labels (``job``, ``instance``, file
labels); the collector's ``labels`` and the host labels are added
afterwards by the scheduler, always as with ``honor_labels: false``.
Because the scheduler cancels a ``collect`` at its interval, the timeout
actually applied leaves a margin of 5% of the interval (at most half a
second) for parsing. The body is bounded (``body_size_limit``, 64 MiB by
default, where Prometheus has no default limit) so the agent's memory is.

Sample config::

    collectors:
      - type: application          # options.kind: scrape is the default
        name: apps
        interval: 15s
        targets:
          - http://127.0.0.1:9100/metrics
          - localhost:8080          # scheme + metrics_path complete it
        options:
          job: node                 # default: the collector's name
          timeout: 5s               # default: min(10s, interval)
          sample_limit: 10000
          metric_relabel_configs:
            - {source_labels: [__name__], regex: "go_gc_.*", action: drop}
            - {regex: "pod_uid", action: labeldrop}
          basic_auth: {username: vigil, password_file: /etc/vigil/scrape.pw}
          tls_config: {ca_file: /etc/vigil/ca.pem}
          target_files: [/etc/vigil/scrape.d/*.yaml]

Exceptions::

    ValueError                  (at build time) a bad option or target, named
    agent.http_client.HTTPClientError, TimeoutError,
    agent.collectors.scrape_page.PageError, ScrapeError
                                one target's scrape failed: caught, ``up 0``

    ScrapeError                 the target answered with a status other than 200
"""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass

from pydantic import ValidationError

from agent import http_client
from agent.collectors.base import Sample
from agent.collectors.scrape_options import (
    DEFAULT_TIMEOUT,
    MEDIA_TYPES,
    ScrapeOptions,
    ssl_context,
)
from agent.collectors.scrape_page import PageError, PageSpec, process_page
from agent.collectors.scrape_relabel import compile_rules
from agent.http_client import HTTPClientError, Target, parse_url
from agent.targets import Target as SourceTarget
from agent.targets import TargetSource
from shared.config.models import CollectorConfig
from shared.log import get_logger

log = get_logger(__name__)


class ScrapeError(Exception):
    """A target answered, but not with a page (HTTP status other than 200)."""


@dataclass(slots=True)
class _Target:
    url: Target
    shown: str
    """The URL, as logged."""
    labels: dict[str, str]
    spec: PageSpec
    key: frozenset[tuple[str, str]]
    """The target's identity: its labels (file_sd may list one URL with different labels)."""


class ScrapeCollector:
    """Scrapes its targets; one instance per configured collector.

    ``targets`` are the static targets (checked strictly: a bad one is a
    ``ValueError``); with ``options.target_files`` the file_sd targets are
    re-checked every cycle, and a bad or duplicate one there is logged once
    and skipped, never failing the cycle.
    """

    def __init__(
        self,
        options: ScrapeOptions,
        targets: list[str],
        *,
        name: str = "application",
        interval: float = 10.0,
    ) -> None:
        self.options = options
        self.name = name
        configured = (
            options.timeout if options.timeout is not None else min(DEFAULT_TIMEOUT, interval)
        )
        if configured > interval:
            raise ValueError(
                f"cannot configure collector {name!r}: options.timeout {configured:g}s is longer "
                f"than the interval {interval:g}s"
            )
        if configured <= 0:
            raise ValueError(f"cannot configure collector {name!r}: options.timeout must be > 0")
        self.timeout = min(configured, interval - min(0.5, 0.05 * interval))
        self._job = options.job or name
        self._rules = tuple(compile_rules(options.metric_relabel_configs))
        # A configured tls_config is loaded now, so a bad file fails the build, not a scrape.
        self._ssl = ssl_context(options.tls_config, name) if options.tls_config else None
        self._source = TargetSource(targets, options.target_files, owner=name)
        self._listed = self._source.targets
        self._skipped: set[str] = set()  # file targets logged as unusable
        self._duplicates_logged: set[frozenset[tuple[str, str]]] = set()
        self.targets: list[_Target] = self._build(self._listed, strict=True)
        self._headers = self._fixed_headers()
        self._failing: dict[frozenset[tuple[str, str]], str] = {}  # key -> reason, while failing

    def _build(self, listed: list[SourceTarget], *, strict: bool) -> list[_Target]:
        """The scrape targets of ``listed``: a URL each, and labels unique among them."""
        out: list[_Target] = []
        seen: dict[frozenset[tuple[str, str]], str] = {}  # label set -> target
        for item in listed:
            try:
                url = _target_url(item.target, self.options)
            except ValueError as exc:
                if strict:
                    raise ValueError(f"cannot configure collector {self.name!r}: {exc}") from exc
                self._skip(item.target, str(exc))
                continue
            # Prometheus: labels from the file win; job and instance fill in what they lack.
            labels = {"job": self._job, "instance": url.hostport, **item.labels}
            key = frozenset(labels.items())
            if key in seen:
                reason = (
                    f"targets {seen[key]!r} and {item.target!r} have the same labels "
                    f"(instance {labels['instance']}); scrape them from separate collectors "
                    "(each collector is one job) or give them different labels"
                )
                if strict:
                    raise ValueError(f"cannot configure collector {self.name!r}: {reason}")
                self._skip(item.target, reason)
                continue
            seen[key] = item.target
            spec = PageSpec(
                labels,
                honor_labels=self.options.honor_labels,
                honor_timestamps=self.options.honor_timestamps,
                rules=self._rules,
                sample_limit=self.options.sample_limit,
            )
            shown = f"{url.scheme}://{url.hostport}{url.path}"
            out.append(_Target(url, shown, labels, spec, key))
            if url.scheme == "https" and self._ssl is None:
                self._ssl = ssl_context(None, self.name)
        return out

    def _skip(self, target: str, reason: str) -> None:
        if target not in self._skipped:
            self._skipped.add(target)
            log.warning(
                "cannot use scrape target, skipping it",
                collector=self.name,
                target=target,
                reason=reason,
            )

    async def _refresh(self) -> None:
        listed = await asyncio.to_thread(self._source.refresh)
        if listed != self._listed:
            self._listed = listed
            self.targets = self._build(listed, strict=False)
            live = {t.key for t in self.targets}
            for gone in [t for t in self._failing if t not in live]:
                del self._failing[gone]

    def _fixed_headers(self) -> dict[str, str]:
        opts = self.options
        accept = ",".join(
            f"{MEDIA_TYPES[p]};q={0.5 - 0.1 * i:.1f}" if i else MEDIA_TYPES[p]
            for i, p in enumerate(opts.scrape_protocols)
        )
        headers = {
            "Accept": accept + ",*/*;q=0.1",
            "X-Prometheus-Scrape-Timeout-Seconds": f"{self.timeout:g}",
        }
        if opts.basic_auth is not None:
            password = opts.basic_auth.password
            secret = f"{opts.basic_auth.username}:{password.get_secret_value() if password else ''}"
            headers["Authorization"] = "Basic " + base64.b64encode(secret.encode()).decode()
        elif opts.bearer_token is not None:
            headers["Authorization"] = "Bearer " + opts.bearer_token.get_secret_value()
        return headers

    async def collect(self) -> list[Sample]:
        if self._source.patterns:
            await self._refresh()
        results = await asyncio.gather(*(self._scrape(t) for t in self.targets))
        return [s for samples in results for s in samples]

    async def close(self) -> None:
        """Nothing to release: each scrape opens and closes its own connection."""

    async def _scrape(self, target: _Target) -> list[Sample]:
        perf = time.perf_counter
        start = perf()
        try:
            async with asyncio.timeout(self.timeout):
                response = await http_client.get(
                    target.url,
                    headers=self._headers,
                    ssl_context=self._ssl,
                    server_hostname=self.options.tls_config.server_name
                    if self.options.tls_config
                    else None,
                    max_body_bytes=self.options.body_size_limit,
                    accept_gzip=self.options.enable_compression,
                )
            _check_status(response)
            page = await asyncio.to_thread(
                process_page, response.body, response.headers.get("content-type", ""), target.spec
            )
        except TimeoutError:
            return self._failed(target, f"no answer within {self.timeout:g}s", perf() - start)
        except (HTTPClientError, PageError, ScrapeError) as exc:
            return self._failed(target, str(exc), perf() - start)
        if self._failing:
            self._recovered(target)
        if page.duplicates and target.key not in self._duplicates_logged:
            self._duplicates_logged.add(target.key)
            log.warning(
                "target exposes duplicate series, keeping the first of each",
                collector=self.name,
                target=target.shown,
                duplicates=page.duplicates,
            )
        out = self._report(target, 1.0, perf() - start, page.scraped, len(page.samples))
        out.extend(page.samples)
        return out

    def _report(
        self, target: _Target, up: float, duration: float, scraped: int, kept: int
    ) -> list[Sample]:
        labels = target.labels
        return [
            Sample("up", labels, up, "gauge", "1 if the target was scraped, 0 if not."),
            Sample(
                "scrape_duration_seconds",
                labels,
                duration,
                "gauge",
                "Duration of the scrape.",
                "seconds",
            ),
            Sample(
                "scrape_samples_scraped",
                labels,
                float(scraped),
                "gauge",
                "Samples the target exposed.",
            ),
            Sample(
                "scrape_samples_post_metric_relabeling",
                labels,
                float(kept),
                "gauge",
                "Samples left after metric relabeling.",
            ),
        ]

    def _failed(self, target: _Target, reason: str, duration: float) -> list[Sample]:
        if target.key not in self._failing:
            log.warning(
                "cannot scrape target", collector=self.name, target=target.shown, reason=reason
            )
        self._failing[target.key] = reason
        return self._report(target, 0.0, duration, 0, 0)

    def _recovered(self, target: _Target) -> None:
        if self._failing.pop(target.key, None) is not None:
            log.info("target scraped again", collector=self.name, target=target.shown)


def _check_status(response: http_client.Response) -> None:
    if response.status != 200:
        reason = f"server returned HTTP status {response.status} {response.reason}"
        raise ScrapeError(reason.rstrip())


def _target_url(raw: str, options: ScrapeOptions) -> Target:
    text = raw.strip()
    if "://" not in text:
        text = f"{options.scheme}://{text}{options.metrics_path}"
    try:
        return parse_url(text)
    except ValueError as exc:
        raise ValueError(f"target {raw!r}: {exc}") from exc


def create(config: CollectorConfig) -> ScrapeCollector:
    """Build the scrape collector of ``config``; ``ValueError`` names a bad option or target."""
    name = config.effective_name
    try:
        options = ScrapeOptions.model_validate(config.options)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(["options", *(str(p) for p in first["loc"])])
        raise ValueError(f"cannot configure collector {name!r}: {where}: {first['msg']}") from exc
    return ScrapeCollector(
        options, list(config.targets), name=name, interval=config.effective_interval
    )
