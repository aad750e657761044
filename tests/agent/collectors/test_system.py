"""The system collector on fixture copies of /proc files, independent of this machine.

``testdata/proc`` is a small procfs: two CPUs with guest time, partitions and
loop devices to exclude, a mount table with escapes, duplicates and every
kind of default exclusion. ``statvfs`` is faked (it is a syscall on real
mounts); everything else goes through the collector's real file reading.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from agent.collectors.base import Sample
from agent.collectors.system import (
    FAMILIES,
    SystemCollectError,
    SystemCollector,
    SystemOptions,
    create,
)
from agent.collectors.system_fs import Filesystems, parse_mounts
from shared.config.models import CollectorConfig
from shared.wire import LABEL_NAME_RE, METRIC_NAME_RE

PROC = Path(__file__).parent / "testdata" / "proc"


def _statvfs_result(
    bsize: int, blocks: tuple[int, int, int], files: tuple[int, int]
) -> os.statvfs_result:
    # (bsize, frsize, blocks, bfree, bavail, files, ffree, favail, flag, namemax)
    return os.statvfs_result((bsize, bsize, *blocks, *files, files[1], 0, 255))


STATVFS = {
    "/": _statvfs_result(4096, (1000, 600, 500), (100, 40)),
    "/srv/my data": _statvfs_result(1024, (2000, 100, 50), (64, 8)),
    "/run": _statvfs_result(4096, (10, 9, 9), (30, 20)),
}


def fake_statvfs(path: str) -> os.statvfs_result:
    try:
        return STATVFS[path]
    except KeyError:
        raise OSError(5, "Input/output error", path) from None


def collector(procfs: Path = PROC, **options: object) -> SystemCollector:
    opts = SystemOptions.model_validate({"procfs": str(procfs), **options})
    return SystemCollector(opts, statvfs=fake_statvfs)


def by_name(samples: Iterable[Sample], name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value for s in samples if s.name == name}


def one(samples: Iterable[Sample], name: str, **labels: str) -> float:
    values = by_name(samples, name)
    return values[tuple(sorted(labels.items()))]


@pytest.fixture(scope="module")
def samples() -> list[Sample]:
    return collector().collect_now()


def test_cpu_seconds_per_cpu_and_mode_exclude_the_aggregate_and_guest_time(
    samples: list[Sample],
) -> None:
    cpu = by_name(samples, "node_cpu_seconds_total")
    assert len(cpu) == 2 * 8
    assert {dict(k)["mode"] for k in cpu} == {
        "user",
        "nice",
        "system",
        "idle",
        "iowait",
        "irq",
        "softirq",
        "steal",
    }
    assert one(samples, "node_cpu_seconds_total", cpu="0", mode="user") == pytest.approx(915.36)
    assert one(samples, "node_cpu_seconds_total", cpu="1", mode="steal") == pytest.approx(0.27)
    assert one(samples, "node_cpu_guest_seconds_total", cpu="0", mode="user") == pytest.approx(0.05)
    assert one(samples, "node_cpu_guest_seconds_total", cpu="1", mode="nice") == pytest.approx(0.01)


def test_stat_family_reads_interrupt_total_not_each_interrupt(samples: list[Sample]) -> None:
    assert one(samples, "node_intr_total") == 1700822
    assert one(samples, "node_context_switches_total") == 2736213
    assert one(samples, "node_boot_time_seconds") == 1795497064
    assert one(samples, "node_forks_total") == 56441
    assert one(samples, "node_procs_running") == 5
    assert one(samples, "node_procs_blocked") == 1


def test_load_averages(samples: list[Sample]) -> None:
    assert [one(samples, f"node_load{n}") for n in (1, 5, 15)] == [4.55, 3.36, 1.99]


def test_meminfo_fields_in_bytes_with_node_exporter_names(samples: list[Sample]) -> None:
    assert one(samples, "node_memory_MemTotal_bytes") == 24684092 * 1024
    assert one(samples, "node_memory_SwapFree_bytes") == 2097000 * 1024
    assert one(samples, "node_memory_Active_anon_bytes") == 36616 * 1024
    assert one(samples, "node_memory_HugePages_Total") == 0  # no unit, no _bytes
    mem = next(s for s in samples if s.name == "node_memory_MemAvailable_bytes")
    assert (mem.type, mem.help, mem.unit) == (
        "gauge",
        "Memory information field MemAvailable_bytes.",
        "bytes",
    )


def test_diskstats_skip_partitions_ram_and_loop_devices_by_default(samples: list[Sample]) -> None:
    reads = by_name(samples, "node_disk_reads_completed_total")
    assert {dict(k)["device"] for k in reads} == {"vda", "nvme0n1"}
    assert one(samples, "node_disk_read_bytes_total", device="vda") == 6122370 * 512
    assert one(samples, "node_disk_written_bytes_total", device="vda") == 14646728 * 512
    assert one(samples, "node_disk_writes_completed_total", device="vda") == 294895
    assert one(samples, "node_disk_io_time_seconds_total", device="vda") == pytest.approx(24.112)
    assert one(samples, "node_disk_flush_requests_total", device="vda") == 108157
    # An old kernel's line without discard and flush columns reports what it has.
    assert ("device", "nvme0n1") not in {
        k[0] for k in by_name(samples, "node_disk_discards_completed_total")
    }
    assert one(samples, "node_disk_io_now", device="nvme0n1") == 1


def test_diskstats_exclusion_is_configurable() -> None:
    got = collector(diskstats_device_exclude="^vd").collect_now()
    devices = {s.labels["device"] for s in got if s.name == "node_disk_reads_completed_total"}
    assert devices == {"loop0", "zram0", "nvme0n1", "nvme0n1p1"}


def test_netdev_counters_for_every_device_unless_excluded(samples: list[Sample]) -> None:
    assert set(by_name(samples, "node_network_receive_bytes_total")) == {
        (("device", "lo"),),
        (("device", "eth0"),),
    }
    assert one(samples, "node_network_receive_bytes_total", device="eth0") == 720275853
    assert one(samples, "node_network_receive_multicast_total", device="eth0") == 6
    assert one(samples, "node_network_transmit_errs_total", device="eth0") == 7
    assert one(samples, "node_network_transmit_colls_total", device="eth0") == 10
    assert one(samples, "node_network_transmit_compressed_total", device="eth0") == 12
    got = collector(netdev_device_exclude="^lo$").collect_now()
    assert {s.labels["device"] for s in got if s.name.startswith("node_network_")} == {"eth0"}


def test_netstat_reads_curr_estab_from_snmp_as_untyped(samples: list[Sample]) -> None:
    estab = next(s for s in samples if s.name == "node_netstat_Tcp_CurrEstab")
    assert (estab.value, estab.type, estab.help) == (17, "unknown", "Statistic TcpCurrEstab.")
    assert one(samples, "node_netstat_Ip_Forwarding") == 2
    assert one(samples, "node_netstat_Icmp_OutMsgs") == 3
    assert one(samples, "node_netstat_Udp_InDatagrams") == 950
    names = {s.name for s in samples}
    assert "node_netstat_Tcp_RtoMin" not in names  # not in node_exporter's default fields
    assert "node_netstat_IcmpMsg_InType3" not in names


def test_uname_labels_and_time(samples: list[Sample]) -> None:
    info = next(s for s in samples if s.name == "node_uname_info")
    uname = os.uname()
    assert dict(info.labels) == {
        "sysname": uname.sysname,
        "release": uname.release,
        "version": uname.version,
        "machine": uname.machine,
        "nodename": uname.nodename,
        "domainname": "(none)",
    }
    assert one(samples, "node_time_seconds") > 1.7e9
    assert len(by_name(samples, "node_time_zone_offset_seconds")) == 1


def test_filesystems_apply_default_exclusions_and_report_each_mount_once(
    samples: list[Sample],
) -> None:
    errors = by_name(samples, "node_filesystem_device_error")
    assert errors == {
        (("device", "/dev/vda"), ("fstype", "ext4"), ("mountpoint", "/")): 0,
        (("device", "/dev/vdb"), ("fstype", "xfs"), ("mountpoint", "/srv/my data")): 0,
        (("device", "tmpfs"), ("fstype", "tmpfs"), ("mountpoint", "/run")): 0,
        (("device", "nfs-server:/export"), ("fstype", "nfs4"), ("mountpoint", "/mnt/nfs")): 1,
    }
    root = {"device": "/dev/vda", "fstype": "ext4", "mountpoint": "/"}
    assert one(samples, "node_filesystem_size_bytes", **root) == 1000 * 4096
    assert one(samples, "node_filesystem_free_bytes", **root) == 600 * 4096
    assert one(samples, "node_filesystem_avail_bytes", **root) == 500 * 4096
    assert one(samples, "node_filesystem_files", **root) == 100
    assert one(samples, "node_filesystem_files_free", **root) == 40
    assert one(samples, "node_filesystem_readonly", **root) == 0
    srv = {"device": "/dev/vdb", "fstype": "xfs", "mountpoint": "/srv/my data"}
    assert one(samples, "node_filesystem_readonly", **srv) == 1
    # A mount whose statvfs fails has only device_error, as in node_exporter.
    sizes = by_name(samples, "node_filesystem_size_bytes")
    assert all(dict(k)["mountpoint"] != "/mnt/nfs" for k in sizes)


def test_mount_table_under_a_rootfs_is_reported_relative_to_it() -> None:
    text = (
        "/dev/sda1 /host ext4 rw 0 0\n/dev/sdb /host/srv xfs rw 0 0\n/dev/sdc /other xfs rw 0 0\n"
    )
    assert [m[1] for m in parse_mounts(text, "/host")] == ["/", "/srv", "/other"]
    with pytest.raises(ValueError, match="fewer than 4 fields"):
        parse_mounts("/dev/sda1 /\n")


def test_a_stuck_statvfs_is_not_called_again_while_it_blocks() -> None:
    import re

    started = threading.Event()
    release = threading.Event()
    calls: list[str] = []

    def blocking_statvfs(path: str) -> os.statvfs_result:
        calls.append(path)
        if path == "/mnt/nfs":
            started.set()
            release.wait(10)
        return STATVFS["/"]

    fs = Filesystems(re.compile("^/proc"), re.compile("^proc$"), statvfs=blocking_statvfs)
    text = "/dev/vda / ext4 rw 0 0\nserver:/x /mnt/nfs nfs4 rw 0 0\n"
    first: list[Sample] = []
    blocked = threading.Thread(target=fs.samples, args=(text, first))
    blocked.start()
    try:
        assert started.wait(10)
        assert fs.stuck == frozenset({"/mnt/nfs"})
        second: list[Sample] = []
        fs.samples(text, second)
        errors = by_name(second, "node_filesystem_device_error")
        assert (
            errors[(("device", "server:/x"), ("fstype", "nfs4"), ("mountpoint", "/mnt/nfs"))] == 1
        )
        assert calls.count("/mnt/nfs") == 1
    finally:
        release.set()
        blocked.join(10)
    assert fs.stuck == frozenset()
    third: list[Sample] = []
    fs.samples(text, third)
    assert calls.count("/mnt/nfs") == 2


def test_every_sample_has_a_valid_name_labels_type_and_help(samples: list[Sample]) -> None:
    for s in samples:
        assert METRIC_NAME_RE.fullmatch(s.name), s.name
        assert all(LABEL_NAME_RE.fullmatch(k) for k in s.labels), s
        assert s.type in {"counter", "gauge", "unknown"}, s
        assert s.help, s
        assert s.ts_ms is None  # the scheduler stamps
        if s.type == "counter":
            assert s.name.endswith("_total"), s.name


def test_scrape_success_and_duration_per_family(samples: list[Sample]) -> None:
    success = by_name(samples, "node_scrape_collector_success")
    assert success == {(("collector", f),): 1 for f in FAMILIES}
    assert len(by_name(samples, "node_scrape_collector_duration_seconds")) == len(FAMILIES)


def test_a_failing_family_loses_only_its_own_samples_and_logs_once_until_it_recovers(
    tmp_path: Path,
) -> None:
    proc = tmp_path / "proc"
    shutil.copytree(PROC, proc)
    (proc / "meminfo").unlink()
    c = collector(proc)
    with capture_logs() as logs:
        first = c.collect_now()
        second = c.collect_now()
    assert not any(s.name.startswith("node_memory_") for s in first + second)
    assert one(first, "node_scrape_collector_success", collector="meminfo") == 0
    assert one(first, "node_scrape_collector_success", collector="cpu") == 1
    assert one(first, "node_load1") == 4.55
    failures = [e for e in logs if e["event"] == "cannot collect system family"]
    assert len(failures) == 1
    assert failures[0]["family"] == "meminfo"
    assert "meminfo" in failures[0]["reason"]

    shutil.copy(PROC / "meminfo", proc / "meminfo")
    with capture_logs() as logs:
        third = c.collect_now()
        c.collect_now()
    assert one(third, "node_scrape_collector_success", collector="meminfo") == 1
    assert [e["family"] for e in logs if e["event"] == "system family collected again"] == [
        "meminfo"
    ]


def test_a_malformed_file_fails_its_family_without_partial_samples(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    shutil.copytree(PROC, proc)
    snmp = (PROC / "net" / "snmp").read_text().splitlines()
    # Tcp values lose a column: the header and values no longer agree.
    snmp[7] = snmp[7].rsplit(" ", 1)[0]
    (proc / "net" / "snmp").write_text("\n".join(snmp) + "\n")
    with capture_logs():
        got = collector(proc).collect_now()
    assert not any(s.name.startswith("node_netstat_") for s in got)
    assert one(got, "node_scrape_collector_success", collector="netstat") == 0


def test_collect_raises_only_when_every_family_failed(tmp_path: Path) -> None:
    c = collector(tmp_path, collectors=["cpu", "meminfo"])
    with capture_logs(), pytest.raises(SystemCollectError, match=r"cpu: .*meminfo: "):
        c.collect_now()


async def test_collect_runs_the_cycle_off_the_event_loop() -> None:
    c = create(CollectorConfig(type="system", options={"procfs": str(PROC)}))
    try:
        got = await c.collect()
    finally:
        await c.close()
    assert one(got, "node_procs_blocked") == 1


def test_families_can_be_chosen_and_scrape_metrics_turned_off() -> None:
    got = collector(collectors=["loadavg"], scrape_metrics=False).collect_now()
    assert sorted(s.name for s in got) == ["node_load1", "node_load15", "node_load5"]


@pytest.mark.parametrize(
    ("options", "targets", "message"),
    [
        ({"diskstats_device_exclude": "("}, [], "diskstats_device_exclude"),
        ({"collectors": ["cpu", "gpu"]}, [], "collectors"),
        ({"collectors": ["cpu", "cpu"]}, [], "listed twice"),
        ({"mount_points": "x"}, [], "mount_points"),
        ({}, ["localhost"], "takes no targets"),
    ],
)
def test_bad_options_are_rejected_naming_the_option(
    options: dict[str, object], targets: list[str], message: str
) -> None:
    config = CollectorConfig(type="system", name="host", options=options, targets=targets)
    with pytest.raises(ValueError, match=message) as info:
        create(config)
    assert "'host'" in str(info.value)


def test_defaults_are_node_exporters() -> None:
    opts = SystemOptions()
    assert opts.filesystem_mount_points_exclude == (
        "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)"
    )
    assert opts.diskstats_device_exclude == r"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$"
    assert "|erofs|" in opts.filesystem_fs_types_exclude
    assert opts.netdev_device_exclude == ""
    assert list(opts.collectors) == list(FAMILIES)
