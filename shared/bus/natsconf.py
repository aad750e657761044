"""A nats-server set up for Vigil in operator mode: configuration, keys and credentials.

``vigil nats init`` and ``vigil agent enroll|revoke`` are thin commands over
``NatsDir``, which owns one folder::

    DIR/nats-server.conf      listen address, JetStream, TLS; includes accounts.conf
    DIR/accounts.conf         operator JWT, system account, resolver MEMORY + preload
                              (rewritten by init and revoke; reload the server after)
    DIR/vigil-nats.json       subject prefix, operator name, revocations
    DIR/keys/*.nk             operator, SYS and VIGIL account seeds (0600, folder 0700):
                              whoever holds keys/VIGIL.nk can mint users; keep DIR private
    DIR/creds/<service>.creds ingest, alerter, notifier, web (0600)
    DIR/agents/<host>.creds   one per enrolled host (0600); copy it to that host

Accounts: ``VIGIL`` (JetStream, every Vigil user) and ``SYS`` (the system account
nats-server needs in operator mode; no users are issued for it here).

Permissions (``P`` is the subject prefix, ``T`` the host token of ``shared.hosttoken``):

- services (ingest, alerter, notifier, web): publish and subscribe ``P.>``, the
  JetStream API, acks and flow control (``$JS.>``), the contract's KV buckets
  (``$KV.<bucket>.>``) and ``_INBOX.>``. Broad within the account on purpose: they
  provision streams and consumers, and a service host is trusted.
- an enrolled agent: publish ``P.metrics.T`` only; subscribe ``_INBOX_T.>`` only (the
  agent connects with inbox prefix ``_INBOX_T``: JetStream publish acks come back
  there). No other host's subject, no other subscription, no ``$JS.API`` (so no
  stream or consumer management), no KV. The server refuses everything else.

Revocation: ``revoke`` adds the user's public key to the VIGIL account JWT's
``revocations`` and rewrites accounts.conf; a config reload (``nats-server --signal
reload`` or SIGHUP) makes the server refuse that user's JWT from then on, closing its
connections.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared import hosttoken
from shared.bus.creds import (
    Account,
    NKey,
    Operator,
    Permissions,
    Role,
    User,
    parse_creds,
    write_secret,
)
from shared.wire import Names

SERVICES = ("ingest", "alerter", "notifier", "web")
VIGIL_ACCOUNT = "VIGIL"
SYSTEM_ACCOUNT = "SYS"
SERVER_CONF = "nats-server.conf"
ACCOUNTS_CONF = "accounts.conf"
STATE_FILE = "vigil-nats.json"


class NatsDirError(Exception):
    """A NATS setup folder cannot be made, read or changed."""


def agent_inbox_prefix(host: str) -> str:
    """The inbox prefix an agent enrolled for ``host`` must connect with."""
    return f"_INBOX_{hosttoken.encode(host)}"


def agent_permissions(host: str, prefix: str = "vigil") -> Permissions:
    """Publish its own metrics subject, receive replies under its own inbox prefix: nothing else."""
    return Permissions(
        pub_allow=[Names(prefix).metrics(host)],
        sub_allow=[f"{agent_inbox_prefix(host)}.>"],
    )


def service_permissions(prefix: str = "vigil") -> Permissions:
    """A Vigil service: the prefix's subjects, JetStream, the contract's KV buckets, inboxes."""
    names = Names(prefix)
    buckets = [names.kv_silences, names.kv_alert_state, names.kv_agents, names.kv_nflog]
    kv = [f"$KV.{bucket}.>" for bucket in buckets]
    return Permissions(
        pub_allow=[f"{prefix}.>", "$JS.>", *kv, "_INBOX.>"],
        sub_allow=[f"{prefix}.>", *kv, "_INBOX.>"],
    )


def _file_name(host: str) -> str:
    # A token never holds "." (it escapes it as "/"), so swapping "/" for "." is
    # reversible and gives a file name; for plain names it is the host name itself.
    name = hosttoken.encode(host).replace("/", ".")
    return f"_{name}" if name.startswith(".") else name


@dataclass(frozen=True)
class ServerTLS:
    """The server's ``tls {}`` block: TLS is then required of every client.

    Paths are written as given: they must be valid where the server runs (in a
    container, the mounted paths). ``verify`` asks clients for a certificate
    signed by ``ca_file`` (mutual TLS).
    """

    cert_file: str
    key_file: str
    ca_file: str | None = None
    verify: bool = False

    def __post_init__(self) -> None:
        if self.verify and not self.ca_file:
            raise NatsDirError("cannot require client certificates: no CA file (--tls-ca)")


@dataclass(frozen=True)
class ServerOptions:
    """What goes in nats-server.conf besides the accounts."""

    host: str = "127.0.0.1"
    port: int = 4222  # -1: any free port (tests)
    http_port: int | None = None  # monitoring endpoint (/healthz, /varz); None: off
    server_name: str = "vigil-nats"
    store_dir: str = "jetstream"  # relative: under DIR
    max_file_store: str = "32G"
    max_memory_store: str = "256M"
    max_payload: str = "8MB"
    tls: ServerTLS | None = None


def _q(value: str) -> str:
    return json.dumps(value)


def render_server_config(opts: ServerOptions, store_dir: str) -> str:
    """The main configuration file; accounts come from ``include accounts.conf``."""
    lines = [
        "# Written by `vigil nats init`. Accounts, keys and users: accounts.conf (included).",
        f"server_name: {_q(opts.server_name)}",
        f"host: {_q(opts.host)}",
        f"port: {opts.port}",
        f"max_payload: {opts.max_payload}",
    ]
    if opts.http_port is not None:
        lines.append(f"http_port: {opts.http_port}")
    lines += [
        "jetstream {",
        f"  store_dir: {_q(store_dir)}",
        f"  max_file_store: {opts.max_file_store}",
        f"  max_memory_store: {opts.max_memory_store}",
        "}",
    ]
    if opts.tls is not None:
        lines += [
            "tls {",
            f"  cert_file: {_q(opts.tls.cert_file)}",
            f"  key_file: {_q(opts.tls.key_file)}",
        ]
        if opts.tls.ca_file:
            lines.append(f"  ca_file: {_q(opts.tls.ca_file)}")
        if opts.tls.verify:
            lines.append("  verify: true")
        lines += ["  timeout: 2", "}"]
    lines.append(f"include {ACCOUNTS_CONF}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Enrolled:
    """An agent's credentials and the settings that go with them."""

    host: str
    creds_file: Path
    subject: str
    inbox_prefix: str
    public_key: str

    def config_snippet(self) -> str:
        """The ``nats`` section of the agent's vigil.yaml (servers to be filled in)."""
        return (
            "nats:\n"
            f"  creds_file: {_q(str(self.creds_file.name))}\n"
            f"  inbox_prefix: {_q(self.inbox_prefix)}\n"
        )


@dataclass
class NatsDir:
    """One NATS setup folder (layout in the module docstring)."""

    path: Path
    prefix: str = "vigil"
    operator_name: str = "vigil"
    revocations: dict[str, int] = field(default_factory=dict)
    issued_at: int = field(default_factory=lambda: int(time.time()))

    # Paths ------------------------------------------------------------------
    @property
    def keys_dir(self) -> Path:
        return self.path / "keys"

    @property
    def creds_dir(self) -> Path:
        return self.path / "creds"

    @property
    def agents_dir(self) -> Path:
        return self.path / "agents"

    @property
    def server_conf(self) -> Path:
        return self.path / SERVER_CONF

    def service_creds(self, service: str) -> Path:
        return self.creds_dir / f"{service}.creds"

    def agent_creds(self, host: str) -> Path:
        return self.agents_dir / f"{_file_name(host)}.creds"

    def _key_file(self, name: str) -> Path:
        return self.keys_dir / f"{name}.nk"

    # Create -----------------------------------------------------------------
    @classmethod
    def init(
        cls,
        path: Path,
        options: ServerOptions | None = None,
        *,
        prefix: str = "vigil",
        operator_name: str = "vigil",
        force: bool = False,
    ) -> NatsDir:
        """Make keys, accounts, the server configuration and service credentials.

        Refuses a folder that already holds keys unless ``force`` (new keys
        invalidate every credential issued before, agents' included).
        """
        Names(prefix)  # fails early on a bad prefix
        options = options or ServerOptions()
        setup = cls(path, prefix=prefix, operator_name=operator_name)
        if setup._key_file("operator").exists() and not force:
            raise NatsDirError(
                f"cannot initialise {path}: it holds keys already (--force replaces them "
                "and invalidates every credential issued with them)"
            )
        path.mkdir(parents=True, exist_ok=True)
        for private in (setup.keys_dir, setup.creds_dir, setup.agents_dir):
            private.mkdir(mode=0o700, exist_ok=True)
            private.chmod(0o700)
        for name, role in (
            ("operator", Role.OPERATOR),
            (SYSTEM_ACCOUNT, Role.ACCOUNT),
            (VIGIL_ACCOUNT, Role.ACCOUNT),
        ):
            write_secret(setup._key_file(name), NKey.generate(role).seed.decode("ascii") + "\n")
        store = options.store_dir
        if not Path(store).is_absolute():
            store = str((path / store).absolute())
        setup.server_conf.write_text(render_server_config(options, store), encoding="utf-8")
        _operator, account = setup._sign()
        for service in SERVICES:
            perms = service_permissions(prefix)
            account_user(account, service, perms).write_creds(setup.service_creds(service))
        return setup

    # Load -------------------------------------------------------------------
    @classmethod
    def load(cls, path: Path) -> NatsDir:
        state_file = path / STATE_FILE
        try:
            state: dict[str, Any] = json.loads(state_file.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise NatsDirError(
                f"cannot read NATS setup {path}: no {STATE_FILE} (run `vigil nats init --dir {path}`)"
            ) from exc
        except (OSError, ValueError) as exc:
            raise NatsDirError(f"cannot read NATS setup {state_file}: {exc}") from exc
        return cls(
            path,
            prefix=str(state.get("prefix", "vigil")),
            operator_name=str(state.get("operator", "vigil")),
            revocations={str(k): int(v) for k, v in (state.get("revocations") or {}).items()},
            issued_at=int(state.get("issued_at", 0)),
        )

    def _key(self, name: str) -> NKey:
        try:
            return NKey.from_seed(self._key_file(name).read_bytes())
        except (OSError, ValueError) as exc:
            raise NatsDirError(f"cannot read key {self._key_file(name)}: {exc}") from exc

    def _accounts(self) -> tuple[Operator, Account]:
        """Operator and VIGIL account signed afresh from the kept keys and revocations."""
        operator = Operator(
            self.operator_name,
            key=self._key("operator"),
            system_key=self._key(SYSTEM_ACCOUNT),
            issued_at=self.issued_at,
        )
        account = operator.account(
            VIGIL_ACCOUNT, key=self._key(VIGIL_ACCOUNT), revocations=self.revocations
        )
        return operator, account

    def _sign(self) -> tuple[Operator, Account]:
        """Sign operator and accounts from the kept keys; rewrite accounts.conf and the state."""
        operator, account = self._accounts()
        (self.path / ACCOUNTS_CONF).write_text(
            "# Written by `vigil nats init` / `vigil agent revoke`: do not edit by hand.\n"
            + operator.server_config(),
            encoding="utf-8",
        )
        state = {
            "prefix": self.prefix,
            "operator": self.operator_name,
            "issued_at": self.issued_at,
            "operator_public_key": operator.key.public_key,
            "accounts": {a.name: a.key.public_key for a in operator.accounts},
            "revocations": self.revocations,
        }
        (self.path / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
        return operator, account

    # Agents -----------------------------------------------------------------
    def enroll(self, host: str) -> Enrolled:
        """Credentials for the agent on ``host`` (a new key each time; old creds stay valid)."""
        try:
            perms = agent_permissions(host, self.prefix)
        except ValueError as exc:
            raise NatsDirError(f"cannot enroll host {host!r}: {exc}") from exc
        _operator, account = self._accounts()
        user = account_user(account, f"agent:{host}", perms)
        creds = user.write_creds(self.agent_creds(host))
        return Enrolled(
            host=host,
            creds_file=creds,
            subject=Names(self.prefix).metrics(host),
            inbox_prefix=agent_inbox_prefix(host),
            public_key=user.key.public_key,
        )

    def revoke(self, host: str, *, at: int | None = None) -> str:
        """Revoke the credentials last enrolled for ``host``; returns the user's public key.

        Rewrites accounts.conf; the server applies it on its next reload.
        """
        creds = self.agent_creds(host)
        try:
            _jwt, key = parse_creds(creds.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise NatsDirError(f"cannot revoke host {host!r}: no credentials at {creds}") from exc
        except (OSError, ValueError) as exc:
            raise NatsDirError(f"cannot revoke host {host!r}: {creds}: {exc}") from exc
        public_key = key.public_key
        self.revocations[public_key] = int(time.time()) if at is None else at
        self._sign()
        creds.rename(creds.with_name(creds.name + ".revoked"))
        return public_key


def account_user(account: Account, name: str, perms: Permissions) -> User:
    """A user of ``account`` with ``perms``."""
    return account.user(
        name,
        pub_allow=perms.pub_allow,
        sub_allow=perms.sub_allow,
        pub_deny=perms.pub_deny,
        sub_deny=perms.sub_deny,
    )
