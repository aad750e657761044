"""The SLA and capacity pages in headless Chromium, over the fleet's samples.

The fleet (tests/ui/conftest.py) has two HTTP probes on web-1, one of them down
for 3 of its 70 minutes, and filesystems filling at 1 GiB per 10 minutes; db-1
stopped reporting 15 minutes before the fleet's end. Its rollups are built here
with ingest's own SELECTs, as the refresh job would. The last test adds a host
with a single sample, for the Overview's sparklines.
Screenshots go where tests/ui/test_browser.py keeps its own (``screenshot_dir()``
in tests/ui/conftest.py).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg
import pytest

from ingest.rollup.aggregates import COLUMNS, HOUR, MINUTE
from tests.fixtures.timescale import run_sync
from tests.ui.conftest import (
    DOWN_HOST,
    HOSTS,
    Fleet,
    Stack,
    browser_missing,
    new_page,
)
from tests.ui.test_browser import overview_rendered, settled
from tests.web.conftest import add_samples, add_series
from web.reports.data import SeriesRef
from web.reports.sla import series_key

pytestmark = [
    pytest.mark.timescale,
    pytest.mark.skipif(browser_missing() is not None, reason=browser_missing() or ""),
]

FLAKY = "https://api.example.com/health"
STEADY = "https://shop.example.com"
PROBE = {"module": "http_2xx", "job": "blackbox", "host": "web-1"}
STEADY_KEY = series_key(SeriesRef(0, "probe_success", {**PROBE, "instance": STEADY}))
NEWCOMER = "new-1"


async def _rollups(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        if await conn.fetchval("SELECT count(*) FROM samples_1m"):
            return
        cols = ", ".join(COLUMNS)
        await conn.execute(f"INSERT INTO samples_1m ({cols}) {MINUTE.query()}")
        await conn.execute(f"INSERT INTO samples_1h ({cols}) {HOUR.query()}")
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def rolled(fleet: Fleet) -> Fleet:
    run_sync(_rollups(fleet.url))
    return fleet


@pytest.fixture
async def page(rolled: Fleet, stack: Stack) -> AsyncIterator[Any]:
    async with new_page(1440, 1000) as p:
        yield p


async def test_sla_page_shows_availability_budget_and_downtime(
    stack: Stack, page: Any, screenshots: Path
) -> None:
    await page.goto(f"{stack.base}/#/sla?periods=day,week")
    await settled(page)
    targets = await page.eval_on_selector_all(
        "table.sla tbody tr", "rows => rows.map(r => r.dataset.target)"
    )
    assert sorted(targets) == [FLAKY, STEADY]
    flaky = f'table.sla tr[data-target="{FLAKY}"]'
    # 3 minutes down out of the 70 the fleet has: 95.71 %.
    day = await page.inner_text(f"{flaky} td.avail[data-period=day]")
    assert day.startswith("95.7"), day
    assert await page.inner_text(f'table.sla tr[data-target="{STEADY}"] td.avail') == "100.000 %"
    assert await page.get_attribute(f"{flaky} td.avail", "class") == "num avail crit"
    assert await page.eval_on_selector_all(".budget[role=meter]", "els => els.length") == 2
    csv = await page.get_attribute("#sla-csv", "href")
    assert csv is not None
    assert csv.startswith("/api/vigil/sla.csv?match=probe_success")

    # Keyboard: pick the flaky target, read its downtime.
    await page.focus(f"{flaky} button")
    await page.keyboard.press("Enter")
    await page.wait_for_function(
        f"document.querySelector('#downtime h3').innerText.includes('{FLAKY}')"
    )
    rows = await page.eval_on_selector_all(
        "table.downtime tbody tr", "rows => rows.map(r => r.innerText)"
    )
    assert len(rows) == 1
    assert "3 min" in rows[0]
    # The URL names the target by its identity, not by its row.
    key = await page.get_attribute(flaky, "data-key")
    assert key is not None
    assert key.startswith("probe_success{")
    assert FLAKY in key
    in_url = await page.evaluate("new URLSearchParams(location.hash.split('?')[1]).get('target')")
    assert in_url == key
    assert await page.get_attribute(flaky, "class") == "selected"
    # The range picker would change nothing here: it is not shown.
    assert await page.is_hidden("#range")
    await page.screenshot(path=str(screenshots / "sla.png"), full_page=True)

    # A looser objective, typed and submitted with Enter, is met.
    await page.fill("#sla-objective", "95")
    await page.press("#sla-objective", "Enter")
    await page.wait_for_function("location.hash.includes('objective=95')")
    await page.wait_for_function(
        f"document.querySelector('{flaky} td.avail').classList.contains('good')"
    )
    await settled(page)
    await page.click("#theme")
    await settled(page)
    await page.screenshot(path=str(screenshots / "sla-dark.png"), full_page=True)

    # A selector the API refuses shows its reason in the error state.
    await page.fill("#sla-match", "rate(probe_success[5m])")
    await page.press("#sla-match", "Enter")
    await page.wait_for_selector("#sla[data-state=error]")
    assert "match" in await page.inner_text("#sla .status")


async def test_sla_link_keeps_its_target_when_rows_change(
    stack: Stack, page: Any, screenshots: Path
) -> None:
    def link(**params: str) -> str:
        return f"{stack.base}/#/sla?{urlencode({'periods': 'day', **params, 'target': STEADY_KEY})}"

    async def downtime_title() -> str:
        title: str = await page.inner_text("#downtime h3")
        return title

    # Second of two rows, then the only row: the same target either way.
    await page.goto(link())
    await settled(page)
    assert await downtime_title() == f"Downtime of {STEADY}"
    selected = await page.eval_on_selector_all(
        "table.sla tr.selected", "rows => rows.map(r => r.dataset.target)"
    )
    assert selected == [STEADY]
    await page.goto(link(match=f'probe_success{{instance="{STEADY}"}}'))
    await page.reload()
    await settled(page)
    assert await downtime_title() == f"Downtime of {STEADY}"

    # A report without it says so instead of showing the target in its place.
    await page.goto(link(match=f'probe_success{{instance="{FLAKY}"}}'))
    await page.reload()
    await settled(page)
    missing = await page.inner_text("#sla-target-missing")
    assert missing.startswith("Target not found"), missing
    assert STEADY_KEY in missing
    assert await downtime_title() == "Downtime"
    assert await page.eval_on_selector_all("table.sla tr.selected", "rows => rows.length") == 0
    assert await page.eval_on_selector_all("table.downtime", "els => els.length") == 0
    await page.screenshot(path=str(screenshots / "sla-target-not-found.png"), full_page=True)


async def test_capacity_page_lists_filling_filesystems_first_with_trends(
    stack: Stack, page: Any, screenshots: Path
) -> None:
    await page.goto(f"{stack.base}/#/capacity")
    await settled(page)
    rows = await page.eval_on_selector_all(
        "table.capacity tbody tr",
        "rows => rows.map(r => [r.dataset.kind, r.dataset.status, r.dataset.what])",
    )
    statuses = [status for _, status, _ in rows]
    # The root filesystems fill (1 GiB per 10 min) and come first; /boot does not.
    # db-1's root would be full soonest from its last value, but db-1 stopped reporting.
    assert statuses[:2] == ["filling"] * 2, rows
    assert {what for _, _, what in rows[:2]} == {"web-1 /", "web-2 /"}
    assert ["filesystem", "never", "web-1 /boot"] in rows
    live = [h for h in HOSTS if h != DOWN_HOST]
    assert sum(kind == "memory" and what.split()[0] in live for kind, _, what in rows) == 2
    assert not [what for _, _, what in rows if what.startswith(DOWN_HOST)]
    stale = await page.eval_on_selector_all(
        "#capacity-stale table.capacity-stale tbody tr",
        "rows => rows.map(r => [r.dataset.status, r.dataset.what])",
    )
    assert sorted(stale) == [
        ["stale", f"{DOWN_HOST} /"],
        ["stale", f"{DOWN_HOST} /boot"],
        ["stale", f"{DOWN_HOST} memory"],
    ]
    assert "stopped reporting" in await page.inner_text(".page-head .summary")
    charts = await page.eval_on_selector_all("td.trend canvas", "els => els.length")
    assert charts >= len(rows)
    assert (await page.inner_text("table.capacity tbody tr .full-in")).endswith(" h")
    assert await page.is_hidden("#range")
    await page.screenshot(path=str(screenshots / "capacity.png"), full_page=True)

    await page.select_option("#cap-kind", "memory")
    await page.wait_for_function("location.hash.includes('kind=memory')")
    await page.wait_for_function(
        "[...document.querySelectorAll('table.capacity tbody tr')].every(r => r.dataset.kind === 'memory')"
    )
    await settled(page)
    await page.set_viewport_size({"width": 1024, "height": 900})
    await page.click("#theme")
    await settled(page)
    await page.screenshot(path=str(screenshots / "capacity-memory-dark-1024.png"), full_page=True)


async def test_a_host_with_a_single_sample_shows_a_dot_in_its_sparkline(
    rolled: Fleet, stack: Stack, page: Any, screenshots: Path
) -> None:
    # A host that just started: one sample of memory (last in this module: it adds a host).
    now = int(time.time() * 1000)
    conn = await asyncpg.connect(rolled.url)
    try:
        for metric, labels, value in (
            ("node_uname_info", {"nodename": NEWCOMER, "sysname": "Linux"}, 1.0),
            ("node_memory_MemTotal_bytes", {}, 8.0 * 2**30),
            ("node_memory_MemAvailable_bytes", {}, 4.0 * 2**30),
        ):
            sid = await add_series(conn, metric, {**labels, "host": NEWCOMER})
            await add_samples(conn, sid, [(now - 1000, value)])
    finally:
        await conn.close()
    await page.goto(f"{stack.base}/#/")
    await overview_rendered(page)
    # Painted pixels per sparkline of the new host: CPU, memory, disk, network.
    painted = await page.eval_on_selector_all(
        f'tr[data-host="{NEWCOMER}"] td.spark canvas',
        """els => els.map(c => {
            const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
            let n = 0;
            for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
            return n;
        })""",
    )
    assert len(painted) == 4
    assert painted[1] > 0, painted  # memory: its one sample
    assert painted[0] == painted[2] == painted[3] == 0, painted  # nothing to draw
    assert await page.is_visible("#range")  # the overview follows the range picker
    row = await page.query_selector(f'tr[data-host="{NEWCOMER}"]')
    assert row is not None
    await row.screenshot(path=str(screenshots / "overview-new-host.png"))
