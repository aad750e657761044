"""A real Prometheus (Debian's ``prometheus``) uses the notifier as its Alertmanager."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.compat.node_exporter import free_port
from tests.notifier.api.conftest import AppFactory, am_config, eventually_async
from tests.notifier.hookserver import HookServer
from tests.oracle.prometheus import MISSING_REASON, PROMETHEUS, available

pytestmark = pytest.mark.skipif(not available(), reason=MISSING_REASON)

RULES = """\
groups:
  - name: always
    interval: 1s
    rules:
      - alert: AlwaysFiring
        expr: vector(1)
        labels: {severity: page}
        annotations: {summary: "it fires"}
"""


@contextlib.asynccontextmanager
async def prometheus(folder: Path, alertmanager: str) -> AsyncIterator[None]:
    (folder / "rules.yml").write_text(RULES, encoding="utf-8")
    config = folder / "prometheus.yml"
    config.write_text(
        "global: {evaluation_interval: 1s, scrape_interval: 1m}\n"
        "rule_files: [rules.yml]\n"
        "alerting:\n"
        "  alertmanagers:\n"
        f"    - api_version: v2\n      static_configs: [{{targets: ['{alertmanager}']}}]\n",
        encoding="utf-8",
    )
    with (folder / "prometheus.log").open("wb") as log:
        proc = subprocess.Popen(  # noqa: ASYNC220 - starts at once; stopped below
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--web.listen-address=127.0.0.1:{free_port()}",
                f"--storage.tsdb.path={folder / 'tsdb'}",
                # alerts evaluated before discovery found the notifier (it settles after
                # about 5 s) are dropped; re-send soon instead of after a minute
                "--rules.alert.resend-delay=1s",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        yield
    finally:
        proc.terminate()  # SIGTERM to this PID only
        try:
            await asyncio.to_thread(proc.wait, 20)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait, 10)


async def test_prometheus_sends_its_alerts_to_the_notifier(
    make_app: AppFactory, hook: HookServer, tmp_path: Path
) -> None:
    app = await make_app(am_config(hook.url(), group_wait="0s"))
    folder = tmp_path / "prometheus"
    folder.mkdir()
    async with (
        prometheus(folder, f"127.0.0.1:{app.admin_port}"),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.admin_port}/api/v2") as client,
    ):
        found: list[dict[str, object]] = []

        async def arrived() -> bool:
            nonlocal found
            found = (await client.get("/alerts")).json()
            return bool(found)

        await eventually_async(arrived, within=30)
        [alert] = found
        assert alert["labels"] == {"alertname": "AlwaysFiring", "severity": "page"}
        assert alert["annotations"] == {"summary": "it fires"}
        assert "/graph?g0.expr=vector" in str(alert["generatorURL"])
        [req] = await hook.wait_for(1, within=20)
        doc = req.json()
        assert doc["groupKey"] == '{}:{alertname="AlwaysFiring"}'
        assert doc["alerts"][0]["labels"]["severity"] == "page"
