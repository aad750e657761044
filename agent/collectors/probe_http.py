"""The ``http`` prober: HTTP/1.1 over asyncio streams, with blackbox's phase timings.

One request per connection (``Connection: close``), redirects followed up to
10 unless ``no_follow_redirects``. Phases, summed over redirects as
blackbox's ``probe_http_duration_seconds{phase}``:

=============  ======================================================
resolve        name lookup (first hop: the probe's own lookup)
connect        TCP connect
tls            TLS handshake
processing     request written to first response byte
transfer       first response byte to end of body (final hop only)
=============  ======================================================

Gauges as blackbox 0.23: ``probe_http_status_code``, ``_content_length``
(-1 when the response has no Content-Length), ``_uncompressed_body_length``,
``_redirects``, ``_ssl``, ``_version``, ``_last_modified_timestamp_seconds``
(when the header parses), ``probe_failed_due_to_regex`` and, over TLS, the
gauges of ``agent.collectors.probe_tls``.

Not implemented, so rejected at config time: ``proxy_url``, ``basic_auth``,
``bearer_token``, ``oauth2``, ``enable_http2``, ``fail_if_body_json_*``
(credentials in the URL do work: sent as Basic authentication, as Go's client
does). Unlike Go's client, no cookie jar is kept across redirects and no
``Accept-Encoding`` is sent unless ``compression`` asks for it. Regular
expressions are Python's ``re``, close to but not exactly Go's RE2.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Literal
from urllib.parse import urljoin, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent.collectors.probe_base import IpSettings, ProbeFailed, ProbeResult, closing, resolve
from agent.collectors.probe_httpwire import Response, build_request, read_response
from agent.collectors.probe_tls import TlsSettings, client_context, record_tls

MAX_REDIRECTS = 10
USER_AGENT = "Vigil-Agent"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PHASES = ("resolve", "connect", "tls", "processing", "transfer")


class HeaderMatch(BaseModel):
    """One header check: ``regexp`` searched in every value of ``header``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    header: str = Field(description="Header name, any case.")
    regexp: str = Field(description="Regular expression, searched in each value.")
    allow_missing: bool = Field(
        default=False, description="A missing header passes instead of failing the probe."
    )

    @field_validator("regexp")
    @classmethod
    def _compiles(cls, v: str) -> str:
        return _check_regex(v)


class HttpSettings(IpSettings):
    """``http:`` of a module (blackbox's keys)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    valid_status_codes: list[int] = Field(
        default_factory=list, description="Accepted status codes; empty: any 2xx."
    )
    valid_http_versions: list[str] = Field(
        default_factory=list, description='Accepted versions, e.g. "HTTP/1.1"; empty: any.'
    )
    method: str = Field(default="GET", description="Request method.")
    headers: dict[str, str] = Field(
        default_factory=dict, description="Request headers; Host overrides the target's host."
    )
    body: str | None = Field(default=None, description="Request body.")
    compression: Literal["", "gzip", "deflate", "identity"] = Field(
        default="",
        description="Ask for this Content-Encoding and decode it: uncompressed_body_length is "
        "then the decoded length. Empty: ask for none.",
    )
    no_follow_redirects: bool = Field(
        default=False, description="Report a redirect instead of following it."
    )
    follow_redirects: bool = Field(
        default=True,
        description="blackbox 0.23's spelling (http_client_config); false = no_follow.",
    )
    fail_if_ssl: bool = Field(default=False, description="Fail when the final hop used TLS.")
    fail_if_not_ssl: bool = Field(default=False, description="Fail unless the final hop used TLS.")
    fail_if_body_matches_regexp: list[str] = Field(
        default_factory=list, description="Fail when any expression is found in the body."
    )
    fail_if_body_not_matches_regexp: list[str] = Field(
        default_factory=list, description="Fail unless every expression is found in the body."
    )
    fail_if_header_matches: list[HeaderMatch] = Field(
        default_factory=list, description="Fail when a header value matches."
    )
    fail_if_header_not_matches: list[HeaderMatch] = Field(
        default_factory=list, description="Fail unless a value of the header matches."
    )
    body_size_limit: int = Field(
        default=0,
        ge=0,
        description="Bytes of body read at most (then the probe fails); 0: no limit.",
    )
    tls_config: TlsSettings = Field(default_factory=TlsSettings, description="Client TLS.")

    @field_validator("fail_if_body_matches_regexp", "fail_if_body_not_matches_regexp")
    @classmethod
    def _compile_all(cls, v: list[str]) -> list[str]:
        return [_check_regex(x) for x in v]

    @field_validator("headers")
    @classmethod
    def _one_line(cls, v: dict[str, str]) -> dict[str, str]:
        for key, value in v.items():
            if any(c in key + value for c in "\r\n\0") or not key.strip():
                raise ValueError(f"header {key!r} has an empty name or a line break")
        return v

    @field_validator("method")
    @classmethod
    def _token(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z]+", v):
            raise ValueError(f"invalid HTTP method {v!r}")
        return v.upper()

    @property
    def follows(self) -> bool:
        return self.follow_redirects and not self.no_follow_redirects


def _check_regex(v: str) -> str:
    try:
        re.compile(v)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {v!r}: {exc}") from exc
    return v


@dataclass
class _Timings:
    resolve: float = 0.0
    connect: float = 0.0
    tls: float = 0.0
    processing: float = 0.0
    transfer: float = 0.0


async def probe_http(target: str, settings: HttpSettings, result: ProbeResult) -> None:
    """GET (or ``method``) ``target``; ``ProbeFailed`` naming the first failed check."""
    for phase in _PHASES:
        result.set("probe_http_duration_seconds", 0.0, {"phase": phase})
    result.declare(
        "probe_http_content_length",
        "probe_http_uncompressed_body_length",
        "probe_http_redirects",
        "probe_http_ssl",
        "probe_http_status_code",
        "probe_http_version",
        "probe_failed_due_to_regex",
    )
    if not target.startswith(("http://", "https://")):
        target = "http://" + target
    parts = urlsplit(target)
    if not parts.hostname:
        raise ProbeFailed(f"cannot probe {target}: no host in URL")
    addr, _ = await resolve(parts.hostname, settings, result)
    lookup = result.get("probe_dns_lookup_time_seconds") or 0.0
    result.add("probe_http_duration_seconds", lookup, {"phase": "resolve"})

    needs_body = bool(
        settings.fail_if_body_matches_regexp or settings.fail_if_body_not_matches_regexp
    )
    url, method, body = target, settings.method, settings.body
    first_host = parts.netloc
    redirects = 0
    while True:
        timings = _Timings()
        try:
            resp = await _round_trip(
                url,
                method,
                body,
                settings,
                addr=addr if urlsplit(url).netloc == first_host else None,
                send_sni=urlsplit(url).netloc == first_host,
                needs_body=needs_body,
                timings=timings,
                result=result,
            )
        finally:
            for phase in _PHASES[:-1]:  # transfer: of the final response only, as blackbox
                result.add("probe_http_duration_seconds", getattr(timings, phase), {"phase": phase})
        location = resp.header("location")
        if resp.status not in _REDIRECTS or not location:
            break
        redirects += 1
        result.set("probe_http_redirects", float(redirects))
        if not settings.follows or redirects > MAX_REDIRECTS:
            break
        url = urljoin(url, location[0])
        if not url.startswith(("http://", "https://")):
            raise ProbeFailed(f"cannot follow redirect to {url}: not an http(s) URL")
        if resp.status == 303 or (resp.status in (301, 302) and method != "HEAD"):
            method, body = ("HEAD" if method == "HEAD" else "GET"), None
    result.set("probe_http_duration_seconds", timings.transfer, {"phase": "transfer"})
    _check(resp, settings, result)


def _check(resp: Response, settings: HttpSettings, result: ProbeResult) -> None:
    _record(resp, result)
    failures: list[str] = []
    if settings.valid_status_codes:
        if resp.status not in settings.valid_status_codes:
            failures.append(
                f"status code {resp.status} is not one of {settings.valid_status_codes}"
            )
    elif not 200 <= resp.status < 300:
        failures.append(f"status code {resp.status} is not 2xx")
    # Header, then body expressions, each only while the probe still passes (as blackbox).
    for applies, check in (
        (
            settings.fail_if_header_matches or settings.fail_if_header_not_matches,
            _header_failure,
        ),
        (
            settings.fail_if_body_matches_regexp or settings.fail_if_body_not_matches_regexp,
            _body_failure,
        ),
    ):
        if applies and not failures:
            reason = check(resp, settings)
            result.set("probe_failed_due_to_regex", 1.0 if reason else 0.0)
            if reason:
                failures.append(reason)
    if settings.valid_http_versions and resp.version not in settings.valid_http_versions:
        failures.append(f"version {resp.version} is not one of {settings.valid_http_versions}")
    if resp.tls and settings.fail_if_ssl:
        failures.append("TLS used (fail_if_ssl)")
    if not resp.tls and settings.fail_if_not_ssl:
        failures.append("TLS not used (fail_if_not_ssl)")
    if failures:
        raise ProbeFailed("; ".join(failures))


def _record(resp: Response, result: ProbeResult) -> None:
    result.set("probe_http_status_code", float(resp.status))
    result.set("probe_http_content_length", float(resp.content_length))
    result.set("probe_http_uncompressed_body_length", float(resp.body_length))
    with contextlib.suppress(ValueError):
        result.set("probe_http_version", float(resp.version.removeprefix("HTTP/")))
    modified = resp.header("last-modified")
    if modified:
        with contextlib.suppress(TypeError, ValueError, IndexError):
            result.set(
                "probe_http_last_modified_timestamp_seconds",
                float(int(parsedate_to_datetime(modified[0]).timestamp())),
            )
    if resp.tls:
        result.set("probe_http_ssl", 1.0)


def _header_failure(resp: Response, settings: HttpSettings) -> str | None:
    for spec in settings.fail_if_header_matches:
        values = resp.header(spec.header)
        if not values and not spec.allow_missing:
            return f"header {spec.header} is missing"
        if any(re.search(spec.regexp, v) for v in values):
            return f"header {spec.header} matches {spec.regexp!r}"
    for spec in settings.fail_if_header_not_matches:
        values = resp.header(spec.header)
        if not values:
            if spec.allow_missing:
                continue
            return f"header {spec.header} is missing"
        if not any(re.search(spec.regexp, v) for v in values):
            return f"header {spec.header} does not match {spec.regexp!r}"
    return None


def _body_failure(resp: Response, settings: HttpSettings) -> str | None:
    text = resp.body.decode("utf-8", "replace")
    for expr in settings.fail_if_body_matches_regexp:
        if re.search(expr, text):
            return f"body matches {expr!r}"
    for expr in settings.fail_if_body_not_matches_regexp:
        if not re.search(expr, text):
            return f"body does not match {expr!r}"
    return None


async def _round_trip(
    url: str,
    method: str,
    body: str | None,
    settings: HttpSettings,
    *,
    addr: str | None,
    send_sni: bool,
    needs_body: bool,
    timings: _Timings,
    result: ProbeResult,
) -> Response:
    """One request on a new connection; ``addr`` is the resolved address of the first host."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    where = parts.netloc.rpartition("@")[2]  # never a URL's credentials in a message
    tls = parts.scheme == "https"
    try:
        port = parts.port or (443 if tls else 80)
    except ValueError as exc:
        raise ProbeFailed(f"cannot probe {where}: {exc}") from exc
    if addr is None:  # a redirect to another host: resolved here, as Go's transport does
        start = time.perf_counter()
        addr, _ = await resolve(host, settings, ProbeResult())
        timings.resolve = time.perf_counter() - start
    start = time.perf_counter()
    try:
        reader, writer = await asyncio.open_connection(addr, port)
    except OSError as exc:
        raise ProbeFailed(f"cannot connect to {where}: {exc}") from exc
    timings.connect = time.perf_counter() - start
    async with closing(writer):
        try:
            sslobj = None
            if tls:
                start = time.perf_counter()
                try:
                    ctx = client_context(settings.tls_config)
                    # server_name applies to the first host only (blackbox's NoServerNameTransport).
                    name = (settings.tls_config.server_name or host) if send_sni else host
                    await writer.start_tls(ctx, server_hostname=name)
                except (OSError, ssl.SSLError, ssl.CertificateError) as exc:
                    raise ProbeFailed(f"cannot complete TLS handshake with {where}: {exc}") from exc
                timings.tls = time.perf_counter() - start
                sslobj = writer.get_extra_info("ssl_object")
            start = time.perf_counter()
            writer.write(
                build_request(
                    method,
                    url,
                    body,
                    settings.headers,
                    accept_encoding=settings.compression,
                    user_agent=USER_AGENT,
                )
            )
            await writer.drain()
            resp = await read_response(
                reader,
                method,
                keep_body=needs_body,
                decode=settings.compression,
                limit=settings.body_size_limit,
            )
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            raise ProbeFailed(f"cannot read response of {where}: {exc}") from exc
        timings.processing = resp.first_byte - start
        timings.transfer = resp.done - resp.first_byte
        resp.tls = tls
        if sslobj is not None:
            record_tls(sslobj, result, verified=settings.tls_config.insecure_skip_verify is False)
    return resp
