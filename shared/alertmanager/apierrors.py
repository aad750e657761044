"""The API's exceptions: each carries the HTTP status it is answered with."""

from __future__ import annotations


class ApiError(Exception):
    """An error answered as a JSON string body with ``status`` (Alertmanager does the same)."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(ApiError):
    status = 400


class NotFound(ApiError):
    status = 404
