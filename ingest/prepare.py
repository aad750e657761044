"""Make a database ready for ingest: migrations, storage settings, rollups for its license mode.

One function, used by ``vigil db migrate`` and at every ingest start-up, so
the two never diverge. Idempotent; safe when several replicas start at once
(migrations and rollup set-up each hold their own advisory lock).
"""

from __future__ import annotations

from dataclasses import dataclass

from ingest.migrate import apply_storage_settings, migrate
from ingest.rollup.mode import Mode
from ingest.rollup.schema import prepare_rollups
from shared.config.models import StorageConfig


@dataclass(frozen=True, slots=True)
class Prepared:
    applied: list[int]
    """Migration versions applied by this call (empty: the schema was up to date)."""
    mode: Mode
    """The server's license mode, which decides who keeps the rollups."""


async def prepare_database(url: str, storage: StorageConfig) -> Prepared:
    """Apply pending migrations, the chunk interval, and the rollup objects of the mode.

    Raises ``MigrationError`` or a ``RollupError`` (``RollupConfigError`` for
    settings that would lose data, which retrying cannot fix).
    """
    applied = await migrate(url)
    await apply_storage_settings(url, storage.chunk_interval)
    mode = await prepare_rollups(url, storage)
    return Prepared(applied, mode)
