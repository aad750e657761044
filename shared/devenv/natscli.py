"""``vigil nats init`` and ``vigil agent enroll|revoke``: NATS accounts and credentials.

vigil nats init [--dir DIR] [--listen HOST:PORT] [--tls-cert F --tls-key F [--tls-ca F] [--tls-verify]]
    writes DIR/nats-server.conf (operator mode: VIGIL account with JetStream, SYS
    account, resolver MEMORY with preload), the signing keys (DIR/keys, 0600) and
    service credentials DIR/creds/{ingest,alerter,notifier,web}.creds.
vigil agent enroll HOST [--dir DIR]
    DIR/agents/HOST.creds: may publish vigil.metrics.<HOST> and receive replies under
    _INBOX_<HOST>, nothing else; prints the agent's ``nats`` configuration.
vigil agent revoke HOST [--dir DIR]
    revokes the credentials last enrolled for HOST; reload nats-server to apply.

The layout and the permissions are described in ``shared.bus.natsconf``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from shared.bus.natsconf import (
    SERVICES,
    NatsDir,
    NatsDirError,
    ServerOptions,
    ServerTLS,
)

DEFAULT_DIR = Path("vigil-nats")
AGENT_CREDS_PATH = "/etc/vigil/agent.creds"


def _out(line: str) -> None:
    """A line of the command's output (its output is what it prints)."""
    sys.stdout.write(line + "\n")


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise argparse.ArgumentTypeError(f"cannot use listen address {text!r}: expected HOST:PORT")
    try:
        number = int(port)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"cannot use listen port {port!r}: not a number") from exc
    if not (number == -1 or 0 < number < 65536):
        raise argparse.ArgumentTypeError(f"cannot use listen port {number}: out of range")
    return host.strip("[]"), number


def _nats_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vigil nats", description="NATS server configuration and credentials for Vigil"
    )
    sub = p.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init", help="write nats-server.conf, accounts, keys, service creds")
    init.add_argument(
        "--dir", type=Path, default=DEFAULT_DIR, help="output folder (default: %(default)s)"
    )
    init.add_argument(
        "--listen",
        type=_listen,
        default=("127.0.0.1", 4222),
        metavar="HOST:PORT",
        help="client listen address (default: 127.0.0.1:4222; 0.0.0.0:4222 in a container)",
    )
    init.add_argument("--http-port", type=int, help="monitoring port (/healthz), off by default")
    init.add_argument(
        "--store-dir",
        default="jetstream",
        help="JetStream store as the server sees it (default: DIR/jetstream)",
    )
    init.add_argument("--server-name", default="vigil-nats", help="JetStream server name")
    init.add_argument("--prefix", default="vigil", help="subject prefix (nats.prefix)")
    init.add_argument("--operator-name", default="vigil", help="name in the operator JWT")
    init.add_argument("--tls-cert", help="server certificate: TLS becomes required")
    init.add_argument("--tls-key", help="server private key")
    init.add_argument("--tls-ca", help="CA that signs client certificates")
    init.add_argument(
        "--tls-verify", action="store_true", help="require client certificates (mutual TLS)"
    )
    init.add_argument(
        "--force", action="store_true", help="replace existing keys (invalidates every credential)"
    )
    return p


def _agent_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vigil agent", description="agent credentials")
    sub = p.add_subparsers(dest="command", required=True)
    enroll = sub.add_parser("enroll", help="make credentials for the agent on HOST")
    enroll.add_argument("host", metavar="HOST", help="the agent's host name (agent.hostname)")
    enroll.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="folder of `vigil nats init`")
    enroll.add_argument(
        "--creds-path",
        default=AGENT_CREDS_PATH,
        help="where the creds file will live on the host, for the printed config (default: %(default)s)",
    )
    enroll.add_argument("--server", action="append", default=[], help="NATS URL for the snippet")
    revoke = sub.add_parser("revoke", help="revoke the credentials last enrolled for HOST")
    revoke.add_argument("host", metavar="HOST")
    revoke.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="folder of `vigil nats init`")
    return p


def _init(args: argparse.Namespace) -> None:
    if (args.tls_cert is None) != (args.tls_key is None):
        raise NatsDirError("cannot configure TLS: --tls-cert and --tls-key go together")
    tls = None
    if args.tls_cert is not None:
        tls = ServerTLS(args.tls_cert, args.tls_key, args.tls_ca, verify=args.tls_verify)
    elif args.tls_verify or args.tls_ca:
        raise NatsDirError("cannot configure TLS: --tls-ca and --tls-verify need --tls-cert")
    host, port = args.listen
    options = ServerOptions(
        host=host,
        port=port,
        http_port=args.http_port,
        server_name=args.server_name,
        store_dir=args.store_dir,
        tls=tls,
    )
    try:
        setup = NatsDir.init(
            args.dir,
            options,
            prefix=args.prefix,
            operator_name=args.operator_name,
            force=args.force,
        )
    except ValueError as exc:
        raise NatsDirError(f"cannot initialise {args.dir}: {exc}") from exc
    _out(f"wrote {setup.server_conf} (operator mode, accounts in {setup.path / 'accounts.conf'})")
    _out(f"signing keys in {setup.keys_dir} (keep private: they mint credentials)")
    for service in SERVICES:
        _out(f"{service:<9} {setup.service_creds(service)}")
    _out(f"start: nats-server -c {setup.server_conf}")
    _out(f"enrol an agent: vigil agent enroll HOST --dir {setup.path}")


def _enroll(args: argparse.Namespace) -> None:
    setup = NatsDir.load(args.dir)
    enrolled = setup.enroll(args.host)
    _out(f"# credentials for {args.host!r}: {enrolled.creds_file}")
    _out(f"# copy to the host as {args.creds_path} (mode 0600, readable by the agent only)")
    _out(f"# may publish {enrolled.subject} and receive replies under {enrolled.inbox_prefix}.>")
    _out("nats:")
    if args.server:
        _out(f"  servers: [{', '.join(f'{s!r}' for s in args.server)}]")
    _out(f"  creds_file: {args.creds_path}")
    _out(f"  inbox_prefix: {enrolled.inbox_prefix!r}")
    _out(
        f"# or on the host: install-agent.sh --creds {enrolled.creds_file.name} "
        f"--inbox-prefix {enrolled.inbox_prefix!r}" + "".join(f" --server {s}" for s in args.server)
    )


def _revoke(args: argparse.Namespace) -> None:
    setup = NatsDir.load(args.dir)
    public_key = setup.revoke(args.host)
    _out(f"revoked {public_key} ({args.host!r}) in {setup.path / 'accounts.conf'}")
    _out("apply: nats-server --signal reload (or SIGHUP to the server process)")


def main(argv: list[str] | None = None) -> int:
    """``vigil nats ...``"""
    args = _nats_parser().parse_args(argv)
    return _run(_init, args, "vigil nats")


def agent_main(argv: list[str] | None = None) -> int:
    """``vigil agent ...``"""
    args = _agent_parser().parse_args(argv)
    return _run(_enroll if args.command == "enroll" else _revoke, args, "vigil agent")


def _run(command: Callable[[argparse.Namespace], None], args: argparse.Namespace, prog: str) -> int:
    try:
        command(args)
    except NatsDirError as exc:
        sys.stderr.write(f"{prog}: {exc}\n")
        return 1
    return 0
