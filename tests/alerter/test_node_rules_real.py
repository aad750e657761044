"""The product corpus deploy/rules/node.yml fires on real conditions on this machine.

A real agent process (its system collector, node_exporter names) publishes to a
real nats-server; the real alerter evaluates the corpus. The test mounts a 16 MiB
tmpfs, fills it with a growing file until the disk rules fire for that mount
point ("predicted full" while it grows, "almost full" past 95 %), then ends the
agent process: ``up`` drops to 0 and HostDown fires.

The corpus' ``for`` durations are production ones (minutes to an hour), so the
test loads it through an override that changes only ``for`` (to 1 s, on every
alerting rule that has one) and checks that every expression, threshold and
label is the corpus' own. ``alerter.up_timeout`` is 5 s and the evaluation
interval 1 s (the test's config, not the corpus). The agent reports only the
test's mount (``filesystem_mount_points_exclude``), so the machine's own disks
cannot make the test flaky.
"""

from __future__ import annotations

import asyncio
import copy
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from nats.aio.client import Client

from alerter.app import App
from alerter.cli import main as rules_main
from shared.bus.provision import provision
from shared.config.models import NatsConfig
from shared.wire import AlertEvent
from tests.alerter.livehelp import Events, make_app, until, write_config

ROOT = Path(__file__).parents[2]
CORPUS = ROOT / "deploy" / "rules" / "node.yml"
HOST = "realhost"
MIB = 1024 * 1024
SHORT_FOR = "1s"


def short_for(doc: dict[str, Any]) -> dict[str, Any]:
    """The corpus with every alerting rule's ``for`` set to ``SHORT_FOR``; nothing else changed."""
    out = copy.deepcopy(doc)
    for group in out["groups"]:
        for rule in group["rules"]:
            if "alert" in rule and "for" in rule:
                rule["for"] = SHORT_FOR
    return out


def test_corpus_passes_vigil_rules_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert rules_main(["check", str(CORPUS)]) == 0
    assert "SUCCESS: 17 rules found" in capsys.readouterr().out


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_accepts_the_corpus() -> None:
    run = subprocess.run(
        ["promtool", "check", "rules", str(CORPUS)], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_override_changes_only_for() -> None:
    doc = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))
    short = short_for(doc)
    pairs = [
        (a, b)
        for ga, gb in zip(doc["groups"], short["groups"], strict=True)
        for a, b in zip(ga["rules"], gb["rules"], strict=True)
    ]
    assert all({**a, "for": None} == {**b, "for": None} for a, b in pairs)
    assert any(a.get("for") != b.get("for") for a, b in pairs)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs mounted for the test; unmounted afterwards whatever happened."""
    mountpoint = tmp_path / "small"
    mountpoint.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    run = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {run.stderr.strip() or run.returncode}")
    try:
        yield mountpoint
    finally:
        if subprocess.run(["umount", str(mountpoint)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(mountpoint)], check=False)  # busy: detach


def _agent_config(tmp_path: Path, nats_url: str, mountpoint: Path) -> Path:
    doc = {
        "nats": {"servers": [nats_url]},
        "agent": {
            "hostname": HOST,
            "spool_dir": str(tmp_path / "spool"),
            "flush_interval": "200ms",
        },
        "collectors": [
            {
                "type": "system",
                "interval": 1,
                "options": {
                    # report the test's mount only
                    "filesystem_mount_points_exclude": f"^(?!{re.escape(str(mountpoint))}$)",
                },
            }
        ],
        "log": {"level": "warning"},
    }
    path = tmp_path / "agent.yml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def _alerter_config(tmp_path: Path, nats_url: str) -> Path:
    folder = tmp_path / "alerter"
    folder.mkdir()
    rules = short_for(yaml.safe_load(CORPUS.read_text(encoding="utf-8")))
    path = write_config(folder, nats_url, yaml.safe_dump(rules), interval="1s")
    doc = yaml.safe_load(path.read_text())
    doc["alerter"]["up_timeout"] = "5s"
    path.write_text(yaml.safe_dump(doc))
    return path


def _firing(events: list[AlertEvent], name: str, **labels: str) -> list[AlertEvent]:
    return [
        e
        for e in events
        if e.status == "firing"
        and e.labels.get("alertname") == name
        and all(e.labels.get(k) == v for k, v in labels.items())
    ]


def _has_mount(app: App, mountpoint: Path) -> bool:
    return any(
        w.labels.get("__name__") == "node_filesystem_avail_bytes"
        and w.labels.get("mountpoint") == str(mountpoint)
        for w in app.store._series.values()
    )


async def _stream_has_data(nats_client: Client) -> bool:
    info = await nats_client.jetstream().stream_info("VIGIL_METRICS")
    return info.state.messages > 0


async def test_disk_filling_and_stopped_agent_fire_the_corpus_rules(
    tmp_path: Path, nats_url: str, nats_client: Client, tmpfs: Path
) -> None:
    await provision(nats_client.jetstream(), NatsConfig())
    events = Events()
    await events.start(nats_client)
    agent_config = _agent_config(tmp_path, nats_url, tmpfs)
    agent = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", "--config", str(agent_config), cwd=ROOT
    )
    app = make_app(_alerter_config(tmp_path, nats_url))
    started = False
    try:
        # the agent first: the alerter then knows a host at its first evaluation
        for _ in range(600):  # bounded: the agent's first cycle is due within 1 s
            if await _stream_has_data(nats_client):
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the agent published nothing within 60 s")
        await app.start()
        started = True
        await until(app.ready, "replay caught up")
        await until(lambda: _has_mount(app, tmpfs), "the tmpfs' metrics", within=60)

        # grow a file 1 MiB at a time, one step per collector cycle, to 15.6 MiB (97.5 %)
        with (tmpfs / "fill").open("wb") as f:
            for _ in range(15):
                f.write(b"\0" * MIB)
                f.flush()
                await asyncio.sleep(1.0)
            f.write(b"\0" * (MIB * 6 // 10))
            f.flush()
        mount = {"host": HOST, "mountpoint": str(tmpfs), "fstype": "tmpfs"}
        await until(
            lambda: bool(_firing(events.events, "HostFilesystemFillingUp", **mount)),
            "predicted-full alert for the tmpfs",
            within=60,
        )
        await until(
            lambda: bool(_firing(events.events, "HostFilesystemAlmostFull", **mount)),
            "almost-full alert for the tmpfs",
            within=60,
        )
        # a loaded machine may starve the agent past up_timeout: only a new HostDown counts
        before = len(_firing(events.events, "HostDown", host=HOST))
        agent.terminate()  # the process ends: no batch from the host any more
        async with asyncio.timeout(30):
            await agent.wait()
        await until(
            lambda: len(_firing(events.events, "HostDown", host=HOST)) > before,
            "HostDown after the agent ended",
            within=60,
        )
    finally:
        if agent.returncode is None:
            agent.kill()
            async with asyncio.timeout(30):
                await agent.wait()
        if started:
            await app.stop()
        await events.stop()
    down = _firing(events.events, "HostDown", host=HOST)[-1]
    assert down.labels["severity"] == "critical"
    assert down.annotations["summary"] == f"Host {HOST} is down"
    almost = _firing(events.events, "HostFilesystemAlmostFull", **mount)
    assert {e.labels["severity"] for e in almost} >= {"warning"}
    assert not _firing(events.events, "NoAgentReporting")
