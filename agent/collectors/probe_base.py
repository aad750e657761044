"""What every prober shares: the result it fills in, its failure, and target resolution.

A prober is ``async def probe(target, settings, result) -> None``: it records
gauges in ``result`` as it goes and returns when the probe succeeded, or
raises ``ProbeFailed`` naming why it did not. Whatever it recorded before
failing (or before the collector cancelled it at its timeout) is reported,
as blackbox_exporter reports a failed probe's registry. A prober declares
its gauges up front with blackbox's initial values (zeros), so a failed
probe carries the same series as a successful one, as blackbox's does.

Metric names and help texts are blackbox_exporter 0.23's, checked against
the real one by ``tests/compat/test_blackbox_exporter.py``.

Exceptions::

    Exception
     └── ProbeFailed   the probe ran and its target failed a check (or cannot be reached)
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.collectors.base import Sample

IpProtocol = Literal["ip4", "ip6"]

CLOSE_GRACE = 0.5
"""Seconds a succeeded probe waits for its connection's orderly close (TLS close_notify)."""

HELP: dict[str, str] = {
    "probe_success": "Displays whether or not the probe was a success",
    "probe_duration_seconds": "Returns how long the probe took to complete in seconds",
    "probe_dns_lookup_time_seconds": "Returns the time taken for probe dns lookup in seconds",
    "probe_ip_protocol": "Specifies whether probe ip protocol is IP4 or IP6",
    "probe_ip_addr_hash": "Specifies the hash of IP address. It's useful to detect if the IP "
    "address changes.",
    "probe_failed_due_to_regex": "Indicates if probe failed due to regex",
    "probe_http_content_length": "Length of http content response",
    "probe_http_duration_seconds": "Duration of http request by phase, summed over all redirects",
    "probe_http_last_modified_timestamp_seconds": "Returns the Last-Modified HTTP response "
    "header in unixtime",
    "probe_http_redirects": "The number of redirects",
    "probe_http_ssl": "Indicates if SSL was used for the final redirect",
    "probe_http_status_code": "Response HTTP status code",
    "probe_http_uncompressed_body_length": "Length of uncompressed response body",
    "probe_http_version": "Returns the version of HTTP of the probe response",
    "probe_ssl_earliest_cert_expiry": "Returns last SSL chain expiry in unixtime",
    "probe_ssl_last_chain_expiry_timestamp_seconds": "Returns last SSL chain expiry in timestamp",
    "probe_ssl_last_chain_info": "Contains SSL leaf certificate information",
    "probe_tls_version_info": "Returns the TLS version used or NaN when unknown",
    "probe_dns_additional_rrs": "Returns number of entries in the additional resource record list",
    "probe_dns_answer_rrs": "Returns number of entries in the answer resource record list",
    "probe_dns_authority_rrs": "Returns number of entries in the authority resource record list",
    "probe_dns_duration_seconds": "Duration of DNS request by phase",
    "probe_dns_query_succeeded": "Displays whether or not the query was executed successfully",
    "probe_dns_serial": "Returns the serial number of the zone",
    "probe_icmp_duration_seconds": "Duration of icmp request by phase",
    "probe_icmp_reply_hop_limit": "Replied packet hop limit (TTL for ipv4)",
}

_NO_LABELS: tuple[tuple[str, str], ...] = ()


class ProbeFailed(Exception):
    """The target failed the probe; the message is the reason, read by people."""


class IpSettings(BaseModel):
    """Address family choice, shared by every prober (blackbox's keys)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    preferred_ip_protocol: IpProtocol = Field(
        default="ip6",
        alias="ip_protocol",
        description="Address family tried first when a name resolves to both: ip6 (blackbox's "
        "default) or ip4. Also accepted as ip_protocol.",
    )
    ip_protocol_fallback: bool = Field(
        default=True,
        description="Use the other family when the name has no address of the preferred one.",
    )


class ProbeResult:
    """The gauges of one probe, in the order first recorded; a series is (name, labels).

    Not shared between tasks: one probe fills it, then the collector reads it.
    """

    def __init__(self) -> None:
        self._values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}

    def set(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        self._values[(name, tuple(sorted(labels.items())) if labels else _NO_LABELS)] = value

    def add(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        key = (name, tuple(sorted(labels.items())) if labels else _NO_LABELS)
        self._values[key] = self._values.get(key, 0.0) + value

    def declare(self, *names: str) -> None:
        """Register unlabelled gauges at 0 unless already set (blackbox's registration)."""
        for name in names:
            self._values.setdefault((name, _NO_LABELS), 0.0)

    def get(self, name: str, labels: Mapping[str, str] | None = None) -> float | None:
        return self._values.get((name, tuple(sorted(labels.items())) if labels else _NO_LABELS))

    def names(self) -> frozenset[str]:
        return frozenset(name for name, _ in self._values)

    def samples(self, base: Mapping[str, str]) -> list[Sample]:
        """Every gauge as a ``Sample`` carrying ``base`` labels as well as its own."""
        out: list[Sample] = []
        for (name, labels), value in self._values.items():
            merged = {**base, **dict(labels)} if labels else base
            unit = "seconds" if name.endswith("_seconds") else None
            out.append(Sample(name, merged, value, "gauge", HELP.get(name), unit))
        return out


def ip_hash(addr: str) -> float:
    """FNV-1a (32 bit) of the packed address, as blackbox's ``probe_ip_addr_hash``."""
    h = 0x811C9DC5
    for byte in ipaddress.ip_address(addr).packed:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return float(h)


async def resolve(host: str, ip: IpSettings, result: ProbeResult) -> tuple[str, int]:
    """The address to probe for ``host`` and its family, as blackbox's ``chooseProtocol``.

    Returns the address and its IP version (4 or 6). Records
    ``probe_dns_lookup_time_seconds`` (probers that report a resolve phase
    read it back with ``result.get``), ``probe_ip_protocol`` and
    ``probe_ip_addr_hash``. Raises ``ProbeFailed`` when no address fits.
    """
    result.declare("probe_ip_protocol", "probe_ip_addr_hash", "probe_dns_lookup_time_seconds")
    start = time.perf_counter()
    host = host.removeprefix("[").removesuffix("]")
    try:
        try:
            literal = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, None, type=socket.SOCK_STREAM
            )
            addrs = [str(info[4][0]) for info in infos]
        else:
            addrs = [str(literal)]
    except (OSError, UnicodeError) as exc:
        raise ProbeFailed(f"cannot resolve {host}: {exc}") from exc
    finally:
        result.set("probe_dns_lookup_time_seconds", time.perf_counter() - start)
    want = 6 if ip.preferred_ip_protocol == "ip6" else 4
    chosen = next((a for a in addrs if ipaddress.ip_address(a).version == want), None)
    if chosen is None and ip.ip_protocol_fallback and addrs:
        chosen = addrs[0]
    if chosen is None:
        raise ProbeFailed(f"cannot resolve {host}: no {ip.preferred_ip_protocol} address")
    version = ipaddress.ip_address(chosen).version
    result.set("probe_ip_protocol", float(version))
    result.set("probe_ip_addr_hash", ip_hash(chosen))
    return chosen, version


def split_host_port(target: str, default_port: int | None) -> tuple[str, int]:
    """``host:port``, ``[v6]:port``, or a bare host with ``default_port``; ``ProbeFailed`` if neither."""
    host, sep, port = target.rpartition(":")
    if sep and (not host.count(":") or host.startswith("[")) and port.isdigit():
        return host.removeprefix("[").removesuffix("]"), int(port)
    if default_port is None:
        raise ProbeFailed(f"cannot probe {target}: missing port in address")
    return target.removeprefix("[").removesuffix("]"), default_port


@contextlib.asynccontextmanager
async def closing(writer: asyncio.StreamWriter) -> AsyncIterator[None]:
    """Close a probe's connection on exit: at once when the probe failed or was cancelled
    at its timeout (a peer that stopped reading cannot hold it), else in an orderly way
    bounded by ``CLOSE_GRACE``."""
    try:
        yield
    except BaseException:
        writer.transport.abort()
        raise
    writer.close()
    try:
        async with asyncio.timeout(CLOSE_GRACE):
            await writer.wait_closed()
    except (TimeoutError, OSError, ssl.SSLError):
        writer.transport.abort()
