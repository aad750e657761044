"""HTTP for receivers: a client built from ``http_config``, one POST, answers classified.

Status classes follow Alertmanager's ``notify.RetrierFunc`` defaults: 2xx is
success; 429 and 5xx are retried (``Retry-After`` seconds or HTTP date
honoured); other 4xx (and 3xx left after redirects) are permanent. Transport
errors and timeouts are retried. Error messages name the URL redacted.
"""

from __future__ import annotations

import logging
import ssl
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from notifier.config.common import HTTPConfig, read_secret
from notifier.errors import PermanentError, RetryableError
from notifier.receivers.base import BuildContext
from notifier.ssrf import URLGuard, redact

USER_AGENT = "Vigil-Notifier/0.1"
MAX_BODY_IN_ERROR = 200


class RedactURLs(logging.Filter):
    """Redacts URLs in httpx's own log lines (``HTTP Request: POST <url> ...`` at INFO).

    Receivers' URLs hold secrets in their paths (Slack and Discord webhooks,
    Telegram's bot token), and the root logger runs at INFO.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact(str(a)) if isinstance(a, httpx.URL) else a for a in record.args
            )
        return True


logging.getLogger("httpx").addFilter(RedactURLs())


def _ssl(cfg: HTTPConfig, base_dir: Path) -> ssl.SSLContext | bool:
    tls = cfg.tls_config
    if tls is None:
        return True
    if tls.insecure_skip_verify:
        return False
    ctx = ssl.create_default_context()

    def path(p: str) -> str:
        q = Path(p).expanduser()
        return str(q if q.is_absolute() else base_dir / q)

    if tls.ca_file:
        ctx.load_verify_locations(cafile=path(tls.ca_file))
    elif tls.ca:
        ctx.load_verify_locations(cadata=tls.ca)
    if tls.cert_file and tls.key_file:
        ctx.load_cert_chain(path(tls.cert_file), path(tls.key_file))
    return ctx


def build_client(
    cfg: HTTPConfig | None, base_dir: Path, guard: URLGuard | None = None
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` with the auth, TLS, proxy and redirect settings of ``cfg``.

    With a ``guard``, every request the client makes is checked, redirects
    included: a receiver cannot be bounced to a metadata address.
    """
    cfg = cfg or HTTPConfig()

    async def check(request: httpx.Request) -> None:
        if guard is not None:
            await guard.check(str(request.url))

    headers = {"User-Agent": USER_AGENT}
    auth: httpx.Auth | None = None
    if cfg.basic_auth is not None:
        ba = cfg.basic_auth
        username = ba.username
        if ba.username_file:
            username = read_secret(None, ba.username_file, base_dir) or ""
        auth = httpx.BasicAuth(username, read_secret(ba.password, ba.password_file, base_dir) or "")
    elif cfg.authorization is not None:
        a = cfg.authorization
        creds = read_secret(a.credentials, a.credentials_file, base_dir) or ""
        headers["Authorization"] = f"{a.type.strip() or 'Bearer'} {creds}"
    elif cfg.bearer_token is not None or cfg.bearer_token_file is not None:
        token = read_secret(cfg.bearer_token, cfg.bearer_token_file, base_dir) or ""
        headers["Authorization"] = f"Bearer {token}"
    return httpx.AsyncClient(
        headers=headers,
        auth=auth,
        verify=_ssl(cfg, base_dir),
        follow_redirects=cfg.follow_redirects,
        proxy=cfg.proxy_url,
        trust_env=cfg.proxy_from_environment,
        timeout=httpx.Timeout(300.0),  # a backstop: the caller bounds each attempt tighter
        event_hooks={"request": [check]},
    )


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds or HTTP date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _body_retry_after(response: httpx.Response) -> float | None:
    # Telegram ({"parameters": {"retry_after": 5}}) and Discord ({"retry_after": 1.5}) say it
    # in the body, not (only) in the header
    try:
        doc = response.json()
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    value = doc.get("retry_after", (doc.get("parameters") or {}).get("retry_after"))
    return float(value) if isinstance(value, int | float) and value >= 0 else None


async def post_json(
    client: httpx.AsyncClient,
    guard: URLGuard,
    url: str,
    payload: Any,
    *,
    what: str,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST ``payload`` as JSON; return the 2xx response or raise a classified ``DeliveryError``.

    ``headers`` may carry secrets (``Authorization: GenieKey ...``): they are never
    part of an error message.
    """
    await guard.check(url)
    where = redact(url)
    try:
        response = await client.post(url, json=payload, headers=headers)
    except httpx.TimeoutException as exc:
        raise RetryableError(f"cannot notify {what} at {where}: timed out") from exc
    except httpx.HTTPError as exc:
        # httpx messages may quote the URL; keep only the class name
        raise RetryableError(f"cannot notify {what} at {where}: {type(exc).__name__}") from exc
    code = response.status_code
    if 200 <= code < 300:
        return response
    body = response.text[:MAX_BODY_IN_ERROR].strip()
    message = f"cannot notify {what} at {where}: HTTP {code}" + (f": {body}" if body else "")
    if code == 429 or code >= 500:
        wait = retry_after(response.headers.get("Retry-After"))
        if wait is None and code == 429:
            wait = _body_retry_after(response)
        raise RetryableError(message, status=code, retry_after=wait)
    raise PermanentError(message, status=code)


def required_secret(value: SecretStr | None, file: str | None, base_dir: Path, what: str) -> str:
    """A secret that must be set (a URL, key or token); ``PermanentError`` naming ``what`` if not."""
    try:
        text = read_secret(value, file, base_dir)
    except ValueError as exc:
        raise PermanentError(f"cannot notify {what}: {exc}") from exc
    if not text or not text.strip():
        raise PermanentError(f"cannot notify {what}: the secret is empty")
    return text.strip()


class HTTPIntegration:
    """What HTTP receivers share: the lazily built client, ``post`` and ``close``.

    Subclasses set ``kind`` and build the payload; ``cfg.http_config`` is used when
    the config has one.
    """

    kind = "http"

    def __init__(self, cfg: Any, index: int, ctx: BuildContext) -> None:
        self.cfg = cfg
        self.index = index
        self.send_resolved: bool = cfg.send_resolved
        self.ctx = ctx
        self._client: httpx.AsyncClient | None = None

    async def post(
        self, url: str, payload: Any, *, what: str, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        if self._client is None:
            self._client = build_client(
                getattr(self.cfg, "http_config", None), self.ctx.base_dir, self.ctx.guard
            )
        return await post_json(
            self._client, self.ctx.guard, url, payload, what=what, headers=headers
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
