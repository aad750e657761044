"""Rollup test fixtures: a migrated database with the rollup objects of its mode.

The mode is the server's: apache on the local rootfs, timescale when
``VIGIL_TEST_DATABASE_URL`` names an official-image server. Tests choose
their expectations by ``RollupDb.mode`` and skip what only one mode has.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ingest.migrate import migrate
from ingest.rollup.mode import Mode
from ingest.rollup.schema import prepare_rollups
from shared.config.models import StorageConfig
from tests.fixtures.timescale import run_sync


@dataclass(frozen=True)
class RollupDb:
    url: str
    mode: Mode


@pytest.fixture(scope="module")
def rollup_db(timescale_db: str) -> RollupDb:
    run_sync(migrate(timescale_db))
    mode = run_sync(prepare_rollups(timescale_db, StorageConfig()))
    return RollupDb(timescale_db, mode)
