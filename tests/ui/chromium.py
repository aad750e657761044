"""Debian's chromium driven by Playwright, for the UI tests and ``bench_ui.py``.

No pytest here: the benchmark, a script, imports it too.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


CLOSE_TIMEOUT_S = 30.0
"""How long closing the browser or stopping Playwright's driver may take; past it the
test goes on (the driver, once its stdin is closed, kills the browsers it launched)."""


async def _bounded(step: Awaitable[None], what: str) -> None:
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            await step
    except TimeoutError:
        print(f"warning: {what} took over {CLOSE_TIMEOUT_S:g} s; going on")


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """Debian's chromium through Playwright; closed, and the driver stopped, within
    ``CLOSE_TIMEOUT_S`` each (a close that hung once held a CI run for two minutes)."""
    from playwright.async_api import async_playwright

    pw = await async_playwright().start()
    try:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await _bounded(browser.close(), "closing chromium")
    finally:
        await _bounded(pw.stop(), "stopping the Playwright driver")
