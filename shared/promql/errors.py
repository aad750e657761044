"""The exception tree of ``shared.promql``, mapped to Prometheus' API error types::

PromQLError
├── BadData            the query cannot be parsed or is invalid (HTTP 400, errorType bad_data)
├── ExecutionError     evaluation failed (HTTP 422, errorType execution)
│   └── TooManySamples     the query would load more samples than the limit (422, execution)
├── QueryTimeout       the query ran past its timeout (HTTP 503, errorType timeout)
└── StorageFailure     the storage could not answer (HTTP 503, errorType unavailable)
"""

from __future__ import annotations

from shared.errors import VigilError


class PromQLError(VigilError):
    """Root of every error ``shared.promql`` raises on purpose."""

    error_type: str = "execution"
    http_status: int = 422


class BadData(PromQLError):
    error_type = "bad_data"
    http_status = 400


class ExecutionError(PromQLError):
    error_type = "execution"
    http_status = 422


class TooManySamples(ExecutionError):
    """Prometheus' message: "query processing would load too many samples into memory in ..."."""


class QueryTimeout(PromQLError):
    error_type = "timeout"
    http_status = 503


class StorageFailure(PromQLError):
    error_type = "unavailable"
    http_status = 503
