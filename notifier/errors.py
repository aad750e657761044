"""The exception tree of ``notifier``.

Third-party errors (httpx, nats-py, pydantic) are translated at the boundary
with ``raise ... from exc``::

    NotifierError
    ├── AlertmanagerConfigError   the Alertmanager-format configuration is invalid
    │                             (a ``shared.errors.ConfigError`` too: ``problems`` has paths)
    └── DeliveryError             one delivery attempt failed
        ├── RetryableError        worth another attempt (timeout, 5xx, 429, network)
        └── PermanentError        not worth another attempt (4xx, refused URL, bad payload)

Matchers and silences raise ``shared.alertmanager.errors.MatcherError`` (the
Alertmanager model is shared with the web service). Messages read
"cannot <verb> <object>: <reason>" and never carry secrets.
"""

from __future__ import annotations

from shared.errors import ConfigError, VigilError


class NotifierError(VigilError):
    """Root of every error ``notifier`` raises on purpose."""


class AlertmanagerConfigError(NotifierError, ConfigError):
    """The Alertmanager configuration is invalid; ``problems`` holds (path, message) pairs."""


class DeliveryError(NotifierError):
    """One delivery attempt failed. ``retry_after`` (seconds) is the server's wish, if any."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class RetryableError(DeliveryError):
    """A failure another attempt may cure."""


class PermanentError(DeliveryError):
    """A failure another attempt will not cure."""
