"""The local TimescaleDB environment: the server, its databases, and a clean stop."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from shared.devenv.databases import create_database, server_info
from shared.devenv.rootfs import default_cache_dir, ensure_rootfs, mounts_under
from shared.devenv.timescale import LocalTimescale
from shared.errors import DevEnvError
from tests.fixtures.timescale import TimescaleServer

pytestmark = pytest.mark.timescale

REPO = Path(__file__).resolve().parents[2]

_RECORDER = """\
import os


def test_record_database(timescale_db):
    with open(os.environ["VIGIL_TEST_RECORD"], "a", encoding="utf-8") as out:
        out.write(timescale_db + "\\n")
"""

local_only = pytest.mark.skipif(
    bool(os.environ.get("VIGIL_TEST_DATABASE_URL")),
    reason="about the local rootfs server; VIGIL_TEST_DATABASE_URL names another",
)


async def test_server_reports_postgres_and_timescaledb_versions(timescale_db: str) -> None:
    info = await server_info(timescale_db)

    assert info.postgres_version[:1].isdigit()
    assert info.timescaledb_version is not None
    assert info.timescaledb_version.startswith("2.")


@local_only
async def test_local_rootfs_server_is_postgres_17_with_apache_license(timescale_db: str) -> None:
    info = await server_info(timescale_db)

    assert info.postgres_version.startswith("17.")
    assert info.timescaledb_license == "apache"


async def test_hypertable_stores_rows_in_time_chunks(timescale_db: str) -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [(start + timedelta(hours=6 * i), 1, float(i)) for i in range(12)]  # three days
    conn = await asyncpg.connect(timescale_db)
    try:
        await conn.execute(
            "CREATE TABLE samples (time timestamptz NOT NULL, series_id bigint NOT NULL,"
            " value double precision NOT NULL)"
        )
        await conn.execute(
            "SELECT create_hypertable('samples', by_range('time', INTERVAL '1 day'))"
        )
        await conn.executemany("INSERT INTO samples VALUES ($1, $2, $3)", rows)

        count, total = await conn.fetchrow("SELECT count(*), sum(value) FROM samples")
        chunks = await conn.fetchval("SELECT count(*) FROM show_chunks('samples')")
    finally:
        await conn.close()

    assert (count, total) == (12, sum(range(12)))
    assert chunks == 3


async def test_each_module_gets_its_own_database_dropped_afterwards(
    timescale_server: TimescaleServer, tmp_path: Path
) -> None:
    # Two test modules in a child pytest run, pointed at this session's server.
    for module in ("test_alpha", "test_beta"):
        (tmp_path / f"{module}.py").write_text(_RECORDER, encoding="utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    record = tmp_path / "record.txt"
    env = {
        **os.environ,
        "VIGIL_TEST_DATABASE_URL": timescale_server.url,
        "VIGIL_TEST_RECORD": str(record),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pytest", "-q", "-p", "tests.fixtures.timescale",
        "-p", "no:cacheprovider", "-c", str(tmp_path / "pytest.ini"), str(tmp_path),
        cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output = (await asyncio.wait_for(proc.communicate(), 60))[0].decode()
    assert proc.returncode == 0, output

    names = [urlsplit(url).path.lstrip("/") for url in record.read_text().split()]
    assert [name.rsplit("_", 1)[0] for name in names] == ["test_alpha", "test_beta"]
    assert "license=" in output
    assert "(VIGIL_TEST_DATABASE_URL)" in output
    conn = await asyncpg.connect(timescale_server.url)
    try:
        left = await conn.fetch("SELECT datname FROM pg_database WHERE datname = any($1)", names)
    finally:
        await conn.close()
    assert left == []


async def test_create_database_refuses_a_name_needing_quotes() -> None:
    with pytest.raises(DevEnvError, match="cannot create database"):
        await create_database("postgresql://postgres@127.0.0.1:9/postgres", 'x"; DROP')


def test_cache_dir_is_vigil_cache_dir_then_xdg_then_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_CACHE_DIR", "/srv/vigil-cache")
    monkeypatch.setenv("XDG_CACHE_HOME", "/srv/xdg")
    monkeypatch.setenv("HOME", "/home/dev")
    assert default_cache_dir() == Path("/srv/vigil-cache")
    monkeypatch.delenv("VIGIL_CACHE_DIR")
    assert default_cache_dir() == Path("/srv/xdg/vigil")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path("/home/dev/.cache/vigil")


def _pids_in(pid_namespace: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if str((proc / "ns" / "pid").readlink()) == pid_namespace:
                    found.append(int(proc.name))
            except OSError:
                continue  # exited meanwhile
    return found


@local_only
def test_stopped_server_leaves_no_mount_and_no_process(tmp_path: Path) -> None:
    rootfs = ensure_rootfs(default_cache_dir())
    server = LocalTimescale(rootfs, tmp_path / "data", fast=True)
    with server:
        assert server.pid is not None
        wrapper = server.pid
        init = int(Path(f"/proc/{wrapper}/task/{wrapper}/children").read_text().split()[0])
        namespace = str(Path(f"/proc/{init}/ns/pid").readlink())
        assert len(_pids_in(namespace)) >= 3  # the script, the postmaster, its workers
        assert mounts_under(rootfs) == []  # the server's mounts are private to it

    assert not Path(f"/proc/{wrapper}").exists()
    assert _pids_in(namespace) == []
    assert mounts_under(rootfs) == []
