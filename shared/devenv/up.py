"""``vigil up``: the whole stack on this machine, in one command.

Starts, in order: a nats-server with JetStream; TimescaleDB (the server in
``VIGIL_DATABASE_URL`` or ``storage.database_url`` when given, else the local
development server from the cached root filesystem); the streams and buckets
of the NATS contract; then every Vigil service that exists, as supervised
child processes that are restarted with backoff when they crash. It prints
where each part listens, and on Ctrl-C or SIGTERM stops everything it started,
services first, by PID.

State (the JetStream store, the database files) lives under
``<cache>/dev`` and survives restarts; ``--state-dir`` puts it elsewhere.
Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from urllib.parse import urlsplit

from shared.bus.connect import connect
from shared.bus.provision import provision
from shared.config.loader import LoadedConfig, load_config
from shared.devenv.databases import (
    configured_database_url,
    create_database,
    server_info,
    with_database,
)
from shared.devenv.nats import NatsServer
from shared.devenv.rootfs import default_cache_dir, ensure_rootfs
from shared.devenv.supervisor import ChildSpec, Supervisor
from shared.devenv.timescale import LocalTimescale
from shared.errors import ConfigError, VigilError
from shared.log import configure_logging, get_logger
from shared.runner import install_uvloop

log = get_logger(__name__)

DEFAULT_NATS_PORT = 4222
DEFAULT_DB_PORT = 55432
DEFAULT_WEB_PORT = 9090
DATABASE = "vigil"
DEFAULT_RULES = Path(__file__).resolve().parents[2] / "deploy" / "rules" / "node.yml"
"""The node_exporter rule set, loaded when neither a config file nor rule files are given
(present in a checkout of the repository, not in an installed wheel)."""

# The services `vigil up` runs, in start order: name, console script, and
# environment overrides given the state folder. A service joins this list in
# the change that makes it run.
SERVICES: list[tuple[str, str, dict[str, str]]] = [
    ("ingest", "vigil-ingest", {"VIGIL_INGEST__LISTEN_ADDRESS": "127.0.0.1:{port:9464}"}),
    ("alerter", "vigil-alerter", {"VIGIL_ALERTER__LISTEN_ADDRESS": "127.0.0.1:{port:9094}"}),
    ("notifier", "vigil-notifier", {"VIGIL_NOTIFIER__LISTEN_ADDRESS": "127.0.0.1:{port:9093}"}),
    ("web", "vigil-web", {"VIGIL_VISUALIZATION__LISTEN_ADDRESS": "127.0.0.1:{web_port}"}),
    (
        "agent",
        "vigil-agent",
        {
            "VIGIL_AGENT__SPOOL_DIR": "{state}/agent-spool",
            "VIGIL_AGENT__LISTEN_ADDRESS": "127.0.0.1:{port:9101}",
        },
    ),
]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vigil up", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    p.add_argument(
        "--config", "-c", metavar="FILE", help="configuration file (default: built-in defaults)"
    )
    p.add_argument(
        "--state-dir", type=Path, help="where NATS and database files live (default: <cache>/dev)"
    )
    p.add_argument(
        "--nats-port", type=int, default=DEFAULT_NATS_PORT, help="NATS port (0: any free port)"
    )
    p.add_argument(
        "--db-port",
        type=int,
        default=DEFAULT_DB_PORT,
        help="local database port (0: any free port)",
    )
    p.add_argument(
        "--web-port", type=int, default=DEFAULT_WEB_PORT, help="port of the HTTP API and UI"
    )
    p.add_argument(
        "--any-admin-port",
        action="store_true",
        help="let each service bind any free port for /metrics instead of its usual one",
    )
    return p


async def _run(args: argparse.Namespace, loaded: LoadedConfig, stop: asyncio.Event) -> None:
    state = args.state_dir or default_cache_dir() / "dev"
    state.mkdir(parents=True, exist_ok=True)
    nats_server = NatsServer(state / "nats", port=args.nats_port)
    db: LocalTimescale | None = None
    supervisor: Supervisor | None = None
    try:
        nats_server.start()
        nats_cfg = loaded.config.nats.model_copy(update={"servers": [nats_server.url]})
        nc = await connect(nats_cfg, name="vigil-up", wait=10)
        report = await provision(nc.jetstream(), nats_cfg)
        await nc.close()

        url = configured_database_url(loaded.config.storage)
        if url is None:
            db = LocalTimescale(ensure_rootfs(), state / "pgdata", port=args.db_port)
            await asyncio.to_thread(db.start)
            url = await _ensure_database(db.url)
        info = await server_info(url)

        env = {"VIGIL_NATS__SERVERS": f'["{nats_server.url}"]', "VIGIL_DATABASE_URL": url}
        if loaded.path is not None:
            env["VIGIL_CONFIG"] = str(loaded.base_dir / loaded.path.name)
        rules = _default_rules(loaded)
        if rules is not None:
            env["VIGIL_ALERTING__RULE_FILES"] = json.dumps([str(rules)])
        bindir = Path(sys.executable).parent
        supervisor = Supervisor(
            [
                ChildSpec(
                    name,
                    [str(bindir / script)],
                    {
                        **env,
                        **{
                            k: _fill(v, state, args.any_admin_port, args.web_port)
                            for k, v in extra.items()
                        },
                    },
                )
                for name, script, extra in SERVICES
            ]
        )
        await supervisor.start()

        lines = [
            f"nats         {nats_server.url}  (JetStream store {nats_server.store_dir}; "
            f"streams and buckets: {len(report.created)} created, {len(report.updated)} updated)",
            f"timescaledb  {_redact(url)}  (TimescaleDB {info.timescaledb_version}, "
            f"license {info.timescaledb_license}, {'local' if db else 'external'})",
        ]
        if rules is not None:
            lines.append(f"rules        {rules}  (the node_exporter rule set)")
        for name, _script, extra in SERVICES:
            if name == "web":
                lines.append(
                    f"{name:<12} http://127.0.0.1:{args.web_port}/  (Prometheus HTTP API: "
                    "point Grafana's Prometheus data source here)"
                )
                continue
            admin = next((v for k, v in extra.items() if k.endswith("__LISTEN_ADDRESS")), None)
            admin = None if admin is None or args.any_admin_port else _fill(admin, state, False)
            lines.append(
                f"{name:<12} started" + (f" (metrics: http://{admin}/metrics)" if admin else "")
            )
        print(
            "\n".join(["vigil is up:", *("  " + line for line in lines), "press Ctrl-C to stop"]),
            flush=True,
        )
        await stop.wait()
    finally:
        if supervisor is not None:
            await supervisor.stop()
        if db is not None:
            await asyncio.to_thread(db.stop)
        nats_server.stop()
        print("vigil stopped", flush=True)


def _fill(template: str, state: Path, any_port: bool, web_port: int = DEFAULT_WEB_PORT) -> str:
    """Fill ``{state}``, ``{web_port}`` and ``{port:N}`` (N, or 0 with ``--any-admin-port``)."""
    out = template.replace("{state}", str(state)).replace("{web_port}", str(web_port))
    while "{port:" in out:
        start = out.index("{port:")
        end = out.index("}", start)
        out = out[:start] + ("0" if any_port else out[start + 6 : end]) + out[end + 1 :]
    return out


def _default_rules(loaded: LoadedConfig) -> Path | None:
    """``DEFAULT_RULES`` when nothing names rule files and the file is there, else None."""
    if loaded.path is not None or loaded.config.alerting.rule_files:
        return None
    return DEFAULT_RULES if DEFAULT_RULES.is_file() else None


async def _ensure_database(admin_url: str) -> str:
    """The ``vigil`` database of the local server, created on first start."""
    try:
        return await create_database(admin_url, DATABASE)
    except VigilError:
        # it exists from an earlier run: that is the point of a persistent state dir
        return with_database(admin_url, DATABASE)


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        loaded = load_config(args.config)
    except ConfigError as exc:
        print(f"vigil up: {exc}", file=sys.stderr)
        return 1
    configure_logging(loaded.config.log.level, loaded.config.log.format, service="up")
    install_uvloop()

    async def body() -> None:
        import signal

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await _run(args, loaded, stop)

    try:
        asyncio.run(body())
    except VigilError as exc:
        print(f"vigil up: {exc}", file=sys.stderr)
        return 1
    return 0
