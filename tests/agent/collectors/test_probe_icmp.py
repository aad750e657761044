"""The icmp prober: a real ping of 127.0.0.1 where this host allows it, the clear error where not."""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import subprocess
import sys
from typing import Any

import pytest
from structlog.testing import capture_logs

from agent.collectors import probe_icmp
from agent.collectors.network import create
from agent.collectors.probe_base import ProbeFailed, ProbeResult
from agent.collectors.probe_icmp import IcmpSettings, echo_request, open_icmp_socket
from shared.config.models import CollectorConfig


def icmp_allowed(version: int = 4) -> str | None:
    """None when this process can open an ICMP socket, else the reason it cannot."""
    try:
        sock, _raw = open_icmp_socket(version)
    except ProbeFailed as exc:
        return str(exc)
    sock.close()
    return None


async def probe(target: str, **settings: Any) -> tuple[ProbeResult, str | None]:
    result = ProbeResult()
    try:
        await probe_icmp.probe_icmp(target, IcmpSettings.model_validate(settings), result)
    except ProbeFailed as exc:
        return result, str(exc)
    return result, None


async def test_ping_of_loopback_succeeds_or_fails_with_the_sysctl_named() -> None:
    denied = icmp_allowed()
    result, reason = await probe("127.0.0.1", payload_size=100, ttl=32)
    if denied is None:
        assert reason is None
        for phase in ("resolve", "setup", "rtt"):
            value = result.get("probe_icmp_duration_seconds", {"phase": phase})
            assert value is not None
            assert value >= 0
        hop_limit = result.get("probe_icmp_reply_hop_limit")
        assert hop_limit is not None
        assert 0 < hop_limit <= 255
        assert result.get("probe_ip_protocol") == 4
    else:
        assert reason == denied
        assert "net.ipv4.ping_group_range" in reason


async def test_ping_of_ipv6_loopback_when_the_host_has_it() -> None:
    if not socket.has_ipv6 or icmp_allowed(6) is not None:
        pytest.skip("no IPv6 ICMP socket on this host")
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.connect(("::1", 9))
    except OSError:
        pytest.skip("no IPv6 loopback on this host")
    result, reason = await probe("::1")
    assert reason is None
    assert result.get("probe_ip_protocol") == 6


def _deny(*args: Any, **kwargs: Any) -> socket.socket:
    raise PermissionError(errno.EACCES, "Permission denied")


async def test_no_icmp_socket_names_the_sysctl(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(probe_icmp, "new_socket", _deny)
    result, reason = await probe("127.0.0.1")
    assert reason is not None
    assert reason.startswith("cannot open ICMP socket:")
    assert "net.ipv4.ping_group_range" in reason
    assert "CAP_NET_RAW" in reason
    assert result.get("probe_icmp_duration_seconds", {"phase": "rtt"}) == 0


async def test_denied_icmp_is_probe_success_0_logged_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(probe_icmp, "new_socket", _deny)
    collector = create(
        CollectorConfig.model_validate({"type": "network", "targets": ["icmp:127.0.0.1"]})
    )
    with capture_logs() as logs:
        for _ in range(3):
            samples = await collector.collect()
            success = [s.value for s in samples if s.name == "probe_success"]
            assert success == [0.0]
    failed = [e for e in logs if e["event"] == "probe failed"]
    assert len(failed) == 1
    assert "net.ipv4.ping_group_range" in failed[0]["reason"]
    assert failed[0]["module"] == "icmp"


def test_echo_request_checksum_verifies() -> None:
    packet = echo_request(4, 0x1234, 7, b"abc")
    total = sum(
        int.from_bytes(packet[i : i + 2].ljust(2, b"\0"), "big") for i in range(0, len(packet), 2)
    )
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    assert total == 0xFFFF
    assert packet[0] == 8
    assert echo_request(6, 1, 2, b"x")[0] == 128


# ---------------------------------------------------------------------- private network namespaces
# net.ipv4.ping_group_range is per network namespace: as root, a child in its own
# namespace can play a host that allows unprivileged ping, or one that allows no
# ICMP socket at all (with CAP_NET_RAW dropped), without touching this host's setting.

_PING = """
import asyncio, json
from agent.collectors import probe_icmp
from agent.collectors.probe_base import ProbeFailed, ProbeResult
out = {}
for target in ("127.0.0.1", "::1"):
    result = ProbeResult()
    try:
        asyncio.run(probe_icmp.probe_icmp(target, probe_icmp.IcmpSettings(), result))
        reason = None
    except ProbeFailed as exc:
        reason = str(exc)
    sock, raw = probe_icmp.open_icmp_socket(6 if ":" in target else 4) if reason is None else (None, None)
    if sock is not None:
        sock.close()
    out[target] = {"reason": reason, "raw": raw, "hop": result.get("probe_icmp_reply_hop_limit")}
print(json.dumps(out))
"""


def in_private_netns(group_range: str, *, drop_net_raw: bool) -> dict[str, dict[str, Any]]:
    tools = [shutil.which(t) for t in ("unshare", "ip", "setpriv")]
    if os.geteuid() != 0 or None in tools:
        pytest.skip("needs root with unshare, ip and setpriv to make a private network namespace")
    prefix = "exec setpriv --bounding-set=-net_raw --inh-caps=-net_raw" if drop_net_raw else "exec"
    script = (
        'ip link set lo up && echo "$1" > /proc/sys/net/ipv4/ping_group_range && '
        f'{prefix} "$2" -c "$3"'
    )
    proc = subprocess.run(
        ["unshare", "-n", "sh", "-c", script, "sh", group_range, sys.executable, _PING],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        pytest.skip(f"cannot run in a private network namespace here: {proc.stderr.strip()[-300:]}")
    result: dict[str, dict[str, Any]] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_unprivileged_ping_sockets_where_the_sysctl_allows_them() -> None:
    got = in_private_netns("0 2147483647", drop_net_raw=True)
    assert got["127.0.0.1"] == {"reason": None, "raw": False, "hop": 64.0}
    if got["::1"]["reason"] is None:  # a kernel without IPv6 cannot answer ::1
        assert got["::1"]["raw"] is False
        assert got["::1"]["hop"] == 64.0


def test_no_icmp_socket_at_all_names_the_sysctl() -> None:
    got = in_private_netns("1 0", drop_net_raw=True)
    reason = got["127.0.0.1"]["reason"]
    assert reason is not None
    assert "net.ipv4.ping_group_range (now '1 0'" in reason
