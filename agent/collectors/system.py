"""The ``system`` collector: this host's metrics under node_exporter's names.

Names, types, help texts and labels are node_exporter 1.5's (checked against
the real one by ``tests/compat/test_node_exporter.py``), grouped in families
named after node_exporter's collectors:

=============  ==========================================  =======================
family         metrics                                     source
=============  ==========================================  =======================
cpu            node_cpu_seconds_total{cpu,mode},           /proc/stat
               node_cpu_guest_seconds_total{cpu,mode}
stat           node_boot_time_seconds, node_intr_total,    /proc/stat
               node_context_switches_total,
               node_forks_total, node_procs_running,
               node_procs_blocked
loadavg        node_load1, node_load5, node_load15         /proc/loadavg
meminfo        node_memory_<Field>[_bytes] (every field)   /proc/meminfo
diskstats      node_disk_*{device}                         /proc/diskstats
netdev         node_network_{receive,transmit}_*_total     /proc/net/dev
netstat        node_netstat_<Proto>_<Field> (untyped)      /proc/net/snmp
time           node_time_seconds,                          clock
               node_time_zone_offset_seconds{time_zone}
uname          node_uname_info{sysname,release,...}        uname(2)
filesystem     node_filesystem_*{device,fstype,            /proc/1/mounts, statvfs
               mountpoint}
=============  ==========================================  =======================

A cycle reads each file once (/proc/stat serves two families), all in one
worker thread, and builds ``Sample`` objects directly, without psutil.
Label maps are cached and shared between samples and cycles: they are
read-only (``Sample.labels`` is a ``Mapping``).

Errors: each family succeeds or fails on its own. A family that fails (a file
missing or unreadable, a line that does not parse) contributes no sample to
the cycle, all others do; like node_exporter, the cycle carries
``node_scrape_collector_success{collector=<family>}`` (1 or 0) and
``node_scrape_collector_duration_seconds{collector=<family>}``, so the
failure is counted where dashboards already look. It is logged once when the
family starts failing and once when it recovers. ``collect`` raises only
when every enabled family failed, so the scheduler counts a dead collector.

Exceptions::

    RuntimeError
     └── SystemCollectError   every enabled family failed in one cycle
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Callable
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agent.collectors.base import Sample
from agent.collectors.system_cpu import CpuLabels, cpu_samples, loadavg_samples, stat_samples
from agent.collectors.system_disk import DEFAULT_DEVICE_EXCLUDE, DeviceFilter, diskstats_samples
from agent.collectors.system_fs import (
    DEFAULT_FS_TYPES_EXCLUDE,
    DEFAULT_MOUNT_POINTS_EXCLUDE,
    Filesystems,
    StatVFS,
)
from agent.collectors.system_host import time_samples, uname_labels, uname_samples
from agent.collectors.system_mem import MeminfoNames, meminfo_samples
from agent.collectors.system_net import (
    DEFAULT_NETSTAT_FIELDS,
    NetstatFields,
    netdev_samples,
    netstat_samples,
)
from shared.config.models import CollectorConfig
from shared.log import get_logger

log = get_logger(__name__)

Family = Literal[
    "cpu",
    "stat",
    "loadavg",
    "meminfo",
    "diskstats",
    "netdev",
    "netstat",
    "time",
    "uname",
    "filesystem",
]
FAMILIES: Final[tuple[Family, ...]] = (
    "cpu",
    "stat",
    "loadavg",
    "meminfo",
    "diskstats",
    "netdev",
    "netstat",
    "time",
    "uname",
    # Last: a statvfs blocked on a dead mount then holds up no other family.
    "filesystem",
)

# What a family may raise on a bad host file; anything else is a BUG and propagates.
_FAMILY_ERRORS = (OSError, ValueError, IndexError, KeyError)
_DURATION_HELP = "node_exporter: Duration of a collector scrape."
_SUCCESS_HELP = "node_exporter: Whether a collector succeeded."


class SystemCollectError(RuntimeError):
    """Every enabled family failed in one cycle; the message names each family's reason."""


class SystemOptions(BaseModel):
    """``options`` of a ``type: system`` collector; every field has node_exporter's default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["system"] | None = Field(
        default=None, description="Registry key; the only kind of the system type is system."
    )
    collectors: list[Family] = Field(
        default_factory=lambda: list(FAMILIES),
        min_length=1,
        description="Families to collect, named after node_exporter's collectors: cpu, stat, "
        "loadavg, meminfo, diskstats, netdev, netstat, time, uname, filesystem. Default: all.",
    )
    procfs: str = Field(
        default="/proc",
        description="Where procfs is mounted (node_exporter's --path.procfs); a container "
        "monitoring its host mounts the host's /proc elsewhere.",
    )
    rootfs: str = Field(
        default="/",
        description="Where the host's root filesystem is mounted (--path.rootfs); mount points "
        "are reported relative to it.",
    )
    filesystem_mount_points_exclude: str = Field(
        default=DEFAULT_MOUNT_POINTS_EXCLUDE,
        description="Regular expression (searched) of mount points not reported.",
    )
    filesystem_fs_types_exclude: str = Field(
        default=DEFAULT_FS_TYPES_EXCLUDE,
        description="Regular expression (searched) of filesystem types not reported.",
    )
    diskstats_device_exclude: str = Field(
        default=DEFAULT_DEVICE_EXCLUDE,
        description="Regular expression (searched) of block devices not reported; by default "
        "partitions, RAM and loop devices.",
    )
    netdev_device_exclude: str = Field(
        default="",
        description="Regular expression (searched) of network devices not reported; empty: none "
        "(node_exporter's default; Debian's package sets ^lo$).",
    )
    netstat_fields: str = Field(
        default=DEFAULT_NETSTAT_FIELDS,
        description="Regular expression (searched) of <Proto>_<Field> names of /proc/net/snmp "
        "reported as node_netstat_*.",
    )
    scrape_metrics: bool = Field(
        default=True,
        description="Report node_scrape_collector_success and _duration_seconds per family.",
    )

    @field_validator(
        "filesystem_mount_points_exclude",
        "filesystem_fs_types_exclude",
        "diskstats_device_exclude",
        "netdev_device_exclude",
        "netstat_fields",
    )
    @classmethod
    def _valid_regex(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from exc
        return v

    @field_validator("collectors")
    @classmethod
    def _no_repeats(cls, v: list[Family]) -> list[Family]:
        if len(set(v)) != len(v):
            raise ValueError("a family is listed twice")
        return v


Step = Callable[[list[Sample], dict[str, str]], None]


class SystemCollector:
    """Collects the enabled families; one instance per configured collector.

    ``collect_now`` is the synchronous cycle (what ``collect`` runs in a
    thread), for tests and benchmarks. ``statvfs`` is injectable for tests.
    """

    def __init__(
        self, options: SystemOptions, name: str = "system", statvfs: StatVFS = os.statvfs
    ) -> None:
        self.options = options
        self.name = name
        proc = options.procfs.rstrip("/") or "/"
        self._paths = {
            "stat": f"{proc}/stat",
            "loadavg": f"{proc}/loadavg",
            "meminfo": f"{proc}/meminfo",
            "diskstats": f"{proc}/diskstats",
            "netdev": f"{proc}/net/dev",
            "netstat": f"{proc}/net/snmp",
            "domainname": f"{proc}/sys/kernel/domainname",
            "mounts1": f"{proc}/1/mounts",
            "mounts": f"{proc}/mounts",
        }
        self._user_hz = float(os.sysconf("SC_CLK_TCK"))
        self._cpu_labels = CpuLabels()
        self._mem_names = MeminfoNames()
        self._disks = DeviceFilter(_compile(options.diskstats_device_exclude))
        self._netdevs = DeviceFilter(_compile(options.netdev_device_exclude))
        self._netstat = NetstatFields(re.compile(options.netstat_fields))
        self._fs = Filesystems(
            re.compile(options.filesystem_mount_points_exclude),
            re.compile(options.filesystem_fs_types_exclude),
            rootfs=options.rootfs,
            statvfs=statvfs,
        )
        self._uname: tuple[tuple[str, ...], dict[str, str]] | None = None
        steps: dict[Family, Step] = {
            "cpu": self._cpu,
            "stat": self._stat,
            "loadavg": self._loadavg,
            "meminfo": self._meminfo,
            "diskstats": self._diskstats,
            "netdev": self._netdev,
            "netstat": self._netstat_step,
            "time": self._time,
            "uname": self._uname_step,
            "filesystem": self._filesystem,
        }
        enabled = set(options.collectors)
        self._steps = [(f, steps[f], {"collector": f}) for f in FAMILIES if f in enabled]
        self._failing: dict[str, str] = {}  # family -> reason, while it fails

    async def collect(self) -> list[Sample]:
        return await asyncio.to_thread(self.collect_now)

    async def close(self) -> None:
        """Nothing to release: files are opened and closed within a cycle."""

    def collect_now(self) -> list[Sample]:
        """One cycle, synchronously: the samples of every family that succeeded."""
        out: list[Sample] = []
        texts: dict[str, str] = {}  # files read this cycle, by path
        errors: list[str] = []
        scrape_metrics = self.options.scrape_metrics
        perf = time.perf_counter
        for family, step, labels in self._steps:
            start = perf()
            mark = len(out)
            try:
                step(out, texts)
            except _FAMILY_ERRORS as exc:
                del out[mark:]  # a family reports all its samples or none
                errors.append(f"{family}: {exc}")
                self._failed(family, exc)
                ok = 0.0
            else:
                if self._failing:
                    self._recovered(family)
                ok = 1.0
            if scrape_metrics:
                out.append(
                    Sample(
                        "node_scrape_collector_duration_seconds",
                        labels,
                        perf() - start,
                        "gauge",
                        _DURATION_HELP,
                        "seconds",
                    )
                )
                out.append(
                    Sample("node_scrape_collector_success", labels, ok, "gauge", _SUCCESS_HELP)
                )
        if len(errors) == len(self._steps):
            raise SystemCollectError(
                f"cannot collect system metrics of {self.name}: " + "; ".join(errors)
            )
        return out

    # ------------------------------------------------------------------ bookkeeping

    def _failed(self, family: str, exc: BaseException) -> None:
        reason = str(exc) or type(exc).__name__
        if family not in self._failing:
            log.warning(
                "cannot collect system family", collector=self.name, family=family, reason=reason
            )
        self._failing[family] = reason

    def _recovered(self, family: str) -> None:
        if self._failing.pop(family, None) is not None:
            log.info("system family collected again", collector=self.name, family=family)

    def _text(self, texts: dict[str, str], key: str) -> str:
        path = self._paths[key]
        text = texts.get(path)
        if text is None:
            text = _read(path)
            texts[path] = text
        return text

    # ------------------------------------------------------------------ families

    def _cpu(self, out: list[Sample], texts: dict[str, str]) -> None:
        cpu_samples(self._text(texts, "stat"), out, self._user_hz, self._cpu_labels)

    def _stat(self, out: list[Sample], texts: dict[str, str]) -> None:
        stat_samples(self._text(texts, "stat"), out)

    def _loadavg(self, out: list[Sample], texts: dict[str, str]) -> None:
        loadavg_samples(self._text(texts, "loadavg"), out)

    def _meminfo(self, out: list[Sample], texts: dict[str, str]) -> None:
        meminfo_samples(self._text(texts, "meminfo"), out, self._mem_names)

    def _diskstats(self, out: list[Sample], texts: dict[str, str]) -> None:
        diskstats_samples(self._text(texts, "diskstats"), out, self._disks)

    def _netdev(self, out: list[Sample], texts: dict[str, str]) -> None:
        netdev_samples(self._text(texts, "netdev"), out, self._netdevs)

    def _netstat_step(self, out: list[Sample], texts: dict[str, str]) -> None:
        netstat_samples(self._text(texts, "netstat"), out, self._netstat)

    def _time(self, out: list[Sample], texts: dict[str, str]) -> None:
        time_samples(out)

    def _uname_step(self, out: list[Sample], texts: dict[str, str]) -> None:
        try:
            domainname = self._text(texts, "domainname")
        except FileNotFoundError:
            domainname = ""
        uname = os.uname()
        key = (*uname, domainname)
        if self._uname is None or self._uname[0] != key:
            self._uname = (key, uname_labels(uname, domainname))
        uname_samples(self._uname[1], out)

    def _filesystem(self, out: list[Sample], texts: dict[str, str]) -> None:
        try:
            mounts = self._text(texts, "mounts1")
        except (FileNotFoundError, PermissionError):
            # /proc/1 hidden (hidepid) or not ours to read: this process' view instead.
            mounts = self._text(texts, "mounts")
        self._fs.samples(mounts, out)


def _read(path: str) -> str:
    # Unbuffered: a /proc file is read whole in a few read(2) calls, no buffer copies.
    with open(path, "rb", buffering=0) as f:  # noqa: PTH123 - hot path, pathlib adds cost
        data = f.read()
    return data.decode("utf-8", "replace")


def _compile(pattern: str) -> re.Pattern[str] | None:
    return re.compile(pattern) if pattern else None


def create(config: CollectorConfig) -> SystemCollector:
    """Build the system collector of ``config``; ``ValueError`` names a bad option."""
    if config.targets:
        raise ValueError(
            f"cannot configure collector {config.effective_name!r}: the system collector "
            "takes no targets"
        )
    try:
        options = SystemOptions.model_validate(config.options)
    except ValidationError as exc:
        raise ValueError(
            f"cannot configure collector {config.effective_name!r}: options: {exc}"
        ) from exc
    return SystemCollector(options, name=config.effective_name)
