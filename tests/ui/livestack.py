"""A running Vigil fed by a real agent, for browser tests: agent, ingest, alerter and notifier
as processes (their own ``vigil-*`` entry points), web in-process, one config file.

The notifier's webhook points at a local recording ``HookServer``. Processes are
ended by their own handles (terminate, then kill after a bounded wait).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from shared.config.loader import load_config
from shared.devenv.procs import free_port
from tests.notifier.hookserver import HookServer
from web.app import App

REPO = Path(__file__).parents[2]
VENV_BIN = Path(sys.executable).parent
SERVICES = ("ingest", "alerter", "notifier", "agent")
HOST = "ui-agent"


@dataclass
class LiveStack:
    work: Path
    web: App
    hook: HookServer
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.web.port}"

    def exited(self) -> list[str]:
        """Services that stopped on their own, with where their log is."""
        out = []
        for p in self.procs:
            if p.poll() is not None:
                argv: list[str] = list(p.args)  # type: ignore[arg-type]
                out.append(
                    f"{Path(argv[0]).name} exited {p.returncode} (log: {self.work / 'logs'})"
                )
        return out

    def stop_processes(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)


def write_config(
    work: Path,
    *,
    nats_url: str,
    db_url: str,
    hook_url: str,
    rules: str,
    route: dict[str, Any],
) -> Path:
    (work / "rules.yml").write_text(rules, encoding="utf-8")
    doc: dict[str, Any] = {
        "nats": {"servers": [nats_url]},
        "storage": {"database_url": db_url},
        "collectors": [{"type": "system", "interval": 2}],
        "agent": {"spool_dir": str(work / "spool"), "flush_interval": 0.2, "hostname": HOST},
        "alerting": {
            "rule_files": ["rules.yml"],
            "evaluation_interval": "1s",
            "alertmanager_config": {
                "route": {"receiver": "hook", **route},
                "receivers": [
                    {"name": "hook", "webhook_configs": [{"url": hook_url, "send_resolved": False}]}
                ],
            },
        },
        "ingest": {"listen_address": f"127.0.0.1:{free_port()}"},
        "alerter": {"listen_address": f"127.0.0.1:{free_port()}"},
        "notifier": {"listen_address": f"127.0.0.1:{free_port()}"},
        "visualization": {"listen_address": "127.0.0.1:0"},
        "log": {"level": "warning", "format": "json"},
    }
    path = work / "vigil.yml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def spawn(
    work: Path, config: Path, services: Sequence[str] = SERVICES
) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    procs = []
    for svc in services:
        with (logs / f"{svc}.log").open("wb") as out:
            procs.append(
                subprocess.Popen(
                    [str(VENV_BIN / f"vigil-{svc}"), "--config", str(config)],
                    cwd=work,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
    return procs


async def start_stack(
    work: Path,
    *,
    nats_url: str,
    db_url: str,
    rules: str,
    route: dict[str, Any],
) -> LiveStack:
    hook = await HookServer().start()
    config = write_config(
        work, nats_url=nats_url, db_url=db_url, hook_url=hook.url(), rules=rules, route=route
    )
    web = App(load_config(config))
    stack = LiveStack(work, web, hook)
    try:
        stack.procs = spawn(work, config)
        await web.start()
    except BaseException:
        stack.stop_processes()
        await hook.stop()
        raise
    return stack


async def stop_stack(stack: LiveStack) -> None:
    try:
        await stack.web.stop()
    finally:
        stack.stop_processes()
        await stack.hook.stop()
