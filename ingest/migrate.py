"""Schema migrations: numbered SQL files applied in order under an advisory lock.

Files are ``ingest/migrations/NNNN_name.sql`` (four or more digits, then a
name); every such file is discovered, so a later change adds ``0002_x.sql``
and nothing else. ``migrate(url)``:

1. opens one dedicated connection (a pooled connection would drop the
   advisory lock when released) and takes ``pg_advisory_lock(MIGRATION_LOCK)``,
   so replicas starting together apply each file once, the others waiting;
2. creates ``schema_migrations (version, name, checksum, applied_at)`` if missing;
3. applies, each in its own transaction together with its
   ``schema_migrations`` row, every file whose version is not recorded yet.

Idempotent: a second run applies nothing. A recorded file whose checksum
changed since is logged, not re-applied (migrations are append-only).
Migrations are plain SQL common to both TimescaleDB license modes; objects
that differ by mode are made in Python by the rollup jobs.

``apply_storage_settings`` then sets what comes from the configuration
rather than from SQL (the samples chunk interval, for new chunks).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from ingest.errors import MigrationError
from shared.log import get_logger

log = get_logger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
MIGRATION_LOCK = 0x76696769_6C6D6967  # "viglmig": one key for every Vigil database
_FILE = re.compile(r"(\d{4,})_([A-Za-z0-9_]+)\.sql")

_SCHEMA_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text        NOT NULL,
    checksum    text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    path: Path

    def sql(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8")
        except OSError as exc:
            raise MigrationError(f"cannot read migration {self.path}: {exc}") from exc

    def checksum(self) -> str:
        return hashlib.sha256(self.sql().encode()).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every ``NNNN_name.sql`` in ``directory``, by version; two files with one version fail."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE.fullmatch(path.name)
        if match is None:
            raise MigrationError(f"cannot read migration {path}: name is not NNNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(
                f"cannot order migrations: {found[version].path.name} and {path.name} "
                f"share version {version}"
            )
        found[version] = Migration(version, match.group(2), path)
    return [found[v] for v in sorted(found)]


async def migrate(url: str, directory: Path = MIGRATIONS_DIR) -> list[int]:
    """Apply pending migrations; return the versions applied by this call."""
    migrations = discover(directory)
    try:
        conn = await asyncpg.connect(url, timeout=30)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        raise MigrationError(f"cannot connect to the database to migrate: {exc}") from exc
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        try:
            return await _apply_pending(conn, migrations)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
    except asyncpg.PostgresError as exc:
        raise MigrationError(f"cannot migrate the database: {exc}") from exc
    finally:
        await conn.close()


async def _apply_pending(conn: asyncpg.Connection, migrations: list[Migration]) -> list[int]:
    await conn.execute(_SCHEMA_TABLE)
    applied = {
        r["version"]: r["checksum"]
        for r in await conn.fetch("SELECT version, checksum FROM schema_migrations")
    }
    done: list[int] = []
    for m in migrations:
        checksum = m.checksum()
        if m.version in applied:
            if applied[m.version] != checksum:
                log.warning(
                    "applied migration changed since; not re-applied",
                    version=m.version,
                    file=m.path.name,
                )
            continue
        try:
            async with conn.transaction():
                await conn.execute(m.sql())
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    m.version,
                    m.name,
                    checksum,
                )
        except asyncpg.PostgresError as exc:
            raise MigrationError(f"cannot apply migration {m.path.name}: {exc}") from exc
        log.info("applied migration", version=m.version, file=m.path.name)
        done.append(m.version)
    return done


async def apply_storage_settings(url: str, chunk_interval_s: float) -> None:
    """Set the samples chunk interval (applies to chunks created from now on)."""
    try:
        conn = await asyncpg.connect(url, timeout=30)
        try:
            await conn.execute(
                "SELECT set_chunk_time_interval('samples', $1::bigint * interval '1 microsecond')",
                round(chunk_interval_s * 1_000_000),
            )
        finally:
            await conn.close()
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        raise MigrationError(f"cannot set the samples chunk interval: {exc}") from exc
