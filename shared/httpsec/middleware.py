"""The ASGI middleware that puts ``policy`` and ``verify`` in front of an HTTP app.

Both HTTP servers install it with one line, naming where their settings live
(read per request, so a reload that changes users, tokens or origins applies
to the next request)::

    app.add_middleware(HttpSecurityMiddleware, settings=lambda: self.config.visualization)

Per request, outermost first:

1. CORS (Starlette's ``CORSMiddleware``) only when ``cors_origins`` is set:
   preflights are answered there, without credentials, as browsers send them;
   with no origins configured no ``Access-Control-*`` header is ever sent.
2. The guard: auth off (no users, no tokens) lets everything through. Otherwise
   ``policy.required`` decides from method and path, before routing; a missing
   or wrong credential is 401 with ``WWW-Authenticate: Basic realm="Vigil"``
   (a browser prompts), a ``read`` credential on a write is 403. Under
   ``/api/`` the body is Prometheus' error envelope
   ``{"status":"error","errorType":...,"error":...}``, elsewhere plain text.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from shared.config.http import HttpAuthConfig, HttpServing
from shared.hosts import is_loopback
from shared.httpsec.errors import Denied, Forbidden
from shared.httpsec.policy import Access, allows, required
from shared.httpsec.verify import Authenticator
from shared.log import get_logger

if TYPE_CHECKING:  # Starlette is a server dependency: imported lazily (see _current)
    from starlette.types import ASGIApp, Receive, Scope, Send

log = get_logger(__name__)

REALM = "Vigil"
CHALLENGE = f'Basic realm="{REALM}"'
CORS_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS")
CORS_HEADERS = ("Authorization", "Content-Type")


async def deny(scope: Scope, send: Send, exc: Denied) -> None:
    """Answer a refused request: JSON envelope under /api/, text elsewhere."""
    if str(scope.get("path", "")).startswith("/api/"):
        envelope = {"status": "error", "errorType": exc.error_type, "error": str(exc)}
        body, media = json.dumps(envelope).encode(), b"application/json"
    else:
        body, media = f"{exc}\n".encode(), b"text/plain; charset=utf-8"
    headers = [(b"content-type", media), (b"content-length", str(len(body)).encode())]
    if exc.status == 401:
        headers.append((b"www-authenticate", CHALLENGE.encode()))
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _authorization(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"authorization":
            return bytes(value).decode("latin-1")
    return None


class _Guard:
    """Authentication and the role check (step 2 above) for one configuration."""

    def __init__(self, app: ASGIApp, auth: HttpAuthConfig) -> None:
        self.app = app
        self.authenticator = Authenticator(auth)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.authenticator.enabled:
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        needed = required(method, path)
        if needed is Access.OPEN:
            await self.app(scope, receive, send)
            return
        try:
            principal = await self.authenticator.authenticate(_authorization(scope))
            if not allows(principal.role, needed):
                raise Forbidden(
                    f"cannot {method} {path}: {principal.kind} {principal.name!r} has role "
                    f"{principal.role}, this needs admin"
                )
        except Denied as exc:
            log.debug("http request refused", method=method, path=path, status=exc.status)
            await deny(scope, send, exc)
            return
        await self.app(scope, receive, send)


class HttpSecurityMiddleware:
    """CORS and authentication in front of ``app``, configured by ``settings()``."""

    def __init__(self, app: ASGIApp, settings: Callable[[], HttpServing]) -> None:
        self.app = app
        self.settings = settings
        self._for: HttpServing | None = None
        self._stack: ASGIApp = app

    def _current(self) -> ASGIApp:
        settings = self.settings()
        if settings is not self._for:
            stack: ASGIApp = _Guard(self.app, settings.auth)
            origins = list(settings.cors_origins)
            if origins:
                from starlette.middleware.cors import CORSMiddleware

                stack = CORSMiddleware(
                    stack,
                    allow_origins=origins,
                    allow_methods=CORS_METHODS,
                    allow_headers=CORS_HEADERS,
                    allow_credentials="*" not in origins,
                    max_age=600,
                )
            self._for, self._stack = settings, stack
        return self._stack

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._current()(scope, receive, send)


def warn_if_open(service: str, host: str, settings: HttpServing) -> None:
    """Log a warning when ``service`` listens beyond loopback without authentication."""
    if not settings.auth.enabled and not is_loopback(host):
        log.warning(
            "http api without authentication on a non-loopback address",
            service=service,
            host=host,
            hint="configure auth.users or auth.tokens (docs/security.md)",
        )
