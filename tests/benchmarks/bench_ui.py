"""The UI at fleet size: Overview's first full render and dashboard panel query latency.

Loads 50 hosts of agent data into a fresh TimescaleDB (schema by ingest's own
migrations, samples by binary COPY): node_exporter names and labels as the
agent's ``system`` collector writes them (CPU per ``cpu`` and ``mode``, guest
CPU, meminfo fields, filesystems including tmpfs ones, network devices,
disks, load, processes, uname, collector success), plus scrape targets,
blackbox probes, HTTP request counters and a few firing ``ALERTS`` on some
hosts; one host stopped reporting 15 minutes ago. Samples every 10 s from 70
minutes before the run to 15 minutes after it (so "now" stays inside the data
however long the run takes; the dashboards' default range is the last hour,
plus a 5-minute lookback). Rollups are not built: the web App runs with its
defaults (``visualization.query_rollups`` off), so no panel reads them.

Then the web App serves on 127.0.0.1:0 and Debian's ``chromium`` (headless,
driven by Playwright) measures:

- ``overview_ms``: navigation start to the Overview fully rendered (every host
  row with its four sparklines drawn and the alerts box loaded: the page sets
  ``#overview[data-ready]`` and the performance mark ``vigil:overview-ready``),
  median of ``--runs`` fresh browser contexts (no cache) after one warm-up.
- ``panel_p95_ms``: each of the five template dashboards and host detail is
  opened once with its variables at their defaults (until its grid has
  ``data-ready``), and the query requests the UI sends for its panels (``/api/v1/query_range`` and ``/api/v1/query``,
  the same URL with the same step) are recorded; each is then sent again
  ``--reps`` times, one at a time, and timed: p95 over all of them.

A table of every query's median and worst latency is printed, then the last
line:

    RESULT overview_ms=<median> panel_p95_ms=<p95>

Targets (issue 8): overview_ms <= 1000, panel_p95_ms <= 300.

Needs ``/usr/bin/chromium``, the ``playwright`` package and the built UI
(``deploy/local/build-ui.sh``).

Usage: .venv/bin/python tests/benchmarks/bench_ui.py [--runs N] [--reps N] [--hosts N]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import shutil
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from agent.collectors.system import FAMILIES  # noqa: E402
from ingest.prepare import prepare_database  # noqa: E402
from ingest.seriesid import SeriesKey  # noqa: E402
from shared.config.loader import load_config  # noqa: E402
from shared.config.models import StorageConfig  # noqa: E402
from shared.devenv.databases import create_database  # noqa: E402
from shared.devenv.rootfs import default_cache_dir, ensure_rootfs  # noqa: E402
from shared.devenv.timescale import LocalTimescale  # noqa: E402
from tests.ui.chromium import CHROMIUM, chromium  # noqa: E402
from web import ui  # noqa: E402
from web.app import App  # noqa: E402

DASHBOARDS = (
    "system-overview",
    "application-health",
    "resource-utilization",
    "performance-metrics",
    "error-rates",
    "host-detail",
)
STEP_S = 10
BEFORE_S = 70 * 60
AFTER_S = 15 * 60
DOWN_FOR_S = 15 * 60
PG_EPOCH_MS = 946_684_800_000
"""2000-01-01 UTC, PostgreSQL's timestamp epoch, in Unix milliseconds."""

Values = Callable[[np.ndarray[Any, Any]], np.ndarray[Any, Any]]
"""Sample values for an array of seconds since the data's start."""


@dataclass(frozen=True)
class Series:
    metric: str
    labels: dict[str, str]
    values: Values


def gauge(base: float, amp: float = 0.0, period: float = 600.0, phase: float = 0.0) -> Values:
    return lambda t: base + amp * np.sin(t / period + phase)


def counter(rate: float, rng: np.random.Generator, start: float = 0.0) -> Values:
    """Monotonic: increments of ``rate`` per second, +-30 % noise per interval."""

    def values(t: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        steps = rate * STEP_S * (0.7 + 0.6 * rng.random(len(t)))
        out: np.ndarray[Any, Any] = start + np.cumsum(steps)
        return out

    return values


def host_series(i: int, rng: np.random.Generator) -> list[Series]:
    """What one agent's ``system`` collector (and its scrape/probe jobs) write."""
    out: list[Series] = []
    ncpu = (2, 4, 8)[i % 3]
    busy = 0.1 + 0.8 * (i % 50 / 49) ** 2  # a few hot hosts, most quiet
    shares = {
        "user": 0.6 * busy,
        "system": 0.25 * busy,
        "iowait": 0.05 * busy,
        "softirq": 0.04 * busy,
        "irq": 0.01 * busy,
        "nice": 0.03 * busy,
        "steal": 0.02 * busy,
    }
    shares["idle"] = 1.0 - sum(shares.values())
    for cpu in range(ncpu):
        for mode, share in shares.items():
            rate = max(share * (0.9 + 0.2 * rng.random()), 1e-4)
            out.append(
                Series(
                    "node_cpu_seconds_total",
                    {"cpu": str(cpu), "mode": mode},
                    counter(rate, rng, 1e5 * rate),
                )
            )
        out += [
            Series(
                "node_cpu_guest_seconds_total", {"cpu": str(cpu), "mode": mode}, counter(1e-3, rng)
            )
            for mode in ("user", "nice")
        ]
    total = float((4, 8, 16, 32)[i % 4] * 2**30)
    used = 0.2 + 0.7 * rng.random()
    mem = {
        "MemTotal_bytes": gauge(total),
        "MemFree_bytes": gauge(total * (1 - used) * 0.3, total * 0.01),
        "MemAvailable_bytes": gauge(total * (1 - used), total * 0.03, 500, i),
        "Buffers_bytes": gauge(total * 0.02),
        "Cached_bytes": gauge(total * (1 - used) * 0.6, total * 0.01),
        "SwapTotal_bytes": gauge(2.0 * 2**30),
        "SwapFree_bytes": gauge(1.8 * 2**30),
        "Active_bytes": gauge(total * used * 0.7),
        "Inactive_bytes": gauge(total * used * 0.3),
        "Dirty_bytes": gauge(2e6, 1e6, 60),
        "Shmem_bytes": gauge(5e7),
        "Slab_bytes": gauge(2e8),
    }
    out += [Series(f"node_memory_{k}", {}, v) for k, v in mem.items()]
    fill = 0.1 + 0.85 * rng.random()
    for device, fstype, mount, size, used_share in (
        ("/dev/sda1", "ext4", "/", 100 * 2**30, fill),
        ("/dev/sda2", "vfat", "/boot/efi", 2**29, 0.1),
        ("tmpfs", "tmpfs", "/run", 2**30, 0.01),
        ("tmpfs", "tmpfs", "/dev/shm", total / 2, 0.0),  # noqa: S108 - a label value
    ):
        labels = {"device": device, "fstype": fstype, "mountpoint": mount}
        free = size * (1 - used_share)
        out += [
            Series("node_filesystem_size_bytes", labels, gauge(size)),
            Series("node_filesystem_free_bytes", labels, gauge(free * 1.05, 0.001 * size, 900)),
            Series("node_filesystem_avail_bytes", labels, gauge(free, 0.001 * size, 900)),
            Series("node_filesystem_files", labels, gauge(6.5e6)),
            Series("node_filesystem_files_free", labels, gauge(6e6)),
            Series("node_filesystem_readonly", labels, gauge(0.0)),
            Series("node_filesystem_device_error", labels, gauge(0.0)),
        ]
    for device, scale in (("lo", 0.05), ("eth0", 1.0), ("docker0", 0.1)):
        bps = scale * (1e5 + 5e6 * rng.random())
        for direction, share in (("receive", 1.0), ("transmit", 0.4)):
            d = {"device": device}
            out += [
                Series(f"node_network_{direction}_bytes_total", d, counter(bps * share, rng)),
                Series(f"node_network_{direction}_packets_total", d, counter(bps / 800, rng)),
                Series(f"node_network_{direction}_errs_total", d, counter(0.001, rng)),
                Series(f"node_network_{direction}_drop_total", d, counter(0.01, rng)),
            ]
    for device in ("sda", "dm-0"):
        d = {"device": device}
        out += [
            Series("node_disk_read_bytes_total", d, counter(3e5 * (1 + i % 5), rng)),
            Series("node_disk_written_bytes_total", d, counter(9e5 * (1 + i % 3), rng)),
            Series("node_disk_reads_completed_total", d, counter(20.0, rng)),
            Series("node_disk_writes_completed_total", d, counter(40.0, rng)),
            Series("node_disk_read_time_seconds_total", d, counter(0.02, rng)),
            Series("node_disk_write_time_seconds_total", d, counter(0.08, rng)),
            Series("node_disk_io_time_seconds_total", d, counter(0.05 + 0.5 * busy, rng)),
            Series("node_disk_io_now", d, gauge(1.0, 1.0, 30)),
        ]
    out += [
        Series("node_load1", {}, gauge(ncpu * busy, 0.3 * ncpu * busy, 300, i)),
        Series("node_load5", {}, gauge(ncpu * busy, 0.15 * ncpu * busy, 600, i)),
        Series("node_load15", {}, gauge(ncpu * busy, 0.05 * ncpu * busy, 900, i)),
        Series("node_procs_running", {}, gauge(2.0, 1.5, 45)),
        Series("node_procs_blocked", {}, gauge(0.0)),
        Series("node_context_switches_total", {}, counter(3000.0 * ncpu, rng)),
        Series("node_forks_total", {}, counter(20.0, rng)),
        Series("node_intr_total", {}, counter(2000.0 * ncpu, rng)),
        Series("node_boot_time_seconds", {}, gauge(1.76e9 - 3600 * i)),
        Series("node_time_seconds", {}, lambda t: 1.77e9 + t),
        Series("node_time_zone_offset_seconds", {"time_zone": "UTC"}, gauge(0.0)),
        Series(
            "node_uname_info",
            {
                "machine": "x86_64",
                "nodename": f"node-{i:02d}",
                "release": "6.1.0-28-amd64",
                "sysname": "Linux",
                "version": "#1 SMP Debian 6.1.119-1",
            },
            gauge(1.0),
        ),
        Series("vigil_agent_publish_errors_total", {}, counter(0.001 * (i % 2), rng)),
    ]
    for family in FAMILIES:
        c = {"collector": family}
        out += [
            Series("node_scrape_collector_success", c, gauge(1.0)),
            Series("node_scrape_collector_duration_seconds", c, gauge(0.002, 0.001, 30)),
        ]
    return out + app_series(i, rng)


def app_series(i: int, rng: np.random.Generator) -> list[Series]:
    """Scrape targets on every fifth host, probes on two, firing alerts on three."""
    out: list[Series] = []
    if i % 5 == 0:
        for port in ("8080", "9100"):
            t = {"instance": f"127.0.0.1:{port}", "job": "api" if port == "8080" else "node"}
            out += [
                Series("up", t, gauge(1.0)),
                Series("scrape_duration_seconds", t, gauge(0.02, 0.01, 120)),
                Series("http_requests_total", {**t, "code": "200"}, counter(50.0, rng)),
                Series("http_requests_total", {**t, "code": "500"}, counter(0.5, rng)),
            ]
    if i in (1, 2):
        for site in ("shop", "api", "www", "status", "auth"):
            p = {"instance": f"https://{site}.example.com", "module": "http_2xx", "job": "blackbox"}
            out += [
                Series("probe_success", p, gauge(1.0)),
                Series("probe_duration_seconds", p, gauge(0.2, 0.05, 120, rng.random())),
                Series("probe_http_status_code", p, gauge(200.0)),
            ]
    if i in (7, 23, 41):
        for name, severity in (("HighCPU", "critical"), ("FilesystemFilling", "warning")):
            a = {"alertname": name, "alertstate": "firing", "severity": severity}
            out.append(Series("ALERTS", a, gauge(1.0)))
    return out


def copy_binary(times_ms: np.ndarray[Any, Any], sid: int, values: np.ndarray[Any, Any]) -> bytes:
    """Rows (time, series_id, value) in PostgreSQL's binary COPY row format."""
    dtype = np.dtype(
        [
            ("n", ">i2"),
            ("lt", ">i4"),
            ("t", ">i8"),
            ("ls", ">i4"),
            ("s", ">i8"),
            ("lv", ">i4"),
            ("v", ">f8"),
        ]
    )
    rows = np.empty(len(times_ms), dtype=dtype)
    rows["n"], rows["lt"], rows["ls"], rows["lv"] = 3, 8, 8, 8
    rows["t"] = (times_ms - PG_EPOCH_MS) * 1000
    rows["s"] = sid
    rows["v"] = values
    return rows.tobytes()


async def load(url: str, hosts: int, now_ms: int) -> int:
    """Series and samples of ``hosts`` hosts; returns the number of samples."""
    await prepare_database(url, StorageConfig())
    rng = np.random.default_rng(8)
    start_ms = (now_ms - BEFORE_S * 1000) // 10_000 * 10_000
    grid = np.arange(start_ms, now_ms + AFTER_S * 1000, STEP_S * 1000, dtype=np.int64)
    header = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
    trailer = (-1).to_bytes(2, "big", signed=True)
    total = 0
    conn = await asyncpg.connect(url)
    try:
        for i in range(hosts):
            host = f"node-{i:02d}"
            series = host_series(i, rng)
            keys = [SeriesKey.of(host, s.metric, s.labels) for s in series]
            rows = await conn.fetch(
                "INSERT INTO series (metric, labels, hash)"
                " SELECT * FROM unnest($1::text[], $2::jsonb[], $3::bytea[]) RETURNING id, hash",
                [k.metric for k in keys],
                [k.labels_json() for k in keys],
                [k.hash for k in keys],
            )
            ids = {r["hash"]: r["id"] for r in rows}
            times = grid[grid <= now_ms - DOWN_FOR_S * 1000] if i == hosts - 1 else grid
            t = (times - start_ms) / 1000.0
            chunks = [header]
            for s, k in zip(series, keys, strict=True):
                chunks.append(copy_binary(times, ids[k.hash], s.values(t)))
                total += len(times)
            chunks.append(trailer)
            await conn.copy_to_table(
                "samples",
                source=io.BytesIO(b"".join(chunks)),
                columns=["time", "series_id", "value"],
                format="binary",
            )
        await conn.execute("VACUUM ANALYZE series")
        await conn.execute("VACUUM ANALYZE samples")
    finally:
        await conn.close()
    return total


def get(url: str) -> float:
    """Seconds to answer one GET; the answer must be a success."""
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as resp:  # noqa: S310 - loopback
        raw = resp.read()
    elapsed = time.perf_counter() - started
    answer = json.loads(raw)
    if answer.get("status") != "success":
        raise SystemExit(f"{url}: {answer}")
    return elapsed


def is_query(url: str) -> bool:
    path = urllib.parse.urlsplit(url).path
    return path in ("/api/v1/query_range", "/api/v1/query")


def describe(url: str) -> str:
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    kind = f"range step={q['step'][0]}" if "step" in q else "instant"
    return f"{kind:>14}  {q['query'][0]}"


async def overview_once(browser: Any, base: str, hosts: int, seen: list[str] | None) -> float:
    """Milliseconds from navigation start to ``vigil:overview-ready``, in a fresh context."""
    context = await browser.new_context(viewport={"width": 1440, "height": 1000})
    try:
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        if seen is not None:
            page.on("request", lambda r: seen.append(r.url) if is_query(r.url) else None)
        await page.goto(f"{base}/#/")
        await page.wait_for_function(
            "document.querySelector('#overview')?.dataset.ready", timeout=120_000
        )
        state = await page.eval_on_selector("#overview", "e => e.dataset.ready")
        rows = await page.eval_on_selector_all("table.hosts tbody tr", "rs => rs.length")
        canvases = await page.eval_on_selector_all("table.hosts td.spark canvas", "cs => cs.length")
        mark = await page.evaluate(
            "performance.getEntriesByName('vigil:overview-ready')[0]?.startTime ?? null"
        )
        if state != "true" or rows != hosts or canvases != 4 * hosts or mark is None or errors:
            raise SystemExit(
                f"overview not fully rendered: ready={state} rows={rows}/{hosts}"
                f" sparklines={canvases}/{4 * hosts} errors={errors}"
            )
        return float(mark)
    finally:
        await context.close()


async def panel_urls(browser: Any, base: str, dashboard: str) -> list[str]:
    """The panel query URLs one dashboard's first load sends, variables at their defaults."""
    context = await browser.new_context(viewport={"width": 1440, "height": 1000})
    try:
        page = await context.new_page()
        seen: list[str] = []
        page.on("request", lambda r: seen.append(r.url) if is_query(r.url) else None)
        await page.goto(f"{base}/#/d/{dashboard}")
        await page.wait_for_function(
            "document.querySelector('.grid')?.dataset.ready", timeout=120_000
        )
        failed = await page.eval_on_selector_all(
            ".card[data-state=error], .notice.error",
            "els => els.map(e => (e.getAttribute('aria-label') ?? '') + ': ' + e.innerText)",
        )
        if failed:
            raise SystemExit(f"dashboard {dashboard}: {failed}")
        cards = await page.eval_on_selector_all(".card", "cs => cs.length")
    finally:
        await context.close()
    # A live refresh may have started meanwhile: keep each query's first request.
    first: dict[tuple[str, str], str] = {}
    for url in seen:
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        first.setdefault((q["query"][0], q.get("step", [""])[0]), url)
    urls = list(first.values())
    if len(urls) < cards:
        raise SystemExit(f"dashboard {dashboard}: {cards} panels but {len(urls)} queries seen")
    return urls


def replay(urls: list[str], reps: int) -> dict[str, list[float]]:
    """Each URL ``reps`` times, one request at a time, interleaved; milliseconds."""
    out: dict[str, list[float]] = {u: [] for u in urls}
    for _ in range(reps):
        for u in urls:
            out[u].append(get(u) * 1000)
    return out


async def measure(base: str, hosts: int, runs: int, reps: int) -> tuple[float, float]:
    async with chromium() as browser:
        overview_urls: list[str] = []
        await overview_once(browser, base, hosts, overview_urls)  # warm-up
        renders = [await overview_once(browser, base, hosts, None) for _ in range(runs)]
        by_dash = {d: await panel_urls(browser, base, d) for d in DASHBOARDS}
    print(f"overview renders (ms): {' '.join(f'{r:.0f}' for r in renders)}")
    first: dict[tuple[str, str], str] = {}
    for url in overview_urls:
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        first.setdefault((q["query"][0], q.get("step", [""])[0]), url)
    ov = await asyncio.to_thread(replay, list(first.values()), reps)
    print(f"\n{'median':>8} {'max':>8}  query (overview, for reference; not in panel_p95)")
    for u, ms in ov.items():
        print(f"{statistics.median(ms):8.1f} {max(ms):8.1f}  {describe(u)[:150]}")
    every: list[float] = []
    for dash, urls in by_dash.items():
        timed = await asyncio.to_thread(replay, urls, reps)
        print(f"\n{'median':>8} {'max':>8}  query ({dash})")
        for u, ms in timed.items():
            every += ms
            print(f"{statistics.median(ms):8.1f} {max(ms):8.1f}  {describe(u)[:150]}")
    p95 = float(np.percentile(every, 95))
    print(f"\n{len(every)} panel query timings ({len(every) // reps} queries x {reps})")
    return statistics.median(renders), p95


async def run_app(db_url: str, work: Path, hosts: int, runs: int, reps: int) -> tuple[float, float]:
    cfg = work / "vigil.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "storage": {"database_url": db_url},
                "visualization": {"listen_address": "127.0.0.1:0"},
                "log": {"level": "warning", "format": "json"},
            }
        ),
        encoding="utf-8",
    )
    app = App(load_config(cfg, env={}))
    await app.start()
    try:
        return await measure(f"http://127.0.0.1:{app.port}", hosts, runs, reps)
    finally:
        await app.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="overview renders timed")
    parser.add_argument("--reps", type=int, default=5, help="times each panel query is sent")
    parser.add_argument("--hosts", type=int, default=50)
    args = parser.parse_args()
    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    if not (ui.ui_dir() / "index.html").is_file():
        raise SystemExit(f"the UI is not built in {ui.ui_dir()}: run deploy/local/build-ui.sh")
    work = Path(tempfile.mkdtemp(prefix="bench-ui-"))
    try:
        with LocalTimescale(ensure_rootfs(default_cache_dir()), work / "pg", fast=True) as pg:
            db_url = asyncio.run(create_database(pg.url, "bench_ui"))
            started = time.perf_counter()
            now_ms = int(time.time() * 1000)
            n = asyncio.run(load(db_url, args.hosts, now_ms))
            print(
                f"loaded {args.hosts} hosts, {n:,} samples in {time.perf_counter() - started:.1f}s"
            )
            overview_ms, p95 = asyncio.run(run_app(db_url, work, args.hosts, args.runs, args.reps))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"RESULT overview_ms={overview_ms:.0f} panel_p95_ms={p95:.0f}")


if __name__ == "__main__":
    main()
