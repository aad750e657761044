"""Connect to NATS as the configuration says.

Auth is one of user/password, token, NKey seed file or creds file (JWT +
NKey); TLS with a CA, client certificate and server name; an inbox prefix
for clients whose permissions only allow replies under their own prefix
(enrolled agents). The client reconnects forever; a disconnect is logged once
when it starts and once when it recovers. The first connection is retried
until ``wait`` seconds have passed, then fails with BusConnectError.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from pathlib import Path
from typing import Any

from nats.aio.client import Client

from shared.config.models import NatsConfig, TLSConfig
from shared.errors import BusConnectError
from shared.log import get_logger

log = get_logger(__name__)

_DISCARD_TIMEOUT_S = 1.0


def _resolve(path: Path, base_dir: Path | None) -> Path:
    path = path.expanduser()
    return path if path.is_absolute() or base_dir is None else base_dir / path


def ssl_context(tls: TLSConfig, base_dir: Path | None = None) -> ssl.SSLContext:
    """A client SSL context from the TLS section; a file that cannot be loaded is named."""
    # OpenSSL's OSError carries no filename, so each load says which field and path it was.
    ca = _resolve(tls.ca_file, base_dir) if tls.ca_file else None
    try:
        ctx = ssl.create_default_context(cafile=str(ca) if ca else None)
    except (OSError, ssl.SSLError) as exc:
        raise BusConnectError(f"cannot load nats.tls.ca_file {ca}: {exc}") from exc
    if tls.cert_file is not None and tls.key_file is not None:
        cert, key = _resolve(tls.cert_file, base_dir), _resolve(tls.key_file, base_dir)
        try:
            ctx.load_cert_chain(str(cert), str(key))
        except (OSError, ssl.SSLError) as exc:
            raise BusConnectError(
                f"cannot load nats.tls.cert_file {cert} with key_file {key}: {exc}"
            ) from exc
    return ctx


def connect_options(cfg: NatsConfig, *, name: str, base_dir: Path | None = None) -> dict[str, Any]:
    """Keyword arguments for ``nats.connect`` (without callbacks)."""
    opts: dict[str, Any] = {
        "servers": list(cfg.servers),
        "name": cfg.name or name,
        "connect_timeout": cfg.connect_timeout,
        "reconnect_time_wait": cfg.reconnect_wait,
    }
    if cfg.user is not None:
        opts["user"] = cfg.user
        if cfg.password is not None:
            opts["password"] = cfg.password.get_secret_value()
    if cfg.token is not None:
        opts["token"] = cfg.token.get_secret_value()
    if cfg.nkey_seed_file is not None:
        opts["nkeys_seed"] = str(_resolve(cfg.nkey_seed_file, base_dir))
    if cfg.creds_file is not None:
        opts["user_credentials"] = str(_resolve(cfg.creds_file, base_dir))
    if cfg.tls is not None:
        opts["tls"] = ssl_context(cfg.tls, base_dir)
        if cfg.tls.server_name:
            opts["tls_hostname"] = cfg.tls.server_name
    if cfg.inbox_prefix:
        opts["inbox_prefix"] = cfg.inbox_prefix
    return opts


class _ConnectionLog:
    """Logs a disconnect once when it starts and once when it recovers."""

    def __init__(self, name: str, client: Client) -> None:
        self.name = name
        self.client = client
        self.down_since: float | None = None
        self.established = False
        self.last_error: Exception | None = None

    async def disconnected(self) -> None:
        if self.client.is_closed:
            return  # closed on purpose, not lost
        if self.down_since is None:
            self.down_since = time.monotonic()
            log.warning("lost connection to NATS, reconnecting", client=self.name)

    async def reconnected(self) -> None:
        if self.down_since is not None:
            log.info(
                "reconnected to NATS",
                client=self.name,
                down_s=round(time.monotonic() - self.down_since, 3),
            )
            self.down_since = None

    async def error(self, exc: Exception) -> None:
        self.last_error = exc
        # Connection errors while reconnecting repeat every attempt; the
        # disconnect line already said the link is down.
        if self.established and self.down_since is None:
            log.warning("NATS client error", client=self.name, error=str(exc) or type(exc).__name__)


async def _discard(client: Client) -> None:
    """Close a failed attempt without waiting forever.

    After a failed TLS handshake nats-py's close() never returns (nats-io/nats.py#718);
    asyncio has already closed the socket, so giving up leaks nothing.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(_DISCARD_TIMEOUT_S):
            await client.close()


async def connect(
    cfg: NatsConfig, *, name: str, base_dir: Path | None = None, wait: float = 0.0
) -> Client:
    """Connect, retrying the first connection for up to ``wait`` seconds."""
    opts = connect_options(cfg, name=name, base_dir=base_dir)
    deadline = time.monotonic() + wait
    delay = 0.1
    while True:
        try:
            # nats-py retries a failed first connection forever when told to
            # reconnect forever; so the first connection is made with one try
            # per server, this loop retries to its own deadline, and
            # reconnecting forever is switched on once connected.
            client = Client()
            events = _ConnectionLog(opts["name"], client)
            await client.connect(
                **opts,
                allow_reconnect=False,
                max_reconnect_attempts=1,
                disconnected_cb=events.disconnected,
                reconnected_cb=events.reconnected,
                error_cb=events.error,
            )
        except Exception as exc:  # nats-py raises many kinds; all mean "cannot connect"
            await _discard(client)  # a failed attempt may still hold a socket
            if time.monotonic() + delay > deadline:
                servers = ", ".join(cfg.servers)
                # "no servers available" hides why; the last error the client reported says it
                cause = events.last_error or exc
                raise BusConnectError(
                    f"cannot connect to NATS at {servers}: {cause or type(cause).__name__}"
                ) from exc
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
        else:
            client.options["allow_reconnect"] = True
            client.options["max_reconnect_attempts"] = -1
            events.established = True
            return client
