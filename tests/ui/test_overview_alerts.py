"""The Overview's alerts from the alert API, and every page dark at 1024 px, in Chromium.

A real alerter (in-process ``App``) on a real nats-server evaluates two rules over
gauges published as web-1's agent publishes them: one fires at once, one stays
pending for an hour. web, with NATS and the fleet's TimescaleDB, serves
``/api/v1/alerts`` from the alerter's KV state; the Overview lists those alerts
(firing first, summary, "for ..."), links each to the Alerts page, and marks the
host row of web-1. Then every page is opened at 1024 px in the dark theme: nothing
wider than the window, no error; screenshots go to ``screenshot_dir()``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from nats.aio.client import Client

from alerter.app import App as AlerterApp
from shared.config.loader import load_config
from tests.alerter.livehelp import Events, Publisher, make_app, now_ms, until
from tests.ui.conftest import Fleet, browser_missing, new_page
from tests.ui.test_browser import dashboard_rendered, overview_rendered, settled
from tests.ui.test_reports_ui import _rollups
from tests.web.conftest import alerting_config
from web.app import App

pytestmark = [
    pytest.mark.timescale,
    pytest.mark.skipif(browser_missing() is not None, reason=browser_missing() or ""),
]

HOST = "web-1"
RULES = """
groups:
  - name: overview
    interval: 1h
    rules:
      - alert: DiskHot
        expr: disk_temp_celsius > 50
        labels: {severity: critical}
        annotations: {summary: "disk on {{ $labels.host }} at {{ $value }} C"}
      - alert: DiskWarm
        expr: disk_temp_celsius > 40
        for: 1h
        labels: {severity: warning}
"""
PAGES = [
    ("overview", "/", "#overview"),
    ("dashboards", "/dashboards", ".dash-list li"),
    ("d-system-overview", "/d/system-overview", ".grid"),
    ("d-host-detail", "/d/host-detail?var-host=web-1", ".grid"),
    ("explore", "/explore?expr=node_load1&tab=graph", ".card"),
    ("explore-table", "/explore?expr=node_load1&tab=table", ".card"),
    ("alerts", "/alerts", ".card"),
    ("silences", "/silences", ".card"),
    ("silence-form", "/silences?new=1&m=alertname%3D%22DiskHot%22", "#preview-alerts li"),
    ("sla", "/sla?periods=day,week", ".card"),
    ("capacity", "/capacity", ".card"),
]
"""(screenshot name, route, what shows the page has loaded: its "rendered" signal, or
cards, which must then all leave the loading state without an error)."""


async def _alerts(client: httpx.AsyncClient) -> dict[str, str]:
    r = await client.get("/api/v1/alerts")
    if r.status_code != 200:
        return {}
    return {a["labels"]["alertname"]: a["state"] for a in r.json()["data"]["alerts"]}


@pytest.fixture
async def web(
    tmp_path: Path, nats_url: str, nats_client: Client, fleet: Fleet
) -> AsyncIterator[str]:
    """web with NATS over the fleet, once the alerter's two alerts show in ``/api/v1/alerts``."""
    await _rollups(fleet.url)  # the capacity page reads rollups
    config = alerting_config(tmp_path, nats_url, fleet.url, RULES)
    events = Events()
    await events.start(nats_client)  # provisions the streams and buckets
    alerter: AlerterApp = make_app(config)
    await alerter.start()
    app = App(load_config(config))
    await app.start()
    base = f"http://127.0.0.1:{app.port}"
    try:
        await until(alerter.ready, "the alerter's replay caught up")
        await Publisher(nats_client, host=HOST).gauge("disk_temp_celsius", now_ms(), 55.0)
        await until(lambda: len(events.events) >= 1, "DiskHot firing", within=30)
        await until(app.bus.connected.is_set, "web connected to NATS", within=30)
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            deadline = time.monotonic() + 30
            while await _alerts(client) != {"DiskHot": "firing", "DiskWarm": "pending"}:
                assert time.monotonic() < deadline, await _alerts(client)
                await asyncio.sleep(0.1)
            now = datetime.now(UTC)
            silence = await client.post(
                "/api/v2/silences",
                json={
                    "matchers": [
                        {
                            "name": "alertname",
                            "value": "DiskWarm",
                            "isRegex": False,
                            "isEqual": True,
                        }
                    ],
                    "startsAt": now.isoformat(),
                    "endsAt": (now + timedelta(hours=2)).isoformat(),
                    "createdBy": "ui-test",
                    "comment": "a silence for the Silences page's screenshot",
                },
            )
            assert silence.status_code == 200, silence.text
        yield base
    finally:
        await app.stop()
        await alerter.stop()
        await events.stop()


@pytest.fixture
async def page(web: str) -> AsyncIterator[Any]:
    async with new_page(1024, 900) as p:
        yield p


async def test_overview_lists_the_alert_apis_alerts_and_marks_their_hosts(
    web: str, page: Any, screenshots: Path
) -> None:
    await page.goto(f"{web}/#/")
    await overview_rendered(page)
    shown = await page.eval_on_selector_all(
        "#alerts li.alert", "els => els.map(e => [e.dataset.alertname, e.dataset.state])"
    )
    assert shown == [["DiskHot", "firing"], ["DiskWarm", "pending"]]
    assert not await page.is_visible("#alerts-fallback")
    hot = page.locator('#alerts li[data-alertname="DiskHot"]')
    text = await hot.inner_text()
    assert f"disk on {HOST} at 55 C" in text  # the summary annotation
    assert "for " in text  # how long it has been active
    assert f"host={HOST}" in text
    # Only firing alerts mark a host; the pending one does not add to the count.
    marked = await page.eval_on_selector_all(
        "table.hosts tr.alerting", "rows => rows.map(r => [r.dataset.host, r.dataset.alerts])"
    )
    assert marked == [[HOST, "1"]]
    await page.screenshot(
        path=str(screenshots / "overview-alert-api-light-1024.png"), full_page=True
    )

    # The alert's link opens the Alerts page filtered to it.
    await hot.locator("a.alert-name").click()
    await page.wait_for_function("location.hash.startsWith('#/alerts')")
    listed = page.locator('li.alert[data-alertname="DiskHot"][data-state="firing"]')
    await listed.wait_for(timeout=15_000)
    assert await page.locator("ul.active-alerts li.alert").count() == 1


async def test_every_page_stays_readable_dark_at_1024_px(
    web: str, page: Any, screenshots: Path
) -> None:
    await page.goto(f"{web}/#/")
    await overview_rendered(page)
    await page.click("#theme")
    assert await page.evaluate("document.documentElement.dataset.theme") == "dark"
    for name, path, signal in PAGES:
        await page.goto("about:blank")  # a fresh load: the same route with other parameters
        await page.goto(f"{web}/#{path}")
        if signal == "#overview":
            await overview_rendered(page)
        elif signal == ".grid":
            await dashboard_rendered(page)
        elif signal == ".card":
            await settled(page)
        else:
            await page.wait_for_selector(signal, timeout=30_000)
        assert await page.evaluate("document.documentElement.dataset.theme") == "dark"
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 1024, f"{name} is {width} px wide at 1024"
        await page.screenshot(path=str(screenshots / f"{name}-dark-1024.png"), full_page=True)
