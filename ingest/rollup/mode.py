"""Which TimescaleDB license the database runs, and so who keeps the rollups.

- ``apache`` (Debian and Ubuntu packages): no continuous aggregates, policies
  or compression; rollup tables and retention are kept by Vigil's own jobs
  (:mod:`ingest.rollup.jobs`).
- ``timescale`` (the official container image): continuous aggregates with
  refresh, retention and compression policies (:mod:`ingest.rollup.timescale_sql`).

``timescaledb.license`` is defined only in a database where the extension is
created, so detect after migrations ran.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from ingest.rollup.errors import StorageModeError


class Mode(StrEnum):
    APACHE = "apache"
    TIMESCALE = "timescale"


def parse_license(value: str | None) -> Mode:
    """The mode for a ``timescaledb.license`` value (``None``: the setting is undefined)."""
    if value is None or value == "":
        raise StorageModeError(
            "cannot detect the storage mode: timescaledb.license is undefined"
            " (is the timescaledb extension created in this database?)"
        )
    try:
        return Mode(value)
    except ValueError:
        raise StorageModeError(
            f"cannot detect the storage mode: timescaledb.license is {value!r},"
            " want 'apache' or 'timescale'"
        ) from None


async def detect_mode(conn: Any) -> Mode:
    """Read ``timescaledb.license`` on ``conn`` (an asyncpg connection)."""
    value = await conn.fetchval("SELECT current_setting('timescaledb.license', true)")
    return parse_license(value)
