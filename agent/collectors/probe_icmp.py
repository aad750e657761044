"""The ``icmp`` prober: one echo request to ``target`` (a host or address), one reply.

Sockets, tried in blackbox's order:

1. unprivileged ``SOCK_DGRAM`` ICMP ("ping") sockets, allowed to the groups
   in the Linux sysctl ``net.ipv4.ping_group_range`` (it covers ICMPv6 too;
   Debian's default ``1 0`` allows no group);
2. ``SOCK_RAW``, which needs root or ``CAP_NET_RAW``.

When neither opens, the probe fails (``probe_success 0``) with a reason that
names the sysctl and its current value; the collector logs it once.

Gauges as blackbox 0.23:
``probe_icmp_duration_seconds{phase=resolve|setup|rtt}`` and, when the
reply's TTL / hop limit can be read, ``probe_icmp_reply_hop_limit``.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import os
import secrets
import socket
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import ConfigDict, Field

from agent.collectors.probe_base import IpSettings, ProbeFailed, ProbeResult, resolve

PING_GROUP_RANGE = Path("/proc/sys/net/ipv4/ping_group_range")
PAYLOAD = b"Vigil Agent ICMP probe"
_IP_RECVTTL = getattr(socket, "IP_RECVTTL", 12)  # Linux value; not exported by every Python
_IPV6_RECVHOPLIMIT = getattr(socket, "IPV6_RECVHOPLIMIT", 51)
_IPV6_HOPLIMIT = getattr(socket, "IPV6_HOPLIMIT", 52)
_IP_MTU_DISCOVER = getattr(socket, "IP_MTU_DISCOVER", 10)
_IP_PMTUDISC_DO = getattr(socket, "IP_PMTUDISC_DO", 2)
_HOP_CMSGS = ((socket.IPPROTO_IP, socket.IP_TTL), (socket.IPPROTO_IPV6, _IPV6_HOPLIMIT))
_DENIED = (errno.EACCES, errno.EPERM, errno.EPROTONOSUPPORT, errno.ESOCKTNOSUPPORT)
_sequence = itertools.count(secrets.randbelow(1 << 15))

new_socket = socket.socket
"""How sockets are made; a test replaces it to play a host that allows no ICMP socket."""


class IcmpSettings(IpSettings):
    """``icmp:`` of a module (blackbox's keys)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    payload_size: int = Field(
        default=0, ge=0, le=65000, description="Bytes of echo payload; 0: a short fixed text."
    )
    ttl: int = Field(
        default=0, ge=0, le=255, description="Outgoing TTL / hop limit; 0: the system's."
    )
    dont_fragment: bool = Field(default=False, description="Set DF (IPv4 only).")
    source_ip_address: str | None = Field(default=None, description="Local address to send from.")


def open_icmp_socket(version: int) -> tuple[socket.socket, bool]:
    """An ICMP socket for IP ``version`` and whether it is raw; ``ProbeFailed`` if none opens."""
    family = socket.AF_INET if version == 4 else socket.AF_INET6
    proto = socket.IPPROTO_ICMP if version == 4 else socket.IPPROTO_ICMPV6
    try:
        return new_socket(family, socket.SOCK_DGRAM, proto), False
    except OSError as exc:
        if exc.errno not in _DENIED:
            raise ProbeFailed(f"cannot open ICMP socket: {exc}") from exc
    try:
        return new_socket(family, socket.SOCK_RAW, proto), True
    except OSError as exc:
        if exc.errno not in _DENIED:
            raise ProbeFailed(f"cannot open ICMP socket: {exc}") from exc
    raise ProbeFailed(
        "cannot open ICMP socket: unprivileged ICMP is not allowed for this process's groups "
        f"by the sysctl net.ipv4.ping_group_range (now {_group_range()!r}, gid {os.getgid()}) "
        "and raw ICMP needs CAP_NET_RAW; allow the agent's group, e.g. "
        "sysctl -w net.ipv4.ping_group_range='0 2147483647'"
    )


def _group_range() -> str:
    try:
        return " ".join(PING_GROUP_RANGE.read_text().split())
    except OSError:
        return "unknown"


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f">{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(version: int, ident: int, seq: int, payload: bytes) -> bytes:
    kind = 8 if version == 4 else 128
    head = struct.pack(">BBHHH", kind, 0, 0, ident, seq)
    if version == 6:
        return head + payload  # the kernel fills in ICMPv6 checksums (pseudo-header)
    return struct.pack(">BBHHH", kind, 0, _checksum(head + payload), ident, seq) + payload


async def probe_icmp(target: str, settings: IcmpSettings, result: ProbeResult) -> None:
    """Ping ``target`` once; ``ProbeFailed`` when no socket opens or no matching reply."""
    for phase in ("resolve", "setup", "rtt"):
        result.set("probe_icmp_duration_seconds", 0.0, {"phase": phase})
    addr, version = await resolve(target, settings, result)
    lookup = result.get("probe_dns_lookup_time_seconds") or 0.0
    result.set("probe_icmp_duration_seconds", lookup, {"phase": "resolve"})
    setup_start = time.perf_counter()
    sock, raw = open_icmp_socket(version)
    try:
        _configure(sock, version, settings)
        ident = secrets.randbelow(1 << 16)
        seq = next(_sequence) & 0xFFFF
        payload = (PAYLOAD * (settings.payload_size // len(PAYLOAD) + 1))[: settings.payload_size]
        packet = echo_request(version, ident, seq, payload or PAYLOAD)
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[int | None] = loop.create_future()
        fd = sock.fileno()
        loop.add_reader(fd, _EchoReply(sock, version, raw, ident, seq, reply).on_readable)
        try:
            sent = time.perf_counter()
            result.set("probe_icmp_duration_seconds", sent - setup_start, {"phase": "setup"})
            try:
                sock.sendto(packet, (addr, 0))
                hop_limit = await reply
            except OSError as exc:
                raise ProbeFailed(f"cannot ping {addr}: {exc}") from exc
            result.set("probe_icmp_duration_seconds", time.perf_counter() - sent, {"phase": "rtt"})
        finally:
            loop.remove_reader(fd)
    finally:
        sock.close()
    if hop_limit is not None:
        result.set("probe_icmp_reply_hop_limit", float(hop_limit))


def _configure(sock: socket.socket, version: int, settings: IcmpSettings) -> None:
    sock.setblocking(False)
    try:
        if version == 4:
            sock.setsockopt(socket.IPPROTO_IP, _IP_RECVTTL, 1)
            if settings.ttl:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, settings.ttl)
            if settings.dont_fragment:
                sock.setsockopt(socket.IPPROTO_IP, _IP_MTU_DISCOVER, _IP_PMTUDISC_DO)
        else:
            sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_RECVHOPLIMIT, 1)
            if settings.ttl:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, settings.ttl)
        if settings.source_ip_address:
            sock.bind((settings.source_ip_address, 0))
    except OSError as exc:
        raise ProbeFailed(f"cannot set up ICMP socket: {exc}") from exc


@dataclass(slots=True)
class _EchoReply:
    """Waits on ``sock`` for the reply to echo (``ident``, ``seq``); ``reply`` gets its hop limit."""

    sock: socket.socket
    version: int
    raw: bool
    ident: int
    seq: int
    reply: asyncio.Future[int | None]

    def on_readable(self) -> None:
        """Read every queued datagram; resolve ``reply`` once ours is among them."""
        while not self.reply.done():
            try:
                data, ancdata, _flags, _addr = self.sock.recvmsg(65535, socket.CMSG_SPACE(4))
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.reply.set_exception(exc)
                return
            hop_limit = _hop_limit(ancdata)
            if self.raw and self.version == 4 and data:
                hop_limit = data[8] if len(data) > 8 else hop_limit
                data = data[(data[0] & 0x0F) * 4 :]  # raw IPv4 sockets pass the IP header
            if len(data) < 8:
                continue
            kind, _code, _sum, got_ident, got_seq = struct.unpack_from(">BBHHH", data)
            if kind != (0 if self.version == 4 else 129) or got_seq != self.seq:
                continue  # our own request on a raw socket, another process' traffic, an error
            if self.raw and got_ident != self.ident:
                continue  # DGRAM sockets: the kernel rewrote the id and filters replies itself
            self.reply.set_result(hop_limit)


def _hop_limit(ancdata: list[tuple[int, int, bytes]]) -> int | None:
    for level, kind, value in ancdata:
        if (level, kind) in _HOP_CMSGS and value:
            return int.from_bytes(value[:4], sys.byteorder) if len(value) >= 4 else value[0]
    return None
