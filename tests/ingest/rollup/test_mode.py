"""The license mode, read from timescaledb.license."""

from __future__ import annotations

import os

import asyncpg
import pytest

from ingest.rollup.errors import StorageModeError
from ingest.rollup.mode import Mode, detect_mode, parse_license
from shared.devenv.databases import server_info
from tests.fixtures.timescale import TimescaleServer


async def test_detected_mode_is_the_servers_license(timescale_db: str) -> None:
    conn = await asyncpg.connect(timescale_db)
    try:
        mode = await detect_mode(conn)
    finally:
        await conn.close()
    assert mode == (await server_info(timescale_db)).timescaledb_license


@pytest.mark.skipif(
    bool(os.environ.get("VIGIL_TEST_DATABASE_URL")),
    reason="the local rootfs server runs Debian's apache-licensed build",
)
async def test_debian_package_is_apache_mode(timescale_db: str) -> None:
    conn = await asyncpg.connect(timescale_db)
    try:
        assert await detect_mode(conn) is Mode.APACHE
    finally:
        await conn.close()


async def test_database_without_the_extension_has_no_mode(
    timescale_server: TimescaleServer,
) -> None:
    conn = await asyncpg.connect(timescale_server.url)
    try:
        if await conn.fetchval("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'"):
            pytest.skip("the server's postgres database has the extension")
        with pytest.raises(StorageModeError, match=r"timescaledb\.license is undefined"):
            await detect_mode(conn)
    finally:
        await conn.close()


def test_licenses_map_to_modes_and_others_are_refused() -> None:
    assert parse_license("apache") is Mode.APACHE
    assert parse_license("timescale") is Mode.TIMESCALE
    with pytest.raises(StorageModeError, match="'community'"):
        parse_license("community")
