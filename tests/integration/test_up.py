"""``vigil up`` brings the stack up, prints where it listens, and stops everything on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from shared.devenv.procs import free_port
from shared.devenv.rootfs import default_cache_dir, mounts_under
from tests.fixtures.timescale import run_sync

VIGIL = Path(sys.executable).parent / "vigil"


def start_up(state: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "VIGIL_DATABASE_URL"}
    if os.environ.get("VIGIL_TEST_DATABASE_URL"):
        env["VIGIL_DATABASE_URL"] = os.environ["VIGIL_TEST_DATABASE_URL"]
    return subprocess.Popen(
        [
            str(VIGIL),
            "up",
            "--state-dir",
            str(state),
            "--nats-port",
            "0",
            "--db-port",
            "0",
            "--any-admin-port",
            "--web-port",
            str(free_port()),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def read_until_up(proc: subprocess.Popen[str], deadline_s: float = 90) -> str:
    assert proc.stdout is not None
    out = []
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        out.append(line)
        if line.startswith("press Ctrl-C"):
            return "".join(out)
    proc.kill()
    pytest.fail("vigil up did not come up:\n" + "".join(out))


async def metrics_published(url: str) -> bool:
    """The agent `vigil up` started publishes this host's metrics into the stream."""
    import asyncio

    import nats

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        for _ in range(600):  # bounded: the first system cycle is due within its 10 s interval
            if (await js.stream_info("VIGIL_METRICS")).state.messages > 0:
                return True
            await asyncio.sleep(0.1)
        return False
    finally:
        await nc.close()


async def samples_stored(url: str) -> bool:
    """Ingest, started by `vigil up` too, writes the agent's samples to the database."""
    import asyncio

    import asyncpg

    for _ in range(600):  # bounded: ingest migrates, then consumes what the agent sent
        conn = await asyncpg.connect(url)
        try:
            if await conn.fetchval("SELECT to_regclass('samples') IS NOT NULL") and (
                await conn.fetchval("SELECT count(*) FROM samples") > 0
            ):
                return True
        finally:
            await conn.close()
        await asyncio.sleep(0.1)
    return False


async def host_metrics_served(base: str) -> bool:
    """This host's metrics, through the Prometheus HTTP API, as Grafana would ask."""
    import asyncio

    import httpx

    async with httpx.AsyncClient(timeout=5) as client:
        for _ in range(600):  # bounded: web answers once the agent's first cycle is stored
            try:
                r = await client.post(f"{base}/api/v1/query", data={"query": "node_load1"})
                if r.status_code == 200 and r.json()["data"]["result"]:
                    return True
            except httpx.TransportError:
                pass  # web not listening yet
            await asyncio.sleep(0.1)
    return False


def rule_groups_served(base: str) -> set[str]:
    """The rule groups ``/api/v1/rules`` lists (the default rule set when no config is given)."""
    import httpx

    r = httpx.get(f"{base}/api/v1/rules", timeout=10)
    r.raise_for_status()
    return {g["name"] for g in r.json()["data"]["groups"]}


def descendants(pid: int) -> list[int]:
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


@pytest.mark.usefixtures("timescale_server")  # the rootfs is built before tests run
def test_up_starts_nats_and_timescaledb_then_stops_everything(tmp_path: Path) -> None:
    for run in range(2):  # the second run reuses the state: existing store and database
        proc = start_up(tmp_path / "state")
        try:
            banner = read_until_up(proc)
            nats_url = re.search(r"nats\s+(nats://127\.0\.0\.1:\d+)", banner)
            db_url = re.search(r"timescaledb\s+(postgresql://\S+)", banner)
            assert nats_url, banner
            assert db_url, banner
            assert "license" in banner
            expected = "8 created" if run == 0 else "0 created"
            assert expected in banner, banner
            if run == 0:
                assert "agent" in banner
                assert run_sync(metrics_published(nats_url.group(1))), (
                    "no agent batch reached VIGIL_METRICS"
                )
                assert run_sync(samples_stored(db_url.group(1))), "ingest stored no sample"
                web = re.search(r"web\s+(http://127\.0\.0\.1:\d+)/", banner)
                assert web, banner
                assert run_sync(host_metrics_served(web.group(1))), "no host metric via the API"
                assert "deploy/rules/node.yml" in banner, banner
                assert {"node-availability", "node-filesystem"} <= rule_groups_served(web.group(1))
            children = descendants(proc.pid)
            assert children, "nats-server and postgres run as children"
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=60)
            assert proc.returncode == 0, out
            assert "vigil stopped" in out
            assert not [
                p
                for p in children
                if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"
            ]
        finally:
            if proc.poll() is None:
                proc.kill()
    assert mounts_under(default_cache_dir()) == []
