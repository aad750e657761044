"""The exception tree of ``ingest.rollup`` (a branch of ``ingest.errors``)::

    IngestError
    └── RollupError              rollups or retention cannot be set up or kept
        ├── StorageModeError     the license mode cannot be told (no timescaledb extension)
        ├── RollupConfigError    settings that would lose data (refresh window vs retention)
        ├── RollupSchemaError    the rollup objects cannot be made, or belong to the other mode
        └── RollupJobError       a refresh or retention run failed (the next run retries)

asyncpg and OS errors are translated at the boundary with ``raise ... from exc``.
Messages read "cannot <verb> <object>: <reason>".
"""

from __future__ import annotations

from ingest.errors import IngestError


class RollupError(IngestError):
    """Root of every error ``ingest.rollup`` raises on purpose."""


class StorageModeError(RollupError):
    """``timescaledb.license`` is undefined (no extension) or not a known license."""


class RollupConfigError(RollupError):
    """The storage settings contradict each other; the message names them."""


class RollupSchemaError(RollupError):
    """Rollup tables, continuous aggregates or policies cannot be created or updated."""


class RollupJobError(RollupError):
    """A run of the apache-mode jobs failed; nothing it did was half-committed."""
