"""HTTP for receivers: a client built from ``http_config``, one POST, answers classified.

Status classes follow Alertmanager's ``notify.RetrierFunc`` defaults: 2xx is
success; 429 and 5xx are retried (``Retry-After`` seconds or HTTP date
honoured); other 4xx (and 3xx left after redirects) are permanent. Transport
errors and timeouts are retried. Error messages name the URL redacted.
"""

from __future__ import annotations

import ssl
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx

from notifier.config.common import HTTPConfig, read_secret
from notifier.errors import PermanentError, RetryableError
from notifier.ssrf import URLGuard, redact

USER_AGENT = "Vigil-Notifier/0.1"
MAX_BODY_IN_ERROR = 200


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


async def post_json(
    client: httpx.AsyncClient, guard: URLGuard, url: str, payload: Any, *, what: str
) -> httpx.Response:
    """POST ``payload`` as JSON; return the 2xx response or raise a classified ``DeliveryError``."""
    await guard.check(url)
    where = redact(url)
    try:
        response = await client.post(url, json=payload)
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
        raise RetryableError(
            message, status=code, retry_after=retry_after(response.headers.get("Retry-After"))
        )
    raise PermanentError(message, status=code)
