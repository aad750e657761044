"""node_exporter's ``diskstats`` collector: /proc/diskstats as ``node_disk_*{device}``.

Sectors are 512 bytes whatever the device's sector size (the kernel's
unit in this file), times are milliseconds turned into seconds. Kernels
before 4.18 have no discard columns, before 5.5 no flush columns: what a
line lacks is not reported.
"""

from __future__ import annotations

import re
from typing import Final

from agent.collectors.base import Sample
from shared.wire import MetricType

DEFAULT_DEVICE_EXCLUDE: Final = r"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$"
"""node_exporter's default ``--collector.diskstats.device-exclude``: partitions, RAM and loop disks."""

_SECTOR_BYTES = 512.0
# One entry per column after the device name: (name, type, help, scale, unit).
_COLUMNS: tuple[tuple[str, MetricType, str, float, str | None], ...] = (
    (
        "node_disk_reads_completed_total",
        "counter",
        "The total number of reads completed successfully.",
        1.0,
        None,
    ),
    ("node_disk_reads_merged_total", "counter", "The total number of reads merged.", 1.0, None),
    (
        "node_disk_read_bytes_total",
        "counter",
        "The total number of bytes read successfully.",
        _SECTOR_BYTES,
        "bytes",
    ),
    (
        "node_disk_read_time_seconds_total",
        "counter",
        "The total number of seconds spent by all reads.",
        0.001,
        "seconds",
    ),
    (
        "node_disk_writes_completed_total",
        "counter",
        "The total number of writes completed successfully.",
        1.0,
        None,
    ),
    ("node_disk_writes_merged_total", "counter", "The number of writes merged.", 1.0, None),
    (
        "node_disk_written_bytes_total",
        "counter",
        "The total number of bytes written successfully.",
        _SECTOR_BYTES,
        "bytes",
    ),
    (
        "node_disk_write_time_seconds_total",
        "counter",
        "This is the total number of seconds spent by all writes.",
        0.001,
        "seconds",
    ),
    ("node_disk_io_now", "gauge", "The number of I/Os currently in progress.", 1.0, None),
    (
        "node_disk_io_time_seconds_total",
        "counter",
        "Total seconds spent doing I/Os.",
        0.001,
        "seconds",
    ),
    (
        "node_disk_io_time_weighted_seconds_total",
        "counter",
        "The weighted # of seconds spent doing I/Os.",
        0.001,
        "seconds",
    ),
    (
        "node_disk_discards_completed_total",
        "counter",
        "The total number of discards completed successfully.",
        1.0,
        None,
    ),
    (
        "node_disk_discards_merged_total",
        "counter",
        "The total number of discards merged.",
        1.0,
        None,
    ),
    (
        "node_disk_discarded_sectors_total",
        "counter",
        "The total number of sectors discarded successfully.",
        1.0,
        None,
    ),
    (
        "node_disk_discard_time_seconds_total",
        "counter",
        "This is the total number of seconds spent by all discards.",
        0.001,
        "seconds",
    ),
    (
        "node_disk_flush_requests_total",
        "counter",
        # node_exporter's text, without its final full stop.
        "The total number of flush requests completed successfully",
        1.0,
        None,
    ),
    (
        "node_disk_flush_requests_time_seconds_total",
        "counter",
        "This is the total number of seconds spent by all flush requests.",
        0.001,
        "seconds",
    ),
)


class DeviceFilter:
    """An exclusion pattern with its verdicts cached per device name (bounded)."""

    __slots__ = ("_cache", "_pattern")
    _MAX = 4096  # devices come and go (veth, loop): start over past this many names

    def __init__(self, exclude: re.Pattern[str] | None) -> None:
        self._pattern = exclude
        self._cache: dict[str, dict[str, str] | None] = {}

    def labels(self, device: str) -> dict[str, str] | None:
        """``{"device": device}`` (shared, read-only), or None when the device is excluded."""
        try:
            return self._cache[device]
        except KeyError:
            pass
        if len(self._cache) >= self._MAX:
            self._cache.clear()
        excluded = self._pattern is not None and self._pattern.search(device) is not None
        verdict = None if excluded else {"device": device}
        self._cache[device] = verdict
        return verdict


def diskstats_samples(text: str, out: list[Sample], devices: DeviceFilter) -> None:
    """``node_disk_*{device}`` for every device of /proc/diskstats the filter keeps."""
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 14:
            continue
        labels = devices.labels(fields[2])
        if labels is None:
            continue
        for (name, mtype, help_, scale, unit), raw in zip(_COLUMNS, fields[3:], strict=False):
            out.append(Sample(name, labels, int(raw) * scale, mtype, help_, unit))
