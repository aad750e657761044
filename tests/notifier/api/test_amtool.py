"""``amtool`` (Debian's ``prometheus-alertmanager``) against a running notifier."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from notifier.app import App
from tests.notifier.api.conftest import AppFactory, am_config, eventually
from tests.notifier.hookserver import HookServer

AMTOOL = "/usr/bin/amtool"
EXE = AMTOOL if Path(AMTOOL).exists() else shutil.which("amtool") or AMTOOL

pytestmark = pytest.mark.skipif(
    not Path(EXE).exists(),
    reason="amtool is not installed: run deploy/local/install-oracles.sh as root "
    "(or apt-get install --no-install-recommends prometheus-alertmanager)",
)


async def amtool(app: App, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        EXE,
        f"--alertmanager.url=http://127.0.0.1:{app.admin_port}",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"HOME": "/nonexistent", "USER": "tester", "PATH": "/usr/bin:/bin"},
    )
    async with asyncio.timeout(20):
        out, err = await proc.communicate()
    assert proc.returncode == 0, f"amtool {' '.join(args)}: {err.decode()}{out.decode()}"
    return out.decode()


async def test_amtool_adds_queries_and_expires_a_silence(
    make_app: AppFactory, hook: HookServer
) -> None:
    app = await make_app(am_config(hook.url()))
    sid = (
        await amtool(app, "silence", "add", "alertname=X", "--comment=maintenance", "--duration=1h")
    ).strip()
    assert len(sid) == 36  # a UUID
    await eventually(lambda: len(app.silencer) == 1)

    listed = await amtool(app, "silence", "query")
    assert sid in listed
    assert 'alertname="X"' in listed
    assert "maintenance" in listed
    assert sid in await amtool(app, "silence", "query", "-q", "alertname=X")
    assert sid not in await amtool(app, "silence", "query", "alertname=Y")
    assert sid in await amtool(app, "-o", "json", "silence", "query")

    await amtool(app, "silence", "expire", sid)
    assert sid not in await amtool(app, "silence", "query")
    assert sid in await amtool(app, "silence", "query", "--expired")


async def test_amtool_adds_and_queries_alerts(make_app: AppFactory, hook: HookServer) -> None:
    app = await make_app(am_config(hook.url()))
    await amtool(
        app, "alert", "add", "alertname=DiskFull", "instance=db1", "--annotation=summary=full"
    )
    await amtool(app, "alert", "add", "alertname=Other", "instance=web1")
    await eventually(lambda: len(app.store) == 2)
    out = await amtool(app, "alert", "query")
    assert "DiskFull" in out
    assert "Other" in out
    out = await amtool(app, "alert", "query", "alertname=DiskFull")
    assert "DiskFull" in out
    assert "Other" not in out
    out = await amtool(app, "-o", "extended", "alert", "query", "instance=~db.*")
    assert 'instance="db1"' in out
    assert "full" in out

    # a silence hides the alert from the default query (silenced alerts are not shown)
    await amtool(app, "silence", "add", "alertname=DiskFull", "--comment=quiet")
    await eventually(lambda: len(app.silencer) == 1)
    out = await amtool(app, "alert", "query")
    assert "DiskFull" not in out
    assert "Other" in out
    assert "DiskFull" in await amtool(app, "alert", "query", "--silenced")


async def test_amtool_reads_status_config_and_receivers(
    make_app: AppFactory, hook: HookServer
) -> None:
    am = am_config(hook.url())
    # amtool 0.25 cannot parse a masked webhook URL back: leave the receivers without one
    for receiver in am["receivers"]:
        del receiver["webhook_configs"]
    app = await make_app(am)
    assert "receiver: hook" in await amtool(app, "config", "show")
    assert "disabled" in await amtool(app, "cluster", "show")
    routes = await amtool(app, "config", "routes", "test", "--verify.receivers=db", "team=db")
    assert routes.strip() == "db"
