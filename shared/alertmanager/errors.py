"""The exception tree of ``shared.alertmanager``::

    AlertmanagerError
    └── MatcherError    a matcher string cannot be parsed or compiled (ValueError too)

The API's own errors, which carry an HTTP status, are in ``apierrors``.
"""

from __future__ import annotations

from shared.errors import VigilError


class AlertmanagerError(VigilError):
    """Root of every error ``shared.alertmanager`` raises on purpose."""


class MatcherError(AlertmanagerError, ValueError):
    """A matcher (``name="value"``, ``name=~"re"``, ...) cannot be parsed or compiled."""
