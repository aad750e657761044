"""Migrations: applied in order under the advisory lock, once, and recorded."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.errors import MigrationError
from ingest.migrate import discover, migrate
from tests.ingest.helpers import REPO, fetchval


def test_discover_orders_every_numbered_file_and_rejects_bad_names(tmp_path: Path) -> None:
    (tmp_path / "0002_b.sql").write_text("SELECT 2")
    (tmp_path / "0001_a.sql").write_text("SELECT 1")
    (tmp_path / "0010_c.sql").write_text("SELECT 3")
    assert [m.version for m in discover(tmp_path)] == [1, 2, 10]
    (tmp_path / "notes.sql").write_text("")
    with pytest.raises(MigrationError, match="NNNN_name"):
        discover(tmp_path)


def test_discover_rejects_two_files_with_one_version(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1")
    (tmp_path / "0001_b.sql").write_text("SELECT 1")
    with pytest.raises(MigrationError, match="share version 1"):
        discover(tmp_path)


def test_shipped_migrations_start_with_core() -> None:
    assert discover()[0].name == "core"


async def test_migrate_applies_once_even_when_replicas_race(fresh_db: str) -> None:
    results = await asyncio.gather(migrate(fresh_db), migrate(fresh_db), migrate(fresh_db))
    applied = sorted(v for r in results for v in r)
    assert applied == [m.version for m in discover()]
    assert await migrate(fresh_db) == []
    assert await fetchval(fresh_db, "SELECT count(*) FROM schema_migrations") == len(discover())


async def test_samples_has_only_the_unique_index(fresh_db: str) -> None:
    await migrate(fresh_db)
    indexes = await fetchval(
        fresh_db, "SELECT array_agg(indexdef) FROM pg_indexes WHERE tablename = 'samples'"
    )
    assert len(indexes) == 1
    assert "UNIQUE" in indexes[0]
    assert '(series_id, "time")' in indexes[0]


async def test_failed_migration_is_not_recorded(fresh_db: str, tmp_path: Path) -> None:
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE t1 (x int)")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE t2 (x int); SELECT nonsense_fn()")
    with pytest.raises(MigrationError, match=r"0002_bad\.sql"):
        await migrate(fresh_db, tmp_path)
    assert await fetchval(fresh_db, "SELECT array_agg(version) FROM schema_migrations") == [1]
    assert await fetchval(fresh_db, "SELECT to_regclass('t2')") is None


def test_vigil_db_migrate_command_is_idempotent(fresh_db: str) -> None:
    cmd = [sys.executable, "-m", "shared.cli", "db", "migrate", "--database-url", fresh_db]
    first = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False, timeout=60)
    assert first.returncode == 0, first.stderr
    assert "applied" in first.stdout
    second = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False, timeout=60)
    assert second.returncode == 0, second.stderr
    assert "up to date" in second.stdout
