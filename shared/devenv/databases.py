"""Databases on a development server: which server, create, drop, and what it runs.

The server is the developer's own (:func:`database_url_from_env`) or a
:class:`shared.devenv.timescale.LocalTimescale`; URLs are libpq-style
``postgresql://`` URLs of a user allowed to create databases.

:func:`create_database`, :func:`drop_database` and :func:`server_info` import
asyncpg when called: ``shared`` is installed on agent hosts without it.
Every failure is a :class:`shared.errors.DevEnvError`; messages name host,
port and database, never a password.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from shared.config.models import StorageConfig
from shared.errors import DevEnvError

_DB_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


@dataclass(frozen=True)
class ServerInfo:
    """What a server runs.

    ``timescaledb_version`` is the extension version installed in the queried
    database, else the one the server would install, None if it has none.
    ``timescaledb_license`` is ``apache`` or ``timescale``; None unless the
    extension is created in the queried database (the setting is defined there only).
    """

    postgres_version: str
    timescaledb_version: str | None
    timescaledb_license: str | None


def database_url_from_env() -> str | None:
    """The developer's own server, ``$VIGIL_DATABASE_URL``, or None to start a local one."""
    return os.environ.get("VIGIL_DATABASE_URL") or None


def configured_database_url(storage: StorageConfig) -> str | None:
    """``storage.database_url``, else ``$VIGIL_DATABASE_URL``, else None."""
    secret = storage.database_url
    return secret.get_secret_value() if secret is not None else database_url_from_env()


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` instead."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def create_database(admin_url: str, name: str) -> str:
    """Create database ``name`` with the timescaledb extension; return its URL.

    ``name`` must be a plain lower-case identifier. Fails if it exists.
    """
    import asyncpg

    if not _DB_NAME.fullmatch(name):
        raise DevEnvError(
            f"cannot create database {name!r}: want [a-z_][a-z0-9_]*, at most 63 bytes"
        )
    url = with_database(admin_url, name)
    try:
        admin = await asyncpg.connect(admin_url, timeout=10)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        conn = await asyncpg.connect(url, timeout=10)
        try:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        finally:
            await conn.close()
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise DevEnvError(f"cannot create database {name} on {_where(admin_url)}: {exc}") from exc
    return url


async def drop_database(admin_url: str, name: str) -> None:
    """Drop database ``name`` if it exists, disconnecting its sessions (``WITH (FORCE)``)."""
    import asyncpg

    if not _DB_NAME.fullmatch(name):
        raise DevEnvError(f"cannot drop database {name!r}: want [a-z_][a-z0-9_]*, at most 63 bytes")
    try:
        admin = await asyncpg.connect(admin_url, timeout=10)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise DevEnvError(f"cannot drop database {name} on {_where(admin_url)}: {exc}") from exc


async def server_info(url: str) -> ServerInfo:
    """Versions and TimescaleDB license of the server behind ``url``."""
    import asyncpg

    try:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            row = await conn.fetchrow(
                "SELECT current_setting('server_version') AS postgres,"
                " coalesce("
                "  (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'),"
                "  (SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb')"
                " ) AS timescaledb,"
                " current_setting('timescaledb.license', true) AS license"
            )
        finally:
            await conn.close()
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise DevEnvError(f"cannot query server {_where(url)}: {exc}") from exc
    assert row is not None  # noqa: S101 - a SELECT without FROM returns exactly one row
    return ServerInfo(row["postgres"], row["timescaledb"], row["license"])


def _where(url: str) -> str:
    """Host, port and database of ``url``, never its password: fit for messages."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or '/'}"
