"""The exception tree of ``agent``.

Every error the agent raises on purpose is one of these; third-party errors
(nats-py, OSError from the spool files) are translated at the boundary with
``raise ... from exc``::

    AgentError
    ├── CollectorBuildError   a collector cannot be built from its config (bad options,
    │                         unknown kind); ``where`` names the collector
    ├── SpoolError            the on-disk spool cannot be opened or written
    │   └── SpoolCorrupt      a segment holds a record that fails its length or CRC check
    │                         (internal: the spool skips the rest of that segment and counts it)
    └── PublishError          one batch cannot be published (NATS down, no ack in time,
        │                     stream missing); the batch goes to the spool
        └── PublishRejected   the server or client refuses the batch for good (too large
                              for max_payload); retrying cannot help, the batch is dropped

Messages read "cannot <verb> <object>: <reason>" and name the collector,
subject or file concerned.
"""

from __future__ import annotations


class AgentError(Exception):
    """Root of every error the agent raises on purpose."""


class CollectorBuildError(AgentError):
    """A collector cannot be built. ``where`` is the collector's name in the config."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(message)
        self.where = where


class SpoolError(AgentError):
    """The spool folder or one of its files cannot be used."""


class SpoolCorrupt(SpoolError):
    """A record fails its framing check (a torn write at the tail, or damage)."""


class PublishError(AgentError):
    """A batch was not acknowledged; it is kept (spooled) and retried."""


class PublishRejected(PublishError):
    """A batch can never be published as it is; it is dropped and counted."""
