"""Ingest test fixtures: a fresh database per test, migrated by the code under test."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from shared.devenv.databases import create_database, drop_database
from tests.fixtures.timescale import TimescaleServer, run_sync


@pytest.fixture
def fresh_db(timescale_server: TimescaleServer) -> Iterator[str]:
    """URL of an empty database (timescaledb extension only) of this test's own."""
    name = f"ingest_{secrets.token_hex(6)}"
    url = run_sync(create_database(timescale_server.url, name))
    yield url
    run_sync(drop_database(timescale_server.url, name))
