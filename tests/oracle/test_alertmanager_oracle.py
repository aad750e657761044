"""Vigil's notifier against Debian's ``prometheus-alertmanager`` on one configuration and
one alert sequence: the same webhook notifications (groups, alerts, statuses), at the same
times within ±(0.5 s + 10%).

Both get the same ``alertmanager.yml`` (only the webhook path differs, so one local HTTP
server tells them apart) with short timers (``group_wait`` 1s, ``group_interval`` 2s),
and every step of the sequence is posted to both at once through ``POST /api/v2/alerts``,
so Vigil's API, stream, grouping, timers, notification log and webhook are all compared.
Alertmanager runs bound to 127.0.0.1 with clustering off and its own storage folder, and
is stopped by its PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from notifier.app import App, Settings
from notifier.delivery import RetryPolicy
from shared.config.loader import load_config
from shared.devenv.nats import NatsServer
from tests.compat.node_exporter import free_port
from tests.notifier.api.conftest import write_config
from tests.notifier.hookserver import HookServer, Request

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"

pytestmark = pytest.mark.skipif(
    not Path(ALERTMANAGER).exists(),
    reason="prometheus-alertmanager is not installed: run deploy/local/install-oracles.sh "
    "as root (or apt-get install --no-install-recommends prometheus-alertmanager)",
)


def am_config(hook_url: str) -> dict[str, Any]:
    return {
        "route": {
            "receiver": "hook",
            "group_by": ["alertname"],
            "group_wait": "1s",
            "group_interval": "2s",
            "repeat_interval": "1h",
            "routes": [
                {"matchers": ['team="db"'], "receiver": "db", "group_by": ["alertname", "team"]}
            ],
        },
        "receivers": [
            {"name": "hook", "webhook_configs": [{"url": hook_url, "send_resolved": True}]},
            {"name": "db", "webhook_configs": [{"url": hook_url, "send_resolved": True}]},
        ],
        "inhibit_rules": [
            {
                "source_matchers": ['severity="critical"'],
                "target_matchers": ['severity="warning"'],
                "equal": ["instance"],
            }
        ],
    }


class Stamped(list[Request]):
    """The hook server's request list, with the monotonic arrival time of each request."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def append(self, item: Request) -> None:
        self.times.append(time.monotonic())
        super().append(item)


@pytest.fixture
async def hook() -> AsyncIterator[HookServer]:
    server = await HookServer().start()
    server.requests = Stamped()
    yield server
    await server.stop()


@contextlib.asynccontextmanager
async def alertmanager(folder: Path, hook: HookServer) -> AsyncIterator[str]:
    config = folder / "alertmanager.yml"
    config.write_text(yaml.safe_dump(am_config(hook.url("/am"))), encoding="utf-8")
    log_path = folder / "alertmanager.log"
    for _attempt in range(3):
        port = free_port()
        with log_path.open("wb") as log:
            proc = subprocess.Popen(  # noqa: ASYNC220 - starts at once; waited on below
                [
                    ALERTMANAGER,
                    f"--config.file={config}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--cluster.listen-address=",
                    f"--storage.path={folder / 'data'}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        base = f"http://127.0.0.1:{port}"
        try:
            if await _ready(proc, base):
                yield base
                return
        finally:
            proc.terminate()  # SIGTERM to this PID only
            try:
                await asyncio.to_thread(proc.wait, 10)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait, 10)
    raise RuntimeError(f"cannot start alertmanager: {log_path.read_text(errors='replace')[-2000:]}")


async def _ready(proc: subprocess.Popen[bytes], base: str) -> bool:
    async with httpx.AsyncClient() as client:
        for _ in range(200):  # up to ~10 s
            if proc.poll() is not None:
                return False
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{base}/-/ready", timeout=1)).status_code == 200:
                    return True
            await asyncio.sleep(0.05)  # bounded polling of a starting process
    return False


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Spec:
    """One alert of the sequence; its times are taken when it is posted."""

    def __init__(
        self, name: str, instance: str, *, resolved: bool = False, age: float = 0.0, **labels: str
    ) -> None:
        self.labels = {"alertname": name, "instance": instance, **labels}
        self.resolved = resolved
        self.age = age

    def payload(self, now: datetime) -> dict[str, Any]:
        return {
            "labels": self.labels,
            "annotations": {"summary": "{alertname} on {instance}".format(**self.labels)},
            "startsAt": _iso(now - timedelta(seconds=self.age)),
            "endsAt": _iso(now if self.resolved else now + timedelta(minutes=5)),
            "generatorURL": "http://prometheus.example/graph",
        }


# (seconds after the start, alerts posted then). ``Host`` started long ago: a new group
# is not held back for group_wait then. ``Disk`` is inhibited from 1.6 s on, but was sent
# at 1 s already; its resolve is then not sent (suppressed alerts are left out).
SEQUENCE: list[tuple[float, list[Spec]]] = [
    (
        0.0,
        [
            Spec("Down", "a"),
            Spec("Down", "b"),
            Spec("Disk", "a", severity="warning"),
            Spec("Slow", "x", team="db"),
        ],
    ),
    (1.6, [Spec("Down", "c"), Spec("Host", "a", age=60, severity="critical")]),
    (3.5, [Spec("Down", "a", resolved=True), Spec("Disk", "a", resolved=True, severity="warning")]),
    (4.0, [Spec("Slow", "x", resolved=True, team="db")]),
]
RUN_FOR = 8.0


def _summary(req: Request) -> tuple[str, str, dict[str, str], str, list[tuple[Any, ...]]]:
    doc = req.json()
    alerts = sorted(
        (tuple(sorted(a["labels"].items())), a["status"], a["startsAt"]) for a in doc["alerts"]
    )
    return (
        doc["receiver"],
        doc["groupKey"],
        doc["groupLabels"],
        doc["status"],
        [a[:2] for a in alerts],
    )


async def test_vigil_sends_what_alertmanager_sends_at_the_same_times(
    nats_server: NatsServer, hook: HookServer, tmp_path: Path
) -> None:
    vigil_dir = tmp_path / "vigil"
    vigil_dir.mkdir()
    path = write_config(vigil_dir, nats_server.url, am_config(hook.url("/vigil")))
    app = App(
        load_config(path, env={}),
        Settings(
            listen_address="127.0.0.1:0",
            replica="oracle",
            tick=0.02,
            policy=RetryPolicy(initial=0.05, attempt_timeout=2.0),
        ),
    )
    await app.start()
    try:
        async with alertmanager(tmp_path, hook) as am_base, httpx.AsyncClient() as client:
            async with asyncio.timeout(10):
                while True:
                    if app.ready():
                        break
                    await asyncio.sleep(0.02)  # bounded polling: the notifier's start-up
            vigil_base = f"http://127.0.0.1:{app.admin_port}"
            start = time.monotonic()
            for at, specs in SEQUENCE:
                await asyncio.sleep(max(0.0, start + at - time.monotonic()))
                now = datetime.now(UTC)
                alerts = [spec.payload(now) for spec in specs]
                answers = await asyncio.gather(
                    client.post(f"{am_base}/api/v2/alerts", json=alerts),
                    client.post(f"{vigil_base}/api/v2/alerts", json=alerts),
                )
                assert [r.status_code for r in answers] == [200, 200], [r.text for r in answers]
            await asyncio.sleep(max(0.0, start + RUN_FOR - time.monotonic()))
    finally:
        await app.stop()

    assert isinstance(hook.requests, Stamped)
    sent: dict[str, list[tuple[float, Any]]] = {"/am": [], "/vigil": []}
    for req, t in zip(hook.requests, hook.requests.times, strict=True):
        sent[req.path].append((t - start, _summary(req)))
    report = "\n".join(f"{who:6} {t:6.2f}s {s}" for who, items in sent.items() for t, s in items)
    print(report)

    def by_group(items: list[tuple[float, Any]]) -> dict[tuple[str, str], list[tuple[float, Any]]]:
        out: dict[tuple[str, str], list[tuple[float, Any]]] = {}
        for t, s in items:
            out.setdefault((s[0], s[1]), []).append((t, s))
        return out

    am, vigil = by_group(sent["/am"]), by_group(sent["/vigil"])
    assert len(sent["/am"]) >= 6, report  # the oracle really ran the sequence
    assert set(am) == set(vigil), report
    for key, am_items in am.items():
        vigil_items = vigil[key]
        assert [s for _, s in vigil_items] == [s for _, s in am_items], report
        for (t_am, _), (t_vigil, _) in zip(am_items, vigil_items, strict=True):
            assert abs(t_vigil - t_am) <= 0.5 + 0.1 * t_am, f"{key}: {t_vigil=} {t_am=}\n{report}"
