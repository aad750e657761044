"""node_exporter's ``netdev`` and ``netstat`` collectors: /proc/net/dev and /proc/net/snmp.

netdev: the sixteen counters of /proc/net/dev per device as
``node_network_{receive,transmit}_<field>_total{device}``. node_exporter 1.5
reads the same kernel counters over netlink, which adds
``receive_nohandler``; /proc/net/dev does not have it, so neither do we.

netstat: the fields of /proc/net/snmp (Ip, Icmp, Tcp, Udp, UdpLite) that
match node_exporter's ``--collector.netstat.fields`` default, as untyped
``node_netstat_<Proto>_<Field>``; ``node_netstat_Tcp_CurrEstab`` among them,
read from the kernel's counter instead of walking every socket.
/proc/net/netstat (TcpExt, IpExt) and /proc/net/snmp6 are not read.
"""

from __future__ import annotations

import re
from typing import Final

from agent.collectors.base import Sample
from agent.collectors.system_disk import DeviceFilter

DEFAULT_NETSTAT_FIELDS: Final = (
    r"^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)"
    r"|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts)"
    r"|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)"
    r"|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$"
)
"""node_exporter's default ``--collector.netstat.fields``."""

_NETDEV_FIELDS = tuple(
    (f"node_network_{field}_total", f"Network device statistic {field}.", unit)
    for field, unit in (
        *(
            (f"receive_{f}", "bytes" if f == "bytes" else None)
            for f in (
                "bytes",
                "packets",
                "errs",
                "drop",
                "fifo",
                "frame",
                "compressed",
                "multicast",
            )
        ),
        *(
            (f"transmit_{f}", "bytes" if f == "bytes" else None)
            for f in ("bytes", "packets", "errs", "drop", "fifo", "colls", "carrier", "compressed")
        ),
    )
)


def netdev_samples(text: str, out: list[Sample], devices: DeviceFilter) -> None:
    """``node_network_*_total{device}`` for every device of /proc/net/dev the filter keeps."""
    for line in text.splitlines():
        name, sep, rest = line.partition(":")
        if not sep or "|" in line:
            continue  # the two header lines
        labels = devices.labels(name.strip())
        if labels is None:
            continue
        for (metric, help_, unit), raw in zip(_NETDEV_FIELDS, rest.split(), strict=False):
            out.append(Sample(metric, labels, float(raw), "counter", help_, unit))


class NetstatFields:
    """Which ``<Proto>_<Field>`` names to export, decided once per name (a fixed kernel set)."""

    __slots__ = ("_cache", "_pattern")

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self._pattern = pattern
        self._cache: dict[str, tuple[str, str] | None] = {}

    def get(self, key: str) -> tuple[str, str] | None:
        """(metric name, help) for ``Proto_Field``, or None when the field is not exported."""
        try:
            return self._cache[key]
        except KeyError:
            pass
        hit = None
        if self._pattern.search(key):
            proto, _, field = key.partition("_")
            hit = (f"node_netstat_{key}", f"Statistic {proto}{field}.")
        if len(self._cache) < 1024:  # the kernel has a few hundred fields at most
            self._cache[key] = hit
        return hit


def netstat_samples(text: str, out: list[Sample], fields: NetstatFields) -> None:
    """Untyped ``node_netstat_<Proto>_<Field>`` from a header/value line pair per protocol."""
    no_labels: dict[str, str] = {}
    lines = text.splitlines()
    for header, values in zip(lines[::2], lines[1::2], strict=False):
        names = header.split()
        nums = values.split()
        proto = names[0].rstrip(":")
        if nums[0] != names[0] or len(nums) != len(names):
            raise ValueError(f"cannot parse /proc/net/snmp: {proto} header and values disagree")
        for field, raw in zip(names[1:], nums[1:], strict=True):
            spec = fields.get(f"{proto}_{field}")
            if spec is not None:
                out.append(Sample(spec[0], no_labels, float(raw), "unknown", spec[1]))
