"""UI test fixtures: a fleet's worth of samples ending now, a web App over them, a browser.

The browser is Debian's ``chromium`` driven by Python Playwright; tests that
need it skip, saying why, when ``/usr/bin/chromium``, the ``playwright``
package or the built UI (``deploy/local/build-ui.sh``) is missing.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from ingest.prepare import prepare_database
from shared.config.models import StorageConfig
from tests.fixtures.timescale import run_sync
from tests.ui.chromium import CHROMIUM, chromium
from tests.web.conftest import add_samples, add_series, web_config
from web import ui
from web.app import App

STEP_MS = 10_000
HISTORY_MS = 70 * 60_000
HOSTS = ("web-1", "web-2", "db-1")
DOWN_HOST = "db-1"
"""Stopped reporting 15 minutes ago: the overview shows it down."""


def browser_missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install -y chromium)"
    if importlib.util.find_spec("playwright") is None:
        return "the playwright Python package is missing (pip install playwright)"
    if not (ui.ui_dir() / "index.html").is_file():
        return f"the UI is not built in {ui.ui_dir()} (run deploy/local/build-ui.sh)"
    return None


@contextlib.asynccontextmanager
async def new_page(width: int, height: int) -> AsyncIterator[Any]:
    """A page of its own browser; the test fails on any JavaScript error it saw."""
    async with chromium() as browser:
        context = await browser.new_context(viewport={"width": width, "height": height})
        p = await context.new_page()
        errors: list[str] = []
        p.on("pageerror", lambda exc: errors.append(str(exc)))
        yield p
        assert not errors, f"JavaScript errors: {errors}"


@dataclass(frozen=True)
class Fleet:
    url: str
    end_ms: int


@pytest.fixture(scope="module")
def fleet(timescale_db: str) -> Fleet:
    """A migrated database holding the fleet's samples up to the module's start (once:
    counters written twice from different starts would look like resets)."""
    run_sync(prepare_database(timescale_db, StorageConfig()))
    end_ms = int(time.time() * 1000) // STEP_MS * STEP_MS
    run_sync(load_fleet(timescale_db, end_ms))
    return Fleet(timescale_db, end_ms)


def host_series(host: str, h: int) -> list[tuple[str, dict[str, str], Any]]:
    """(metric, labels, value of t seconds since the start) for one host; ``h`` varies it."""
    fs = {"device": "/dev/sda1", "fstype": "ext4", "mountpoint": "/"}
    boot = {"device": "/dev/sda2", "fstype": "ext4", "mountpoint": "/boot"}
    out: list[tuple[str, dict[str, str], Any]] = [
        ("node_uname_info", {"nodename": host, "sysname": "Linux"}, lambda t: 1.0),
        ("node_boot_time_seconds", {}, lambda t: 1.7e9),
        ("node_time_seconds", {}, lambda t: 1.7e9 + 86400 * (h + 1) + t),
        ("node_load1", {}, lambda t: 0.5 + h + 0.4 * math.sin(t / 300)),
        ("node_load5", {}, lambda t: 0.4 + h + 0.2 * math.sin(t / 600)),
        ("node_load15", {}, lambda t: 0.3 + h),
        ("node_procs_running", {}, lambda t: 2 + (t // 60) % 3),
        ("node_procs_blocked", {}, lambda t: 0.0),
        ("node_context_switches_total", {}, lambda t: 1000.0 * t),
        ("node_memory_MemTotal_bytes", {}, lambda t: 8 * 2**30),
        ("node_memory_MemAvailable_bytes", {}, lambda t: (5 - h - math.sin(t / 500)) * 2**30),
        ("node_filesystem_size_bytes", fs, lambda t: 100 * 2**30),
        ("node_filesystem_avail_bytes", fs, lambda t: (60 - 15 * h - t / 600) * 2**30),
        ("node_filesystem_size_bytes", boot, lambda t: 2**30),
        ("node_filesystem_avail_bytes", boot, lambda t: 0.7 * 2**30),
        ("node_scrape_collector_success", {"collector": "cpu"}, lambda t: 1.0),
        ("vigil_agent_publish_errors_total", {}, lambda t: float(t // 900)),
    ]
    for cpu in ("0", "1"):
        for mode, share in (("idle", 0.7 - 0.2 * h), ("user", 0.2 + 0.15 * h), ("system", 0.1)):
            wobble = 0.05 * math.sin(int(cpu) + h)

            def counter(t: float, share: float = share, wobble: float = wobble) -> float:
                return t * (share + wobble) if share != 0.1 else t * 0.1

            out.append(("node_cpu_seconds_total", {"cpu": cpu, "mode": mode}, counter))
    for device in ("eth0", "lo"):
        scale = 1 if device == "eth0" else 0.1
        out += [
            (
                "node_network_receive_bytes_total",
                {"device": device},
                lambda t, s=scale: s * (2e5 * t + 5e4 * math.sin(t / 200) * 60),
            ),
            (
                "node_network_transmit_bytes_total",
                {"device": device},
                lambda t, s=scale: s * 8e4 * t,
            ),
            ("node_network_receive_errs_total", {"device": device}, lambda t: float(t // 600)),
            ("node_network_transmit_errs_total", {"device": device}, lambda t: 0.0),
            ("node_network_receive_drop_total", {"device": device}, lambda t: float(t // 300)),
            ("node_network_transmit_drop_total", {"device": device}, lambda t: 0.0),
        ]
    for name, rate in (
        ("node_disk_io_time_seconds_total", 0.1 + 0.1 * h),
        ("node_disk_read_bytes_total", 3e5),
        ("node_disk_written_bytes_total", 9e5),
        ("node_disk_read_time_seconds_total", 0.02),
        ("node_disk_reads_completed_total", 20.0),
        ("node_disk_write_time_seconds_total", 0.08),
        ("node_disk_writes_completed_total", 40.0),
    ):
        out.append((name, {"device": "sda"}, lambda t, r=rate: r * t))
    return out


def probe_series(host: str) -> list[tuple[str, dict[str, str], Any]]:
    """A scrape target and two HTTP probes run by web-1's agent; one probe fails for 3 minutes."""
    if host != "web-1":
        return []
    ok = {"instance": "https://shop.example.com", "module": "http_2xx", "job": "blackbox"}
    flaky = {"instance": "https://api.example.com/health", "module": "http_2xx", "job": "blackbox"}
    scrape = {"instance": "127.0.0.1:8080", "job": "api"}
    outage = (1800, 1980)
    return [
        ("probe_success", ok, lambda t: 1.0),
        ("probe_duration_seconds", ok, lambda t: 0.12 + 0.03 * math.sin(t / 120)),
        ("probe_http_status_code", ok, lambda t: 200.0),
        ("probe_success", flaky, lambda t: 0.0 if outage[0] <= t < outage[1] else 1.0),
        ("probe_duration_seconds", flaky, lambda t: 0.3 + 0.1 * math.cos(t / 90)),
        ("probe_http_status_code", flaky, lambda t: 503.0 if outage[0] <= t < outage[1] else 200.0),
        ("up", scrape, lambda t: 1.0),
        ("scrape_duration_seconds", scrape, lambda t: 0.02),
        ("http_requests_total", {**scrape, "code": "200"}, lambda t: 50.0 * t),
        ("http_requests_total", {**scrape, "code": "500"}, lambda t: 0.5 * t),
        (
            "ALERTS",
            {"alertname": "HighCPU", "alertstate": "firing", "severity": "critical"},
            lambda t: 1.0,
        ),
        (
            "ALERTS",
            {
                "alertname": "FilesystemFilling",
                "alertstate": "firing",
                "severity": "warning",
                "mountpoint": "/",
            },
            lambda t: 1.0,
        ),
    ]


async def load_fleet(url: str, end_ms: int) -> None:
    """Samples every 10 s over the last 70 minutes, as ingest stores them."""
    start_ms = end_ms - HISTORY_MS
    conn = await asyncpg.connect(url)
    try:
        for h, host in enumerate(HOSTS):
            stop_ms = end_ms - 15 * 60_000 if host == DOWN_HOST else end_ms
            times = range(start_ms, stop_ms + 1, STEP_MS)
            for metric, labels, value in host_series(host, h) + probe_series(host):
                sid = await add_series(conn, metric, {**labels, "host": host})
                points = [(t, float(value((t - start_ms) / 1000))) for t in times]
                await add_samples(conn, sid, points)
    finally:
        await conn.close()


@dataclass
class Stack:
    app: App
    base: str


@pytest.fixture
async def stack(tmp_path: Path, fleet: Fleet) -> AsyncIterator[Stack]:
    app = App(web_config(tmp_path, fleet.url))
    await app.start()
    try:
        yield Stack(app, f"http://127.0.0.1:{app.port}")
    finally:
        await app.stop()


ARTIFACTS_ENV = "VIGIL_TEST_ARTIFACTS"
REPO = Path(__file__).resolve().parents[2]


def screenshot_dir() -> Path:
    """Where the UI tests keep their screenshots for a person to look at:
    ``$VIGIL_TEST_ARTIFACTS/screenshots/`` when set, else ``test-artifacts/screenshots/``
    in the repository (git-ignored). One file per page and theme, overwritten each run."""
    root = os.environ.get(ARTIFACTS_ENV) or str(REPO / "test-artifacts")
    folder = Path(root) / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def screenshots() -> Path:
    return screenshot_dir()
