"""The exception tree of ``shared.httpsec``::

    VigilError
    └── HttpSecError             an HTTP credential or its configuration is refused
        ├── HashFormatError      a stored hash is not a string ``hashing`` understands
        │                        (also a ValueError, so config validators report it)
        └── Denied               a request may not go on; ``status`` is 401 or 403
            ├── Unauthorized     no credential, or one that does not verify (401)
            └── Forbidden        a valid credential whose role is too low (403)

Messages never contain a presented secret or a stored hash: they name the
user or token, the method and the path.
"""

from __future__ import annotations

from shared.errors import VigilError


class HttpSecError(VigilError):
    """Root of the errors of ``shared.httpsec``."""


class HashFormatError(HttpSecError, ValueError):
    """A stored password or token hash is malformed or of an unknown scheme."""


class Denied(HttpSecError):
    """A request is refused; ``status`` is the HTTP status to answer with."""

    status = 401
    error_type = "unauthorized"


class Unauthorized(Denied):
    """No credential, a malformed one, or one that matches no configured user or token."""


class Forbidden(Denied):
    """The credential is valid but its role does not allow the request."""

    status = 403
    error_type = "forbidden"
