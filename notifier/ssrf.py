"""The SSRF guard: which addresses the notifier may send to.

Receivers' URLs come from configuration, and templates may build parts of
them, so a URL could point the notifier at a cloud metadata service and leak
its answer through an error message or a chat. Refused by default:

- link-local addresses (``169.254.0.0/16``, ``fe80::/10``): every cloud's
  instance metadata service lives there (AWS, GCP, Azure, OpenStack);
- other metadata addresses: AWS' IPv6 ``fd00:ec2::254``, Alibaba's
  ``100.100.100.200``, and the names ``metadata.google.internal`` and
  ``metadata``;
- unspecified addresses (``0.0.0.0/8``, ``::``), which Linux routes to this host.

Loopback and private ranges are **allowed**: local receivers (a relay on the
same host, chat servers on the LAN) and tests use them, and Alertmanager
allows them too. Anything may be let through with the allow-list (CIDRs or
host names). Every address a name resolves to must pass, IPv4-mapped IPv6
addresses are checked as IPv4, and only ``http``/``https`` URLs are sent to.
Receivers' HTTP clients check every request, so a redirect is checked too.

Limitation: the check resolves the name before the HTTP client does, so a DNS
server that answers differently on the second lookup (DNS rebinding) can
slip past it; deployments that need more should add an egress proxy.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from notifier.errors import PermanentError, RetryableError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

REFUSED_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "169.254.0.0/16",
        "fe80::/10",
        "fd00:ec2::254/128",
        "100.100.100.200/32",
        "0.0.0.0/8",
        "::/128",
    )
)
REFUSED_NAMES = frozenset({"metadata.google.internal", "metadata", "instance-data"})


def redact(url: str) -> str:
    """``scheme://host:port/…``: enough to say where, never a path or query (they hold tokens)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/<redacted>"


class URLGuard:
    """Checks outgoing URLs; ``allow`` holds CIDRs and host names exempt from the rules."""

    def __init__(self, allow: Iterable[str] = ()) -> None:
        self.allow_networks: list[IPNetwork] = []
        self.allow_names: set[str] = set()
        for item in allow:
            try:
                self.allow_networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                self.allow_names.add(item.lower().rstrip("."))

    def refused(self, address: IPAddress) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in n for n in self.allow_networks):
            return False
        return any(address.version == n.version and address in n for n in REFUSED_NETWORKS)

    async def check(self, url: str) -> None:
        """Raise ``PermanentError`` when ``url`` may not be sent to."""
        parts = urlsplit(url)
        where = redact(url)
        if parts.scheme not in ("http", "https"):
            raise PermanentError(f"cannot send to {where}: only http and https URLs are allowed")
        host = (parts.hostname or "").lower().rstrip(".")
        if not host:
            raise PermanentError(f"cannot send to {where}: the URL has no host")
        if host in self.allow_names:
            return
        if host in REFUSED_NAMES:
            raise PermanentError(f"cannot send to {where}: metadata service names are refused")
        try:
            addresses: list[IPAddress] = [ipaddress.ip_address(host)]
        except ValueError:
            addresses = await _resolve(host, parts.port, where)
        for address in addresses:
            if self.refused(address):
                raise PermanentError(
                    f"cannot send to {where}: address {address} is link-local or a metadata "
                    "service (add it to the notifier's allow-list to permit it)"
                )


async def _resolve(host: str, port: int | None, where: str) -> list[IPAddress]:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port or 443, type=socket.SOCK_STREAM
        )
    except OSError as exc:
        raise RetryableError(f"cannot resolve {where}: {exc.strerror or exc}") from exc
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
