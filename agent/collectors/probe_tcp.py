"""The ``tcp`` prober: connect to ``host:port``, optionally TLS, optionally a dialogue.

``query_response`` is blackbox's line dialogue, step by step: ``expect`` reads
lines until one matches (else the probe fails with
``probe_failed_due_to_regex 1``), ``send`` writes a line (``\\n``-terminated;
``${1}``/``${name}`` expand the groups of the last ``expect``), ``starttls``
upgrades the connection to TLS. Lines are at most 64 KiB, as Go's scanner.

Gauges: ``probe_ip_protocol``, ``probe_ip_addr_hash``,
``probe_dns_lookup_time_seconds``, ``probe_failed_due_to_regex`` and, after
``tls: true`` or a ``starttls`` step, the TLS gauges of
``agent.collectors.probe_tls``.
"""

from __future__ import annotations

import asyncio
import re
import ssl

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent.collectors.probe_base import (
    IpSettings,
    ProbeFailed,
    ProbeResult,
    closing,
    resolve,
    split_host_port,
)
from agent.collectors.probe_tls import TlsSettings, client_context, record_tls

_GO_GROUP = re.compile(r"\$(?:\{(\w+)\}|(\w+))|\$\$")


class QueryResponse(BaseModel):
    """One step of a dialogue: expect, then send, then starttls (each optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    expect: str = Field(default="", description="Regular expression a received line must match.")
    send: str = Field(default="", description="Line to send (a newline is added).")
    starttls: bool = Field(default=False, description="Upgrade the connection to TLS here.")

    @field_validator("expect")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {v!r}: {exc}") from exc
        return v


class TcpSettings(IpSettings):
    """``tcp:`` of a module (blackbox's keys)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    tls: bool = Field(default=False, description="Complete a TLS handshake after connecting.")
    tls_config: TlsSettings = Field(default_factory=TlsSettings, description="Client TLS.")
    query_response: list[QueryResponse] = Field(
        default_factory=list, description="Dialogue after connecting, step by step."
    )


async def probe_tcp(target: str, settings: TcpSettings, result: ProbeResult) -> None:
    """Connect to ``target`` (``host:port``); ``ProbeFailed`` when that, TLS or a step fails."""
    result.declare("probe_failed_due_to_regex")
    host, port = split_host_port(target, None)
    addr, _ = await resolve(host, settings, result)
    ctx: ssl.SSLContext | None = None
    if settings.tls or any(step.starttls for step in settings.query_response):
        try:
            ctx = client_context(settings.tls_config)
        except (OSError, ssl.SSLError) as exc:
            raise ProbeFailed(f"cannot load TLS settings: {exc}") from exc
    server_name = settings.tls_config.server_name or host
    try:
        reader, writer = await asyncio.open_connection(
            addr,
            port,
            ssl=ctx if settings.tls else None,
            server_hostname=server_name if settings.tls else None,
        )
    except (OSError, ssl.SSLError) as exc:
        raise ProbeFailed(f"cannot connect to {target}: {exc}") from exc
    async with closing(writer):
        if settings.tls and ctx is not None:
            record_tls(writer.get_extra_info("ssl_object"), result, verified=_verifies(ctx))
        try:
            await _dialogue(reader, writer, settings, result, tls=(ctx, server_name))
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
            raise ProbeFailed(f"cannot talk to {target}: {exc}") from exc


async def _dialogue(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    settings: TcpSettings,
    result: ProbeResult,
    *,
    tls: tuple[ssl.SSLContext | None, str],
) -> None:
    ctx, server_name = tls
    for i, step in enumerate(settings.query_response):
        send = step.send
        if step.expect:
            match = await _expect(reader, re.compile(step.expect))
            if match is None:
                result.set("probe_failed_due_to_regex", 1.0)
                raise ProbeFailed(f"query_response[{i}]: no line matches {step.expect!r}")
            result.set("probe_failed_due_to_regex", 0.0)
            send = _expand(send, match)
        if send:
            writer.write(send.encode() + b"\n")
            await writer.drain()
        if step.starttls and ctx is not None:
            await writer.start_tls(ctx, server_hostname=server_name)
            sslobj = writer.get_extra_info("ssl_object")
            record_tls(sslobj, result, verified=_verifies(ctx))


async def _expect(reader: asyncio.StreamReader, pattern: re.Pattern[str]) -> re.Match[str] | None:
    """The first line (until EOF) that ``pattern`` matches, or None."""
    while True:
        try:
            raw = await reader.readline()
        except ValueError as exc:  # LimitOverrunError: a line over 64 KiB
            raise ProbeFailed(f"cannot read line: {exc}") from exc
        if not raw:
            return None
        line = raw.decode("utf-8", "replace").removesuffix("\n").removesuffix("\r")
        match = pattern.search(line)
        if match is not None:
            return match


def _expand(template: str, match: re.Match[str]) -> str:
    """Go's ``Regexp.Expand``: ``$1``, ``${1}``, ``${name}``; ``$$`` is a dollar."""

    def group(m: re.Match[str]) -> str:
        key = m.group(1) or m.group(2)
        if key is None:
            return "$"
        try:
            value = match.group(int(key) if key.isdigit() else key)
        except IndexError:  # no such group: Go expands it to nothing
            return ""
        return value or ""

    return _GO_GROUP.sub(group, template)


def _verifies(ctx: ssl.SSLContext) -> bool:
    return ctx.verify_mode != ssl.CERT_NONE
