"""The system collector against a real node_exporter on this machine.

node_exporter runs on 127.0.0.1 with only the families we implement and
with our default exclusions passed as flags (Debian's build changes two of
upstream's defaults: it excludes /run, /mnt, /media and the ``lo`` device).
Our cycle is taken between two of its scrapes, so a counter must lie
between its two readings: a sandwich instead of a guessed drift allowance.

What node_exporter has and we deliberately do not (KNOWN_MISSING):
``node_network_receive_nohandler_total`` (netlink only), the netstat fields
of /proc/net/netstat and /proc/net/snmp6 (we read /proc/net/snmp only),
``node_disk_info`` (udev database) and ``node_time_clocksource_*`` (sysfs).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.collectors.base import Sample
from agent.collectors.system import FAMILIES, SystemCollector, SystemOptions
from tests.compat.node_exporter import (
    MISSING_REASON,
    NodeExporter,
    find_binary,
    running_node_exporter,
)

LabelKey = tuple[tuple[str, str], ...]

KNOWN_MISSING = re.compile(
    r"^node_(network_receive_nohandler_total"
    r"|netstat_(Ip6|Icmp6|Udp6|UdpLite6|IpExt|TcpExt)_.+"
    r"|disk_info"
    r"|time_clocksource_.+)$"
)
EXPORTER_OWN = re.compile(r"^(node_exporter_build_info|promhttp_.+)$")


@dataclass
class Metric:
    type: str
    help: str
    series: dict[LabelKey, float] = field(default_factory=dict)

    @property
    def label_names(self) -> set[tuple[str, ...]]:
        return {tuple(k for k, _ in key) for key in self.series}


def parse_exposition(text: str) -> dict[str, Metric]:
    """Sample name -> metric, via prometheus_client's parser (untyped becomes "unknown")."""
    out: dict[str, Metric] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            m = out.setdefault(s.name, Metric(fam.type, fam.documentation))
            m.series[tuple(sorted(s.labels.items()))] = s.value
    return out


def from_samples(samples: list[Sample]) -> dict[str, Metric]:
    out: dict[str, Metric] = {}
    for s in samples:
        m = out.setdefault(s.name, Metric(s.type or "unknown", s.help or ""))
        key = tuple(sorted(s.labels.items()))
        assert key not in m.series, f"{s.name}{dict(key)} reported twice"
        m.series[key] = s.value
    return out


@pytest.fixture(scope="module")
def options() -> SystemOptions:
    return SystemOptions()


@pytest.fixture(scope="module")
def node_exporter(options: SystemOptions) -> Iterator[NodeExporter]:
    binary = find_binary()
    if binary is None:
        pytest.skip(MISSING_REASON)
    args = [
        "--web.disable-exporter-metrics",
        "--collector.disable-defaults",
        *(f"--collector.{f}" for f in FAMILIES),
        f"--collector.filesystem.mount-points-exclude={options.filesystem_mount_points_exclude}",
        f"--collector.filesystem.fs-types-exclude={options.filesystem_fs_types_exclude}",
        f"--collector.diskstats.device-exclude={options.diskstats_device_exclude}",
        f"--collector.netdev.device-exclude={options.netdev_device_exclude}",
        f"--collector.netstat.fields={options.netstat_fields}",
    ]
    with running_node_exporter(binary, args) as ne:
        yield ne


@pytest.fixture(scope="module")
def readings(
    node_exporter: NodeExporter, options: SystemOptions
) -> tuple[dict[str, Metric], dict[str, Metric], dict[str, Metric]]:
    collector = SystemCollector(options)
    collector.collect_now()  # warm caches, as a running agent has them
    before = parse_exposition(node_exporter.scrape())
    ours = from_samples(collector.collect_now())
    after = parse_exposition(node_exporter.scrape())
    return before, ours, after


def test_same_metric_names_as_node_exporter(
    readings: tuple[dict[str, Metric], dict[str, Metric], dict[str, Metric]],
) -> None:
    before, ours, after = readings
    theirs = set(before) & set(after)
    assert set(ours) - theirs == set(), "we report names node_exporter does not"
    missing = {
        n for n in theirs - set(ours) if not KNOWN_MISSING.match(n) and not EXPORTER_OWN.match(n)
    }
    assert missing == set(), "node_exporter reports names we do not"
    for name in ("node_netstat_Tcp_CurrEstab", "node_filesystem_avail_bytes", "node_uname_info"):
        assert name in ours


def test_same_types_help_texts_and_label_names(
    readings: tuple[dict[str, Metric], dict[str, Metric], dict[str, Metric]],
) -> None:
    before, ours, _ = readings
    for name, m in ours.items():
        ne = before[name]
        assert (m.type, m.help) == (ne.type, ne.help), name
        assert m.label_names == ne.label_names, name


def test_same_series_cpus_modes_devices_and_mounts(
    readings: tuple[dict[str, Metric], dict[str, Metric], dict[str, Metric]],
) -> None:
    before, ours, after = readings
    for name, m in ours.items():
        # A device or mount may come or go between the scrapes: compare with both.
        both = set(before[name].series) & set(after[name].series)
        either = set(before[name].series) | set(after[name].series)
        assert both <= set(m.series) <= either, name


def _tolerance(name: str, labels: dict[str, str], ours: dict[str, Metric]) -> float | None:
    """Allowed distance outside node_exporter's two readings; None: do not compare values."""
    if name in {"node_procs_running", "node_procs_blocked", "node_disk_io_now"}:
        return None  # instantaneous: anything goes between two scrapes
    if name == "node_scrape_collector_duration_seconds":
        return None
    if name.startswith("node_cpu_"):
        return 0.5  # iowait and idle may step back a few ticks (kernel accounting)
    if name.startswith("node_memory_"):
        total = next(iter(ours["node_memory_MemTotal_bytes"].series.values()))
        return 0.02 * total  # other processes allocate and free meanwhile
    if name.startswith("node_load"):
        return 0.5
    if name in {"node_filesystem_avail_bytes", "node_filesystem_free_bytes"}:
        size = ours["node_filesystem_size_bytes"].series[tuple(sorted(labels.items()))]
        return max(64 * 2**20, 0.005 * size)
    if name == "node_filesystem_files_free":
        return 10_000
    if name == "node_netstat_Tcp_CurrEstab":
        return 50
    if name == "node_time_seconds":
        return 1.0
    return 0.0  # counters and fixed values: strictly between the two readings


def test_values_lie_between_node_exporters_two_readings(
    readings: tuple[dict[str, Metric], dict[str, Metric], dict[str, Metric]],
) -> None:
    before, ours, after = readings
    compared = 0
    for name, m in ours.items():
        for key, value in m.series.items():
            if key not in before[name].series or key not in after[name].series:
                continue
            tol = _tolerance(name, dict(key), ours)
            if tol is None:
                continue
            lo, hi = sorted((before[name].series[key], after[name].series[key]))
            assert lo - tol <= value <= hi + tol, (name, dict(key), before[name].series[key], value)
            compared += 1
    assert compared > 100


def test_every_family_succeeds_on_both_sides(
    readings: tuple[dict[str, Metric], dict[str, Metric], dict[str, Metric]],
) -> None:
    before, ours, _ = readings
    expected = {(("collector", f),): 1.0 for f in FAMILIES}
    assert ours["node_scrape_collector_success"].series == expected
    assert before["node_scrape_collector_success"].series == expected
