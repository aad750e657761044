"""The ``network`` collector: blackbox_exporter's probes of ``targets``, from the agent.

Each target is probed once per interval with a *module*: a prober (``http``,
``tcp``, ``dns``, ``icmp``) and its settings, written exactly as a module of
blackbox's ``blackbox.yml`` (so existing modules paste in). Four modules are
built in and may be redefined under ``options.modules``:

============  ======  ==================================================
module        prober  what it checks
============  ======  ==================================================
http_2xx      http    GET the URL (``http://`` added when absent), 2xx
tcp_connect   tcp     a TCP connect to ``host:port``
icmp          icmp    one echo reply from the host
dns           dns     the server at ``host[:port]`` answers ``. NS`` NOERROR
============  ======  ==================================================

Which module probes a target, first that applies:

1. the target names it: ``tcp_connect:db.example.org:5432``,
   ``http_2xx:https://example.org`` (the prefix counts only when it is a
   module's name, so ``localhost:8080`` is a plain target);
2. ``options.probes``: a list of ``{target, module}`` mappings, probed in
   addition to ``targets``;
3. ``options.module``, default ``http_2xx``.

Samples are what a Prometheus scrape of blackbox's ``/probe`` gives, with
the labels its usual relabelling sets: ``instance`` (the target as written,
without a module prefix), ``module`` (the module's name) and ``job``
(``options.job``, default the collector's name; set it there, not in the
collector's ``labels``, where a ``job`` would win and push ours to
``exported_job`` as Prometheus' ``honor_labels: false`` does). Names, types,
help texts and label names are blackbox 0.23's, checked against the real one
by ``tests/compat/test_blackbox_exporter.py``. Every probe reports
``probe_success`` and ``probe_duration_seconds``; a probe that fails reports
what it measured before it failed.

Concurrency and time: every target is probed concurrently, each within its
own timeout: the module's ``timeout`` when set, capped by a budget a little
under the interval (``interval - min(1 s, interval/10)``), so a hanging
target costs only its own ``probe_success 0`` and never the cycle. A failing
probe is logged once when it starts failing (with its reason) and once when
it recovers; ``collect`` itself never raises for a target's failure.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import ssl
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agent.collectors.base import Sample
from agent.collectors.probe_base import ProbeFailed, ProbeResult
from agent.collectors.probe_dns import DnsSettings, probe_dns
from agent.collectors.probe_http import HttpSettings, probe_http
from agent.collectors.probe_icmp import IcmpSettings, probe_icmp
from agent.collectors.probe_tcp import TcpSettings, probe_tcp
from agent.targets import Target, TargetSource
from shared.config.models import CollectorConfig
from shared.duration import Duration
from shared.log import get_logger

log = get_logger(__name__)

Prober = Literal["http", "tcp", "dns", "icmp"]
_MODULE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_RESERVED = frozenset({"http", "https"})  # URL schemes: "https://x" must stay a target


class Module(BaseModel):
    """One probe module, as in blackbox's ``modules:``; only its prober's section is used."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prober: Prober = Field(description="http, tcp, dns or icmp.")
    timeout: Duration | None = Field(
        default=None,
        description="Give up on a probe after this long; capped by (and defaulting to) a "
        "budget a little under the collector's interval.",
    )
    http: HttpSettings = Field(default_factory=HttpSettings, description="http prober settings.")
    tcp: TcpSettings = Field(default_factory=TcpSettings, description="tcp prober settings.")
    dns: DnsSettings = Field(default_factory=DnsSettings, description="dns prober settings.")
    icmp: IcmpSettings = Field(default_factory=IcmpSettings, description="icmp prober settings.")

    @field_validator("timeout")
    @classmethod
    def _positive(cls, v: float | None) -> float | None:
        if v is not None and v <= 0:
            raise ValueError("timeout must be positive")
        return v

    def run(self, target: str, result: ProbeResult) -> Awaitable[None]:
        """The probe of ``target`` with this module's prober."""
        if self.prober == "http":
            return probe_http(target, self.http, result)
        if self.prober == "tcp":
            return probe_tcp(target, self.tcp, result)
        if self.prober == "dns":
            return probe_dns(target, self.dns, result)
        return probe_icmp(target, self.icmp, result)


DEFAULT_MODULES: dict[str, Module] = {
    "http_2xx": Module(prober="http"),
    "tcp_connect": Module(prober="tcp"),
    "icmp": Module(prober="icmp"),
    "dns": Module(prober="dns", dns=DnsSettings(query_name=".", query_type="NS")),
}
"""Built-in modules; ``options.modules`` adds to them or replaces one by name."""


class ProbeSpec(BaseModel):
    """A target with its module (``options.probes``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: str = Field(min_length=1, description="What to probe, as in ``targets``.")
    module: str = Field(description="Name of a built-in or configured module.")


class NetworkOptions(BaseModel):
    """``options`` of a ``type: network`` collector."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["network"] | None = Field(
        default=None, description="Registry key; the only kind of the network type is network."
    )
    module: str = Field(default="http_2xx", description="Module of targets that do not name one.")
    modules: dict[str, Module] = Field(
        default_factory=dict,
        description="Modules by name, blackbox.yml's syntax; added to the built-in ones "
        "(http_2xx, tcp_connect, icmp, dns), replacing one of the same name.",
    )
    probes: list[ProbeSpec] = Field(
        default_factory=list, description="More targets, each with its module."
    )
    job: str | None = Field(
        default=None, description="Value of the job label; default: the collector's name."
    )
    target_files: list[str] = Field(
        default_factory=list,
        description="Globs of Prometheus file_sd files (YAML or JSON) with more targets, "
        "re-read when they change; a file target may name its module (``icmp:10.0.0.1``) and "
        "its file labels are added to its samples.",
    )

    @field_validator("modules")
    @classmethod
    def _names(cls, v: dict[str, Module]) -> dict[str, Module]:
        for name in v:
            if not _MODULE_NAME.fullmatch(name) or name in _RESERVED:
                raise ValueError(
                    f"module name {name!r} must be letters, digits, '_', '.', '-' and not http(s)"
                )
        return v

    def all_modules(self) -> dict[str, Module]:
        return {**DEFAULT_MODULES, **self.modules}


@dataclass(frozen=True, slots=True)
class Probe:
    """One target with its module, its labels and its timeout in seconds."""

    target: str
    module_name: str
    module: Module
    timeout: float
    labels: dict[str, str]


def budget(interval: float) -> float:
    """Longest a probe may run in a cycle of ``interval`` seconds: a little under it."""
    return interval - min(1.0, interval / 10)


def plan(targets: list[str], options: NetworkOptions, *, interval: float, job: str) -> list[Probe]:
    """The probes of one cycle; ``ValueError`` naming an unknown module or a repeated probe."""
    modules = options.all_modules()
    if options.module not in modules:
        raise ValueError(f"options.module {options.module!r} is not a module: {_known(modules)}")
    wanted: list[tuple[str, str]] = []
    for raw in targets:
        prefix, sep, rest = raw.partition(":")
        if sep and prefix in modules and rest:
            wanted.append((rest, prefix))
        else:
            wanted.append((raw, options.module))
    for spec in options.probes:
        if spec.module not in modules:
            raise ValueError(
                f"options.probes: module {spec.module!r} of {spec.target!r} is not a module: "
                f"{_known(modules)}"
            )
        wanted.append((spec.target, spec.module))
    cap = budget(interval)
    probes: list[Probe] = []
    seen: set[tuple[str, str]] = set()
    for target, name in wanted:
        if not target.strip():
            raise ValueError("a target is empty")
        if (target, name) in seen:
            raise ValueError(f"target {target!r} is probed twice with module {name}")
        seen.add((target, name))
        module = modules[name]
        timeout = min(module.timeout, cap) if module.timeout else cap
        labels = {"instance": target, "module": name, "job": job}
        probes.append(Probe(target, name, module, timeout, labels))
    return probes


def _known(modules: dict[str, Module]) -> str:
    return ", ".join(sorted(modules))


class NetworkCollector:
    """Probes every planned target concurrently each cycle; one instance per collector."""

    def __init__(
        self,
        probes: list[Probe],
        name: str = "network",
        *,
        files: FileTargets | None = None,
    ) -> None:
        self.probes = probes
        self.name = name
        self._files = files
        self._failing: dict[tuple[str, str], str] = {}  # (target, module) -> reason

    async def collect(self) -> list[Sample]:
        probes = self.probes
        if self._files is not None:
            static = {(p.target, p.module_name) for p in probes}
            extra = await asyncio.to_thread(self._files.probes)
            probes = probes + [p for p in extra if (p.target, p.module_name) not in static]
        results = await asyncio.gather(*(self.run(p) for p in probes))
        return [s for samples in results for s in samples]

    async def close(self) -> None:
        """Nothing to release: every probe closes its sockets before it returns."""

    async def run(self, probe: Probe) -> list[Sample]:
        """One probe's samples, ``probe_success`` first; never raises for the target's failure."""
        result = ProbeResult()
        result.set("probe_success", 0.0)
        result.set("probe_duration_seconds", 0.0)
        start = time.perf_counter()
        reason: str | None = None
        try:
            async with asyncio.timeout(probe.timeout):
                await probe.module.run(probe.target, result)
        except ProbeFailed as exc:
            reason = str(exc)
        except TimeoutError:
            reason = f"no result within the probe timeout of {probe.timeout:g} s"
        except (OSError, ssl.SSLError) as exc:
            reason = str(exc) or type(exc).__name__
        except Exception as exc:  # noqa: BLE001 - one prober's bug must not cost the other targets
            reason = f"BUG: {probe.module.prober} prober raised {type(exc).__name__}: {exc}"
        result.set("probe_duration_seconds", time.perf_counter() - start)
        result.set("probe_success", 0.0 if reason else 1.0)
        self._note(probe, reason)
        return result.samples(probe.labels)

    def _note(self, probe: Probe, reason: str | None) -> None:
        key = (probe.target, probe.module_name)
        if reason is None:
            if self._failing.pop(key, None) is not None:
                log.info(
                    "probe succeeds again",
                    collector=self.name,
                    target=probe.target,
                    module=probe.module_name,
                )
            return
        if key not in self._failing:
            log.warning(
                "probe failed",
                collector=self.name,
                target=probe.target,
                module=probe.module_name,
                reason=reason,
            )
        self._failing[key] = reason

    def failing(self) -> dict[tuple[str, str], str]:
        """Probes failing now, (target, module) -> the reason; for tests and status pages."""
        return dict(self._failing)


class FileTargets:
    """Probes of the targets in ``options.target_files``, planned as the files change."""

    def __init__(self, options: NetworkOptions, *, interval: float, job: str, owner: str) -> None:
        self._source = TargetSource([], options.target_files, owner=owner)
        self._options = options.model_copy(update={"probes": []})
        self._interval = interval
        self._job = job
        self._owner = owner
        self._planned: dict[tuple[str, tuple[tuple[str, str], ...]], Probe | None] = {}

    def probes(self) -> list[Probe]:
        """Re-check the files (blocking: stat and read) and return their probes."""
        targets = self._source.refresh()
        planned: dict[tuple[str, tuple[tuple[str, str], ...]], Probe | None] = {}
        for t in targets:
            key = (t.target, tuple(sorted(t.labels.items())))
            planned[key] = self._planned[key] if key in self._planned else self._plan(t)
        self._planned = planned
        return [p for p in planned.values() if p is not None]

    def _plan(self, t: Target) -> Probe | None:
        try:
            [probe] = plan([t.target], self._options, interval=self._interval, job=self._job)
        except ValueError as exc:
            log.warning(
                "cannot probe file target", collector=self._owner, target=t.target, reason=str(exc)
            )
            return None
        # file labels describe the target; instance, module and job stay the probe's own
        return dataclasses.replace(probe, labels={**t.labels, **probe.labels})


def create(config: CollectorConfig) -> NetworkCollector:
    """Build the network collector of ``config``; ``ValueError`` names a bad option or target."""
    name = config.effective_name
    try:
        options = NetworkOptions.model_validate(config.options)
    except ValidationError as exc:
        raise ValueError(f"cannot configure collector {name!r}: options: {exc}") from exc
    try:
        probes = plan(
            config.targets,
            options,
            interval=config.effective_interval,
            job=options.job or name,
        )
    except ValueError as exc:
        raise ValueError(f"cannot configure collector {name!r}: {exc}") from exc
    files = None
    if options.target_files:
        files = FileTargets(
            options, interval=config.effective_interval, job=options.job or name, owner=name
        )
    return NetworkCollector(probes, name=name, files=files)
