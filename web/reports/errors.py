"""The exception tree of ``web.reports``, mapped to the API's error types::

    ReportError            (VigilError)
    ├── BadRequest         a parameter is invalid (HTTP 400, errorType bad_data)
    └── ReportUnavailable  the database could not answer (HTTP 503, errorType unavailable)

Messages read "cannot <verb> <object>: <reason>" and name the parameter.
"""

from __future__ import annotations

from shared.errors import VigilError


class ReportError(VigilError):
    """Root of every error ``web.reports`` raises on purpose."""

    error_type: str = "execution"
    http_status: int = 422


class BadRequest(ReportError):
    error_type = "bad_data"
    http_status = 400


class ReportUnavailable(ReportError):
    error_type = "unavailable"
    http_status = 503
