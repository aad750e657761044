"""Fixtures of the receiver tests: a real local HTTP server and a build context."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from notifier.receivers.base import BuildContext
from notifier.ssrf import URLGuard
from tests.notifier.hookserver import HookServer


@pytest.fixture
async def hook() -> AsyncIterator[HookServer]:
    server = await HookServer().start()
    yield server
    await server.stop()


@pytest.fixture
def ctx() -> BuildContext:
    return BuildContext(base_dir=Path(), guard=URLGuard(), external_url="http://vigil.example")
