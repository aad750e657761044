"""node_exporter's ``cpu``, ``stat`` and ``loadavg`` collectors: /proc/stat and /proc/loadavg.

Each function parses the text of one file and appends ``Sample`` objects to
``out``; reading the file is the caller's (``agent.collectors.system``), so
these are pure and tested on fixture copies. Names, types, help texts and
labels are node_exporter 1.5's.
"""

from __future__ import annotations

from agent.collectors.base import Sample
from shared.wire import MetricType

CPU_MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
"""The first eight columns of a ``cpuN`` line, in the kernel's order."""

# guest and guest_nice (columns 9 and 10) are already included in user and nice;
# node_exporter reports them apart so sums over modes do not count them twice.
_GUEST_MODES = ("user", "nice")
_CPU_NAME = "node_cpu_seconds_total"
_CPU_HELP = "Seconds the CPUs spent in each mode."
_GUEST_NAME = "node_cpu_guest_seconds_total"
_GUEST_HELP = "Seconds the CPUs spent in guests (VMs) for each mode."

_STAT_FIELDS: dict[str, tuple[str, MetricType, str]] = {
    # /proc/stat key: (metric name, type, help)
    "intr": ("node_intr_total", "counter", "Total number of interrupts serviced."),
    "ctxt": ("node_context_switches_total", "counter", "Total number of context switches."),
    "btime": ("node_boot_time_seconds", "gauge", "Node boot time, in unixtime."),
    "processes": ("node_forks_total", "counter", "Total number of forks."),
    "procs_running": ("node_procs_running", "gauge", "Number of processes in runnable state."),
    "procs_blocked": (
        "node_procs_blocked",
        "gauge",
        "Number of processes blocked waiting for I/O to complete.",
    ),
}

_LOAD = (
    ("node_load1", "1m load average."),
    ("node_load5", "5m load average."),
    ("node_load15", "15m load average."),
)


class CpuLabels:
    """Label maps for ``node_cpu_*``, built once per (cpu, mode) and shared across cycles.

    Hosts keep their CPUs, so the cache is bounded by the CPU count seen;
    the maps are read-only for everyone downstream (``Sample.labels`` is a
    ``Mapping``).
    """

    __slots__ = ("_by_cpu",)

    def __init__(self) -> None:
        self._by_cpu: dict[str, tuple[tuple[dict[str, str], ...], tuple[dict[str, str], ...]]] = {}

    def get(self, cpu: str) -> tuple[tuple[dict[str, str], ...], tuple[dict[str, str], ...]]:
        """(labels per CPU mode, labels per guest mode) of one CPU."""
        maps = self._by_cpu.get(cpu)
        if maps is None:
            maps = (
                tuple({"cpu": cpu, "mode": m} for m in CPU_MODES),
                tuple({"cpu": cpu, "mode": m} for m in _GUEST_MODES),
            )
            self._by_cpu[cpu] = maps
        return maps


def cpu_samples(text: str, out: list[Sample], user_hz: float, labels: CpuLabels) -> None:
    """``node_cpu_seconds_total{cpu,mode}`` and ``node_cpu_guest_seconds_total`` from /proc/stat."""
    for line in text.splitlines():
        if not line.startswith("cpu") or line[3] == " ":
            continue  # the aggregate "cpu " line is not exported, as in node_exporter
        fields = line.split()
        cpu = fields[0][3:]
        mode_labels, guest_labels = labels.get(cpu)
        for i, lab in enumerate(mode_labels, 1):
            out.append(
                Sample(_CPU_NAME, lab, int(fields[i]) / user_hz, "counter", _CPU_HELP, "seconds")
            )
        # Kernels before 2.6.24 have no guest column; 2.6.33 added guest_nice.
        for i, lab in enumerate(guest_labels[: len(fields) - 9], 9):
            out.append(
                Sample(
                    _GUEST_NAME, lab, int(fields[i]) / user_hz, "counter", _GUEST_HELP, "seconds"
                )
            )


def stat_samples(text: str, out: list[Sample]) -> None:
    """Interrupts, context switches, forks, boot time, running and blocked processes."""
    no_labels: dict[str, str] = {}
    for line in text.splitlines():
        # The intr line lists every interrupt after the total: split off the total only.
        key, _, rest = line.partition(" ")
        spec = _STAT_FIELDS.get(key)
        if spec is None:
            continue
        name, mtype, help_ = spec
        value = float(rest.split(None, 1)[0])
        unit = "seconds" if key == "btime" else None
        out.append(Sample(name, no_labels, value, mtype, help_, unit))


def loadavg_samples(text: str, out: list[Sample]) -> None:
    """``node_load1``, ``node_load5``, ``node_load15`` from /proc/loadavg."""
    fields = text.split(None, 3)
    no_labels: dict[str, str] = {}
    for (name, help_), value in zip(_LOAD, fields[:3], strict=True):
        out.append(Sample(name, no_labels, float(value), "gauge", help_))
