"""Every page of the UI, in headless Chromium, against a web App over TimescaleDB.

Each page must finish loading with data: no panel in the error state, charts
drawn (uPlot canvases), the overview listing every host with its status. The
tests wait on the pages' own "rendered" signals (``#overview[data-ready]``,
``.grid[data-ready]``) rather than on card states. This web has no NATS, so the
overview's alerts come from the ALERTS series (its fallback); the alert API path
is tests/ui/test_overview_alerts.py. Screenshots of every page (light, dark,
1024 px) go to ``screenshot_dir()`` (tests/ui/conftest.py) for a person to look at.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.ui.conftest import DOWN_HOST, HOSTS, Stack, browser_missing, new_page

pytestmark = [
    pytest.mark.timescale,
    pytest.mark.skipif(browser_missing() is not None, reason=browser_missing() or ""),
]

DASHBOARDS = [
    "system-overview",
    "application-health",
    "resource-utilization",
    "performance-metrics",
    "error-rates",
    "host-detail",
]


@pytest.fixture
async def page(stack: Stack) -> AsyncIterator[Any]:
    async with new_page(1440, 1000) as p:
        yield p


async def settled(page: Any) -> None:
    """Every card has left the loading state, and none shows an error."""
    await page.wait_for_function(
        "document.querySelectorAll('.card').length > 0"
        " && !document.querySelector('.card[data-state=loading]')",
        timeout=30_000,
    )
    errors = await page.eval_on_selector_all(
        ".card[data-state=error], .notice.error",
        "els => els.map(e => e.getAttribute('aria-label') + ': ' + e.innerText)",
    )
    assert not errors, errors


async def rendered(page: Any, selector: str) -> None:
    """The page's "rendered" signal (``selector[data-ready]``: every query answered and
    drawn) is up and says no panel failed; then no card shows an error."""
    await page.wait_for_selector(f"{selector}[data-ready]", state="attached", timeout=30_000)
    assert await page.get_attribute(selector, "data-ready") == "true"
    await settled(page)


async def overview_rendered(page: Any) -> None:
    await rendered(page, "#overview")


async def dashboard_rendered(page: Any) -> None:
    await rendered(page, ".grid")


async def empty_panels(page: Any) -> list[str]:
    result: list[str] = await page.eval_on_selector_all(
        ".card[data-state=empty]", "els => els.map(e => e.getAttribute('aria-label'))"
    )
    return result


async def test_overview_lists_every_host_with_status_and_sparklines(
    stack: Stack, page: Any, screenshots: Path
) -> None:
    await page.goto(f"{stack.base}/#/")
    await overview_rendered(page)
    rows = await page.eval_on_selector_all(
        "table.hosts tbody tr", "rows => rows.map(r => [r.dataset.host, r.dataset.status])"
    )
    assert sorted(rows) == sorted([h, "down" if h == DOWN_HOST else "up"] for h in HOSTS)
    # Four sparklines per host that reports.
    sparks = await page.eval_on_selector_all(
        "tr[data-status=up] td.spark canvas", "els => els.length"
    )
    assert sparks == 4 * (len(HOSTS) - 1)
    # No NATS here: the alerts come from the ALERTS series, and a note says so.
    names = await page.eval_on_selector_all(
        "#alerts li.alert", "els => els.map(e => [e.dataset.alertname, e.dataset.state])"
    )
    assert names == [["HighCPU", "firing"], ["FilesystemFilling", "firing"]]  # critical first
    assert await page.is_visible("#alerts-fallback")
    link = await page.get_attribute('#alerts li[data-alertname="HighCPU"] a.alert-name', "href")
    assert link is not None
    assert link.startswith("#/alerts?filter=")
    # web-1 (the fleet's ALERTS are under its host) is marked, the others not.
    marked = await page.eval_on_selector_all(
        "table.hosts tr.alerting", "rows => rows.map(r => [r.dataset.host, r.dataset.alerts])"
    )
    assert marked == [["web-1", "2"]]
    assert await page.inner_text('tr[data-host="web-1"] a.host-alerts') == "2 firing"
    await page.screenshot(path=str(screenshots / "overview-light.png"), full_page=True)


async def test_dark_theme_and_1024_px_stay_readable(
    stack: Stack, page: Any, screenshots: Path
) -> None:
    await page.set_viewport_size({"width": 1024, "height": 900})
    await page.goto(f"{stack.base}/#/")
    await overview_rendered(page)
    await page.click("#theme")
    assert await page.evaluate("document.documentElement.dataset.theme") == "dark"
    # Nothing wider than the window: no horizontal scrolling of the page itself.
    assert await page.evaluate("document.documentElement.scrollWidth") <= 1024
    await page.screenshot(path=str(screenshots / "overview-no-nats-dark-1024.png"), full_page=True)
    await page.goto(f"{stack.base}/#/d/system-overview")
    await dashboard_rendered(page)
    assert await page.evaluate("document.documentElement.scrollWidth") <= 1024
    await page.screenshot(path=str(screenshots / "d-system-overview-dark-1024.png"), full_page=True)


async def test_dashboard_list_offers_the_templates(
    stack: Stack, page: Any, screenshots: Path
) -> None:
    await page.goto(f"{stack.base}/#/dashboards")
    await page.wait_for_selector(".dash-list li")
    titles = await page.eval_on_selector_all(".dash-list a", "els => els.map(e => e.innerText)")
    for title in (
        "System overview",
        "Application health",
        "Resource utilization",
        "Performance metrics",
        "Error rates",
        "Host detail",
    ):
        assert title in titles
    await page.screenshot(path=str(screenshots / "dashboards-light.png"), full_page=True)


@pytest.mark.parametrize("dashboard", DASHBOARDS)
async def test_dashboard_renders_every_panel_with_data(
    stack: Stack, page: Any, screenshots: Path, dashboard: str
) -> None:
    await page.goto(f"{stack.base}/#/d/{dashboard}?var-host=web-1")
    await dashboard_rendered(page)
    assert await empty_panels(page) == []
    charts = await page.eval_on_selector_all(".card .uplot canvas", "els => els.length")
    assert charts > 0
    await page.screenshot(path=str(screenshots / f"d-{dashboard}-light.png"), full_page=True)


async def test_variable_drop_down_is_filled_and_kept_in_the_url(stack: Stack, page: Any) -> None:
    await page.goto(f"{stack.base}/#/d/system-overview")
    await dashboard_rendered(page)
    options = await page.eval_on_selector_all("#var-host option", "els => els.map(e => e.value)")
    assert options == ["$__all", *sorted(HOSTS)]
    await page.select_option("#var-host", "web-2")
    await page.wait_for_function("location.hash.includes('var-host=web-2')")
    # The panels redraw for web-2 alone on the refresh that follows.
    await page.wait_for_function(
        "!document.querySelector('.grid').innerText.includes('web-1')", timeout=10_000
    )
    await settled(page)
    assert "web-2" in await page.inner_text(".grid")


async def test_explore_completes_names_and_shares_the_query_by_url(
    stack: Stack, page: Any, screenshots: Path
) -> None:
    await page.goto(f"{stack.base}/#/explore")
    await page.wait_for_function("document.querySelector('#expr')")
    await page.wait_for_timeout(300)  # metric names arrive
    await page.focus("#expr")
    await page.keyboard.type("node_load")
    await page.wait_for_selector("#completions li")
    offered = await page.eval_on_selector_all(
        "#completions li span", "els => els.map(e => e.innerText)"
    )
    assert "node_load1" in offered
    await page.screenshot(path=str(screenshots / "explore-completion-light.png"))
    await page.keyboard.press("Tab")
    await page.keyboard.type("{ho")
    await page.wait_for_selector("#completions li")
    labels = await page.eval_on_selector_all(
        "#completions li span", "els => els.map(e => e.innerText)"
    )
    assert "host" in labels
    await page.keyboard.press("Escape")
    await page.fill("#expr", "")
    await page.keyboard.type('rate(node_cpu_seconds_total{mode="user"}[5m])')
    await page.keyboard.press("Escape")
    await page.keyboard.press("Enter")
    await page.wait_for_function("location.hash.includes('expr=')")
    await settled(page)
    assert await page.eval_on_selector_all(".uplot canvas", "els => els.length") > 0
    await page.screenshot(path=str(screenshots / "explore-graph-light.png"), full_page=True)
    shared = page.url
    assert quote("node_cpu_seconds_total") in shared

    await page.click("#tab-table")
    await settled(page)
    rows = await page.eval_on_selector_all("table.result tbody tr", "els => els.length")
    assert rows == 2 * len(HOSTS) - 2  # two CPUs of each host still reporting
    await page.screenshot(path=str(screenshots / "explore-table-light.png"), full_page=True)

    # The shared URL alone reproduces the graph.
    other = await page.context.new_page()
    await other.goto(shared)
    await settled(other)
    assert await other.input_value("#expr") == 'rate(node_cpu_seconds_total{mode="user"}[5m])'


async def test_a_bad_query_shows_the_error_in_the_panel(stack: Stack, page: Any) -> None:
    await page.goto(f"{stack.base}/#/explore?expr={quote('sum(')}")
    await page.wait_for_selector(".card[data-state=error]", timeout=30_000)
    message = await page.inner_text(".card[data-state=error] .status")
    assert "unclosed left parenthesis" in message


async def test_panels_refresh_live(stack: Stack, page: Any) -> None:
    """The shell polls every refresh_interval (2 s): requests keep coming without a reload."""
    await page.goto(f"{stack.base}/#/d/host-detail?var-host=web-1")
    await dashboard_rendered(page)
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url) if "/api/v1/query" in r.url else None)
    await page.wait_for_timeout(4500)
    assert len(seen) >= 10


async def test_time_range_picker_and_drag_zoom_are_kept_in_the_url(stack: Stack, page: Any) -> None:
    await page.goto(f"{stack.base}/#/d/host-detail?var-host=web-1")
    await dashboard_rendered(page)
    await page.select_option("#range", "now-6h")
    await page.wait_for_function("location.hash.includes('from=now-6h')")
    await settled(page)
    box = await page.locator(".card .uplot .u-over").first.bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    await page.mouse.move(box["x"] + box["width"] * 0.6, y)
    await page.mouse.down()
    await page.mouse.move(box["x"] + box["width"] * 0.9, y, steps=5)
    await page.mouse.up()
    await page.wait_for_function("/from=\\d{13}&to=\\d{13}/.test(location.hash)")
    await settled(page)
    label = await page.eval_on_selector("#range", "s => s.options[s.selectedIndex].text")
    assert "\u2013" in label  # an absolute range, described by its two ends


async def test_week_over_week_style_comparison_overlays_the_earlier_period(
    stack: Stack, page: Any, screenshots: Path
) -> None:
    """Any panel compared with an earlier period (here 30 minutes: the fixture holds 70)."""
    await page.goto(f"{stack.base}/#/d/host-detail?var-host=web-1&compare=30m")
    await dashboard_rendered(page)
    legend = await page.inner_text(".grid")
    assert "1m (30m ago)" in legend
    await page.screenshot(
        path=str(screenshots / "d-host-detail-compare-30m-light.png"), full_page=True
    )
    await page.select_option("#compare", "")
    await page.wait_for_function(
        "!document.querySelector('.grid').innerText.includes('ago)')", timeout=10_000
    )
