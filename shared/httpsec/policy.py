"""Which role an HTTP request needs: one table for the web service and the notifier.

The decision is made from the method and the path only, before routing, so a
route added later is covered the day it is added (and defaults to ``admin``
when it writes)::

    /healthz, /readyz                                  open (probes carry no credentials)
    GET, HEAD, OPTIONS on any path                     read
    POST to Prometheus' read endpoints (QUERY_POSTS)   read (Grafana POSTs its queries)
    anything else (silences, POST /api/v2/alerts,      admin
    /-/reload, any other write)

``read`` is satisfied by a ``read`` or an ``admin`` credential.
"""

from __future__ import annotations

import re
from enum import IntEnum
from typing import Final, Literal

Role = Literal["read", "admin"]


class Access(IntEnum):
    """What a request needs, ordered: a higher value needs more."""

    OPEN = 0
    READ = 1
    ADMIN = 2


OPEN_PATHS: Final = frozenset({"/healthz", "/readyz"})
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
# Prometheus' HTTP API accepts these as POST with a form body; they only read (the web
# service also answers /api/v1/rules and /api/v1/alerts to a POST, reading too).
QUERY_POSTS: Final = re.compile(
    r"^/api/v1/(?:query|query_range|query_exemplars|series|labels|format_query|parse_query"
    r"|label/[^/]+/values|rules|alerts)$"
)

_ROLE_ACCESS: Final[dict[str, Access]] = {"read": Access.READ, "admin": Access.ADMIN}


def required(method: str, path: str) -> Access:
    """The access a ``method`` on ``path`` (the decoded path, no query string) needs."""
    if path in OPEN_PATHS:
        return Access.OPEN
    method = method.upper()
    if method in SAFE_METHODS:
        return Access.READ
    if method == "POST" and QUERY_POSTS.match(path):
        return Access.READ
    return Access.ADMIN


def allows(role: Role, needed: Access) -> bool:
    """Whether a credential of ``role`` may make a request that needs ``needed``."""
    return _ROLE_ACCESS[role] >= needed
