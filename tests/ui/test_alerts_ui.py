"""Issue 8's acceptance in a real browser against a running stack fed by a real agent.

agent, ingest, alerter and notifier run as processes on a real nats-server and
TimescaleDB; web runs in-process. A rule fires on the agent's real ``node_load1``
(``>= 0``, ``for: 0s``); the notifier re-notifies its group every
``repeat_interval`` to a local recording webhook. The test opens the Alerts page,
sees the alert, silences it through the form (prefilled from the alert's
"Silence" button, with the preview showing the alert), and then waits past the
repeat interval plus a margin: no further notification of that group arrives.
Screenshots of every page of that stack go to ``screenshot_dir()`` (tests/ui/conftest.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ingest.prepare import prepare_database
from shared.config.models import StorageConfig
from tests.notifier.hookserver import check_webhook_payload
from tests.ui.chromium import chromium
from tests.ui.conftest import browser_missing
from tests.ui.livestack import HOST, LiveStack, start_stack, stop_stack

pytestmark = [
    pytest.mark.timescale,
    pytest.mark.skipif(browser_missing() is not None, reason=browser_missing() or ""),
]

ALERT = "AgentLoadSeen"
RULES = f"""
groups:
  - name: live
    interval: 1s
    rules:
      - alert: {ALERT}
        expr: node_load1 >= 0
        for: 0s
        labels: {{severity: warning}}
        annotations:
          summary: "load on {{{{ $labels.host }}}} is {{{{ $value }}}}"
"""
REPEAT_S = 4.0
ROUTE = {
    "group_by": ["alertname"],
    "group_wait": "0s",
    "group_interval": "1s",
    "repeat_interval": f"{REPEAT_S:g}s",
}
SETTLE_S = 2.0
"""After the silence is stored: time for the notifier's KV watch to see it, and for a
notification already on its way to land, before counting."""
QUIET_S = REPEAT_S + 2 * 1.0 + 6.0
"""Repeat interval, two group-interval ticks, and a margin: a notification due would come."""
PAGES = [
    ("overview", "/"),
    ("dashboards", "/dashboards"),
    ("system-overview", "/d/system-overview"),
    ("explore", "/explore?expr=node_load1&tab=graph"),
    ("alerts", "/alerts"),
    ("silences", "/silences"),
    ("sla", "/sla"),
    ("capacity", "/capacity"),
]

WITH_AGENT_DATA = {
    "overview": f'tr[data-host="{HOST}"]',
    "system-overview": ".card[data-state=ok]",
    "explore": ".card[data-state=ok], table tbody tr",
}
"""Pages of the live stack and what on each shows data the real agent sent."""


@pytest.fixture
async def live(tmp_path: Path, nats_url: str, timescale_db: str) -> AsyncIterator[LiveStack]:
    await prepare_database(timescale_db, StorageConfig())
    stack = await start_stack(
        tmp_path, nats_url=nats_url, db_url=timescale_db, rules=RULES, route=ROUTE
    )
    try:
        yield stack
    finally:
        await stop_stack(stack)


def _ours(stack: LiveStack) -> list[Any]:
    docs = [r.json() for r in stack.hook.received()]
    return [d for d in docs if d["groupLabels"].get("alertname") == ALERT]


async def _wait(what: str, check: Any, stack: LiveStack, within: float) -> None:
    """Poll ``check`` (async) until true; fail naming ``what`` (and dead services)."""
    deadline = time.monotonic() + within
    while not await check():
        assert not stack.exited(), stack.exited()
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:g} s waiting for {what}")
        await asyncio.sleep(0.5)


async def _firing_in_api(client: httpx.AsyncClient) -> bool:
    r = await client.get("/api/v1/alerts")
    if r.status_code != 200:
        return False
    return any(
        a["labels"].get("alertname") == ALERT and a["state"] == "firing"
        for a in r.json()["data"]["alerts"]
    )


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with chromium() as b:
        yield b


async def test_silence_created_in_the_ui_stops_the_next_notification_of_a_real_firing_alert(
    live: LiveStack, browser: Any, screenshots: Path
) -> None:
    async with httpx.AsyncClient(base_url=live.base, timeout=10) as client:

        async def firing() -> bool:
            return await _firing_in_api(client)

        async def notified_twice() -> bool:
            return len(_ours(live)) >= 2

        await _wait(f"{ALERT} firing from the agent's real node_load1", firing, live, 120)
        await _wait("two notifications (the repeat works)", notified_twice, live, 60)
        for doc in _ours(live):
            check_webhook_payload(doc)
        assert _ours(live)[0]["alerts"][0]["labels"]["host"] == HOST

        context = await browser.new_context(viewport={"width": 1440, "height": 1000})
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))

        await page.goto(f"{live.base}/#/alerts")
        item = page.locator(f'li.alert[data-alertname="{ALERT}"][data-state="firing"]')
        await item.wait_for(timeout=30_000)
        assert f"load on {HOST}" in await item.inner_text()
        await page.wait_for_selector(
            f'#alert-timeline .tl-lane[data-alertname="{ALERT}"]', timeout=60_000
        )
        await page.screenshot(path=str(screenshots / "alerts-firing.png"), full_page=True)

        # the alert's Silence button opens the form with its labels as matchers
        await item.locator("a.silence").click()
        await page.wait_for_selector("#silence-editor:not([hidden])", timeout=10_000)
        names = await page.eval_on_selector_all(".matcher .m-name", "els => els.map(e => e.value)")
        assert {"alertname", "host", "severity"} <= set(names)
        await page.wait_for_selector(
            f'#preview-alerts li[data-alertname="{ALERT}"]', timeout=15_000
        )
        await page.fill("#silence-creator", "ui-test")
        await page.fill("#silence-comment", "silenced from the alerts page")
        await page.fill("#silence-duration", "1h")
        assert "duration=1h" in await page.evaluate("location.hash")  # the form is in the URL
        await page.screenshot(path=str(screenshots / "silence-form.png"), full_page=True)
        await page.keyboard.press("Enter")  # submit from the keyboard
        created = page.locator("#silence-created")
        await created.wait_for(timeout=15_000)
        silence_id = await created.get_attribute("data-id")
        await page.wait_for_selector(
            f'tr[data-id="{silence_id}"][data-state="active"]', timeout=15_000
        )

        silence = (await client.get(f"/api/v2/silence/{silence_id}")).json()
        assert silence["status"]["state"] == "active"
        assert {"name": "alertname", "value": ALERT, "isRegex": False, "isEqual": True} in silence[
            "matchers"
        ]

        await asyncio.sleep(SETTLE_S)
        before = len(_ours(live))
        await asyncio.sleep(QUIET_S)
        assert not live.exited(), live.exited()
        assert len(_ours(live)) == before, "a notification came after the silence"
        assert await _firing_in_api(client)  # still firing: silenced, not resolved

        # every page of this stack, for a person to look at
        for name, path in PAGES:
            await page.goto(f"{live.base}/#{path}")
            await page.wait_for_function(
                "document.querySelector('main h1') !== null"
                " && !document.querySelector('main > p.status')"
                " && !document.querySelector('.card[data-state=loading]')",
                timeout=60_000,
            )
            await page.screenshot(path=str(screenshots / f"live-{name}.png"), full_page=True)
            if name in WITH_AGENT_DATA:  # drawn from what the real agent sent
                assert await page.locator(WITH_AGENT_DATA[name]).count() > 0, name
        await page.goto(f"{live.base}/#/silences")
        await page.click("#theme")
        await page.wait_for_selector(f'tr[data-id="{silence_id}"]', timeout=15_000)
        await page.screenshot(path=str(screenshots / "live-silences-dark.png"), full_page=True)
        assert await page.is_hidden("#silence-editor")

        # expiring from the list
        await page.click(f'tr[data-id="{silence_id}"] button.expire')
        await page.wait_for_selector(
            f'tr[data-id="{silence_id}"][data-state="expired"]', timeout=15_000
        )
        expired = (await client.get(f"/api/v2/silence/{silence_id}")).json()
        assert expired["status"]["state"] == "expired"
        await context.close()
        assert not errors, f"JavaScript errors: {errors}"
