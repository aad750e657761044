"""``application`` collector of kind ``process``: per-group process statistics, process-exporter's names.

``targets`` name groups of processes (syntax in
``agent.collectors.process_match``: ``nginx``, ``re:^php``,
``cmdline:celery.*worker``, ``exe:/usr/sbin/sshd``, ``web=cmdline:gunicorn``).
Each cycle reports, per group, with label ``groupname``, the names
process-exporter (ncabatoff/process-exporter) uses, so its dashboards work:

=================================================  =======  =====================================
``namedprocess_namegroup_num_procs``               gauge    processes in the group (0 included)
``namedprocess_namegroup_cpu_seconds_total``       counter  ``mode`` user | system
``namedprocess_namegroup_memory_bytes``            gauge    ``memtype`` resident | virtual
``namedprocess_namegroup_open_filedesc``           gauge    open fds (of processes we may read)
``namedprocess_namegroup_num_threads``             gauge    threads
``namedprocess_namegroup_oldest_start_time_seconds``  gauge  start of the oldest process (Unix s)
=================================================  =======  =====================================

``num_procs`` is reported for every target, 0 when nothing matches, so
"nginx is not running" is an alert on ``== 0``. The other families are
reported only while the group has a process: when the last one ends they
stop, and the scheduler sends their staleness markers.
``cpu_seconds_total`` is the group's counter, as in process-exporter: a
process that ends leaves its CPU time in the group's total while the group
lives, so the counter does not drop when a worker is replaced. When the
group empties, its series end, and a later process starts a new one.

Cost: one ``psutil.process_iter()`` per cycle in a worker thread (psutil
keeps the ``Process`` objects between calls; a new PID costs one read). A
process is matched once, when first seen, and the result is kept with its
``Process`` object; only matched processes are read further, each under
``oneshot()``. Matches are redone every ``rematch_cycles`` cycles, for
processes that change their name or command line after start (setproctitle)
and for PIDs reused between two cycles. A process we may not read
(``AccessDenied``: another user's fds) contributes what it can; one that
ends during the read is skipped.

Sample config::

    collectors:
      - type: application
        name: processes
        interval: 15s
        targets: [nginx, "workers=cmdline:celery.*worker", "exe:/usr/sbin/sshd"]
        options: {kind: process}
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

import psutil
from pydantic import Field, ValidationError

from agent.collectors.base import Sample
from agent.collectors.process_match import Matcher, parse_targets
from shared.config.base import Section
from shared.config.models import CollectorConfig

PREFIX = "namedprocess_namegroup_"
_HELP = {
    "num_procs": "number of processes in this group",
    "cpu_seconds_total": "Cpu user usage in seconds",
    "memory_bytes": "number of bytes of memory in use",
    "open_filedesc": "number of open file descriptors for this group",
    "num_threads": "Number of threads",
    "oldest_start_time_seconds": "start time in seconds since 1970/01/01 of oldest process in group",
}
_GONE = (psutil.NoSuchProcess,)  # ZombieProcess is a NoSuchProcess


class ProcessOptions(Section):
    """``options`` of an ``application`` collector of kind ``process``."""

    kind: Literal["process"] = Field(default="process", description="Registry key: process.")
    rematch_cycles: int = Field(
        default=10,
        ge=1,
        description="Match every process again after this many cycles (catches renamed "
        "processes and reused PIDs); 1 matches every cycle.",
    )


@dataclass(slots=True)
class _Group:
    """One group's readings in one cycle."""

    procs: int = 0
    user: float = 0.0
    system: float = 0.0
    rss: float = 0.0
    vms: float = 0.0
    fds: float = 0.0
    threads: float = 0.0
    oldest: float | None = None


@dataclass(slots=True)
class _Counter:
    """A group's CPU counter across process lifetimes."""

    last: dict[psutil.Process, tuple[float, float]] = field(default_factory=dict)
    ended_user: float = 0.0
    ended_system: float = 0.0


ProcessIter = Callable[[], Iterable[psutil.Process]]


class ProcessCollector:
    """Collects the configured groups; ``collect_now`` is the synchronous cycle (tests, benchmarks).

    ``process_iter`` is injectable for tests; it must yield the same
    ``Process`` object for a process across calls, as ``psutil.process_iter`` does.
    """

    def __init__(
        self,
        options: ProcessOptions,
        matchers: list[Matcher],
        *,
        name: str = "process",
        process_iter: ProcessIter = psutil.process_iter,
    ) -> None:
        self.options = options
        self.name = name
        self.matchers = matchers
        self._iter = process_iter
        self._needs_cmdline = any(m.needs_cmdline for m in matchers)
        self._needs_exe = any(m.needs_exe for m in matchers)
        # pid -> (the Process object it was matched as, its group or None)
        self._known: dict[int, tuple[psutil.Process, str | None]] = {}
        self._counters: dict[str, _Counter] = {}
        self._labels = {m.group: _GroupLabels.of(m.group) for m in matchers}
        self._cycles = 0

    async def collect(self) -> list[Sample]:
        return await asyncio.to_thread(self.collect_now)

    async def close(self) -> None:
        """Nothing to release: psutil opens and closes /proc files within a cycle."""

    def collect_now(self) -> list[Sample]:
        """One cycle: read the matched processes and report every group."""
        self._cycles += 1
        if self._cycles % self.options.rematch_cycles == 0:
            self._known.clear()
        groups = {m.group: _Group() for m in self.matchers}
        seen: set[int] = set()
        live: dict[str, dict[psutil.Process, tuple[float, float]]] = {g: {} for g in groups}
        for proc, group in self._matched(seen):
            self._read(proc, groups[group], live[group])
        for pid in [p for p in self._known if p not in seen]:
            del self._known[pid]
        out: list[Sample] = []
        for group, stats in groups.items():
            self._samples(group, stats, live[group], out)
        return out

    # ------------------------------------------------------------------ matching

    def _matched(self, seen: set[int]) -> Iterator[tuple[psutil.Process, str]]:
        known = self._known
        for proc in self._iter():
            pid = proc.pid
            seen.add(pid)
            entry = known.get(pid)
            if entry is None or entry[0] is not proc:
                try:
                    group = self._match(proc)
                except _GONE:
                    continue
                except psutil.AccessDenied:
                    group = None
                known[pid] = (proc, group)
            else:
                group = entry[1]
            if group is not None:
                yield proc, group

    def _match(self, proc: psutil.Process) -> str | None:
        name = proc.name()
        cmdline: list[str] | None = None
        exe: str | None = None
        if self._needs_cmdline:
            try:
                cmdline = proc.cmdline()
            except psutil.AccessDenied:
                cmdline = None
        if self._needs_exe:
            try:
                exe = proc.exe()
            except psutil.AccessDenied:
                exe = None
        for m in self.matchers:
            if m.matches(name, cmdline, exe):
                return m.group
        return None

    # ------------------------------------------------------------------ reading

    def _read(
        self,
        proc: psutil.Process,
        stats: _Group,
        live: dict[psutil.Process, tuple[float, float]],
    ) -> None:
        try:
            with proc.oneshot():
                if not proc.is_running():  # the PID now belongs to another process
                    self._known.pop(proc.pid, None)
                    return
                cpu = proc.cpu_times()
                mem = proc.memory_info()
                threads = proc.num_threads()
                try:
                    fds = proc.num_fds()
                except psutil.AccessDenied:
                    fds = 0  # another user's process: its fds are not ours to count
                started = proc.create_time()
        except _GONE:
            return
        except psutil.AccessDenied:
            return  # hidepid or similar: the process is invisible to us beyond its name
        stats.procs += 1
        stats.user += cpu.user
        stats.system += cpu.system
        stats.rss += mem.rss
        stats.vms += mem.vms
        stats.fds += fds
        stats.threads += threads
        stats.oldest = started if stats.oldest is None else min(stats.oldest, started)
        live[proc] = (cpu.user, cpu.system)

    def _samples(
        self,
        group: str,
        stats: _Group,
        live: dict[psutil.Process, tuple[float, float]],
        out: list[Sample],
    ) -> None:
        labels = self._labels[group]
        out.append(
            Sample(PREFIX + "num_procs", labels.group, stats.procs, "gauge", _HELP["num_procs"])
        )
        if not stats.procs:
            self._counters.pop(group, None)  # the group's series end; a new one starts afresh
            return
        counter = self._counters.setdefault(group, _Counter())
        for proc, (user, system) in counter.last.items():
            if proc not in live:  # ended since the last cycle: keep its time in the group
                counter.ended_user += user
                counter.ended_system += system
        counter.last = live
        cpu_help = _HELP["cpu_seconds_total"]
        out += [
            Sample(
                PREFIX + "cpu_seconds_total",
                labels.user,
                counter.ended_user + stats.user,
                "counter",
                cpu_help,
                "seconds",
            ),
            Sample(
                PREFIX + "cpu_seconds_total",
                labels.system,
                counter.ended_system + stats.system,
                "counter",
                cpu_help,
                "seconds",
            ),
            Sample(
                PREFIX + "memory_bytes",
                labels.resident,
                stats.rss,
                "gauge",
                _HELP["memory_bytes"],
                "bytes",
            ),
            Sample(
                PREFIX + "memory_bytes",
                labels.virtual,
                stats.vms,
                "gauge",
                _HELP["memory_bytes"],
                "bytes",
            ),
            Sample(
                PREFIX + "open_filedesc", labels.group, stats.fds, "gauge", _HELP["open_filedesc"]
            ),
            Sample(
                PREFIX + "num_threads", labels.group, stats.threads, "gauge", _HELP["num_threads"]
            ),
            Sample(
                PREFIX + "oldest_start_time_seconds",
                labels.group,
                stats.oldest or 0.0,
                "gauge",
                _HELP["oldest_start_time_seconds"],
                "seconds",
            ),
        ]


@dataclass(frozen=True, slots=True)
class _GroupLabels:
    """Label maps of one group, built once: samples share them (they are read-only)."""

    group: dict[str, str]
    user: dict[str, str]
    system: dict[str, str]
    resident: dict[str, str]
    virtual: dict[str, str]

    @classmethod
    def of(cls, group: str) -> _GroupLabels:
        return cls(
            {"groupname": group},
            {"groupname": group, "mode": "user"},
            {"groupname": group, "mode": "system"},
            {"groupname": group, "memtype": "resident"},
            {"groupname": group, "memtype": "virtual"},
        )


def create(config: CollectorConfig) -> ProcessCollector:
    """Build the process collector of ``config``; ``ValueError`` names a bad option or target."""
    name = config.effective_name
    try:
        options = ProcessOptions.model_validate(config.options)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(["options", *(str(p) for p in first["loc"])])
        raise ValueError(f"cannot configure collector {name!r}: {where}: {first['msg']}") from exc
    if not config.targets:
        raise ValueError(
            f"cannot configure collector {name!r}: the process collector needs targets "
            "(process names or patterns)"
        )
    try:
        matchers = parse_targets(list(config.targets))
    except ValueError as exc:
        raise ValueError(f"cannot configure collector {name!r}: {exc}") from exc
    return ProcessCollector(options, matchers, name=name)
