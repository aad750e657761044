"""The exception tree of ``ingest``.

Every error ingest raises on purpose is one of these; asyncpg, nats-py and
OS errors are translated at the boundary with ``raise ... from exc``::

    IngestError
    ├── MigrationError        a schema migration cannot be read or applied
    └── StorageError          the database cannot take a write now
        ├── StorageUnavailable    connection refused, lost, or timed out: retry later
        ├── WriteConflict         deadlock or serialization failure: retry at once
        └── WriteRejected         the database refused the data itself: not retryable

Decode failures are ``shared.errors.DecodeError``: the consumer turns them
into rejects (terminated messages), they never leave it. Messages read
"cannot <verb> <object>: <reason>".
"""

from __future__ import annotations

from shared.errors import VigilError


class IngestError(VigilError):
    """Root of every error ``ingest`` raises on purpose."""


class MigrationError(IngestError):
    """A migration file cannot be read, or applying it failed."""


class StorageError(IngestError):
    """A database write failed; the fetch it belonged to is not acknowledged."""


class StorageUnavailable(StorageError):
    """The database cannot be reached or dropped the connection: back off and retry."""


class WriteConflict(StorageError):
    """A deadlock or serialization failure: the transaction may be retried at once."""


class WriteRejected(StorageError):
    """The database refused the rows themselves (a data error): retrying cannot help."""
