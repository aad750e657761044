"""The exception tree of ``shared``.

Every error that ``shared`` raises on purpose is one of these; third-party
errors (msgpack, nats-py, pydantic, OSError) are translated at the boundary
with ``raise ... from exc``::

    VigilError
    ├── ConfigError              a configuration file or value is invalid
    ├── WireError                a message on the bus cannot be handled
    │   ├── EncodeError          a model cannot be encoded (a BUG: models are validated)
    │   └── DecodeError          bytes from the bus are rejected; ``reason`` is a stable key
    │       ├── BatchTooLarge        more bytes than the limit
    │       ├── TooManySeries        more series in one batch than the limit
    │       ├── TooManyLabels        more labels on one series than the limit
    │       ├── LabelTooLong         a label name or value longer than the limit
    │       ├── InvalidName          a metric or label name breaks Prometheus' syntax
    │       ├── TimestampOutOfRange  a sample outside the accepted clock-skew window
    │       └── UnsupportedVersion   a schema version this build does not read
    ├── BusError                 NATS cannot be reached or set up
    │   ├── BusConnectError      cannot connect or authenticate
    │   └── ProvisionError       cannot create or update a stream or KV bucket
    └── DevEnvError              the local development environment cannot be built or started

Messages read "cannot <verb> <object>: <reason>" and name the field, subject or
host concerned.
"""

from __future__ import annotations


class VigilError(Exception):
    """Root of every error ``shared`` raises on purpose."""


class ConfigError(VigilError):
    """A configuration is invalid. ``problems`` holds (dotted field path, message) pairs."""

    def __init__(self, message: str, problems: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.problems: list[tuple[str, str]] = problems or []


class WireError(VigilError):
    """A message on the bus cannot be encoded or decoded."""


class EncodeError(WireError):
    """A model cannot be encoded."""


class DecodeError(WireError):
    """Bytes from the bus are rejected.

    ``reason`` is a short stable key (``"malformed"``, ``"batch_bytes"``, ...)
    fit for a metric label; the message says what exactly was wrong.
    """

    reason: str = "malformed"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class BatchTooLarge(DecodeError):
    reason = "batch_bytes"


class TooManySeries(DecodeError):
    reason = "series_per_batch"


class TooManyLabels(DecodeError):
    reason = "labels_per_series"


class LabelTooLong(DecodeError):
    reason = "label_length"


class InvalidName(DecodeError):
    reason = "invalid_name"


class TimestampOutOfRange(DecodeError):
    reason = "timestamp_skew"


class UnsupportedVersion(DecodeError):
    reason = "version"


class BusError(VigilError):
    """NATS cannot be reached or set up."""


class BusConnectError(BusError):
    """Cannot connect or authenticate to NATS."""


class ProvisionError(BusError):
    """Cannot create or update a stream or KV bucket."""


class DevEnvError(VigilError):
    """The local development environment cannot be built or started."""
