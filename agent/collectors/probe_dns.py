"""The ``dns`` prober: one query to the server in ``target`` (``host[:port]``, port 53).

Over UDP (default) or TCP (``transport_protocol``), with the codec of
``agent.collectors.probe_dnswire``. Gauges as blackbox 0.23:
``probe_dns_duration_seconds{phase=resolve|connect|request}``,
``probe_dns_answer_rrs``, ``probe_dns_authority_rrs``,
``probe_dns_additional_rrs``, ``probe_dns_query_succeeded`` (a response
arrived and parsed) and, for SOA queries, ``probe_dns_serial``.

Success: a response whose rcode is in ``valid_rcodes`` (default NOERROR) and
whose sections pass their ``validate_*_rrs`` checks, matched against each
record as miekg/dns prints it. Not implemented: DNS over TLS, EDNS options,
``source_ip_address``.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import struct
import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent.collectors.probe_base import (
    IpSettings,
    ProbeFailed,
    ProbeResult,
    closing,
    resolve,
    split_host_port,
)
from agent.collectors.probe_dnswire import (
    CLASSES,
    RCODE_NAMES,
    RCODES,
    TYPES,
    DnsFormatError,
    Message,
    Record,
    decode_message,
    encode_name,
    encode_query,
    soa_serial,
)

_PHASES = ("resolve", "connect", "request")
_MAX_UDP = 65535


class RRValidator(BaseModel):
    """Checks of one section's records (blackbox's ``validate_*_rrs``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fail_if_matches_regexp: list[str] = Field(
        default_factory=list, description="Fail if any record matches any expression."
    )
    fail_if_all_match_regexp: list[str] = Field(
        default_factory=list, description="Fail if every record matches every expression."
    )
    fail_if_not_matches_regexp: list[str] = Field(
        default_factory=list, description="Fail if a record misses an expression (or none came)."
    )
    fail_if_none_matches_regexp: list[str] = Field(
        default_factory=list, description="Fail if no record matches an expression (or none came)."
    )

    @field_validator(
        "fail_if_matches_regexp",
        "fail_if_all_match_regexp",
        "fail_if_not_matches_regexp",
        "fail_if_none_matches_regexp",
    )
    @classmethod
    def _compile(cls, v: list[str]) -> list[str]:
        for expr in v:
            try:
                re.compile(expr)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {expr!r}: {exc}") from exc
        return v

    def failure(self, section: str, rrs: list[Record]) -> str | None:
        """Why ``rrs`` fail these checks, or None (blackbox's ``validRRs``)."""
        if not rrs and (self.fail_if_not_matches_regexp or self.fail_if_none_matches_regexp):
            return f"no {section} records to match"
        texts = [rr.text for rr in rrs]
        for expr in self.fail_if_matches_regexp:
            if hit := next((t for t in texts if re.search(expr, t)), None):
                return f"{section} record {hit!r} matches {expr!r}"
        for expr in self.fail_if_not_matches_regexp:
            if miss := next((t for t in texts if not re.search(expr, t)), None):
                return f"{section} record {miss!r} does not match {expr!r}"
        if self.fail_if_all_match_regexp and all(
            re.search(e, t) for e in self.fail_if_all_match_regexp for t in texts
        ):
            return f"every {section} record matches {self.fail_if_all_match_regexp}"
        if self.fail_if_none_matches_regexp and not any(
            re.search(e, t) for e in self.fail_if_none_matches_regexp for t in texts
        ):
            return f"no {section} record matches {self.fail_if_none_matches_regexp}"
        return None


class DnsSettings(IpSettings):
    """``dns:`` of a module (blackbox's keys)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    query_name: str = Field(default=".", description="Name to ask for; default: the root.")
    query_type: str = Field(
        default="ANY", description="Record type: A, AAAA, CNAME, MX, TXT, NS, SOA, SRV, PTR, ..."
    )
    query_class: str = Field(default="IN", description="Query class: IN, CH, HS or ANY.")
    transport_protocol: Literal["udp", "tcp"] = Field(default="udp", description="udp or tcp.")
    recursion_desired: bool = Field(default=True, description="Set the RD flag.")
    valid_rcodes: list[str] = Field(
        default_factory=lambda: ["NOERROR"], description="Accepted response codes, by name."
    )
    validate_answer_rrs: RRValidator = Field(default_factory=RRValidator)
    validate_authority_rrs: RRValidator = Field(default_factory=RRValidator)
    validate_additional_rrs: RRValidator = Field(default_factory=RRValidator)

    @field_validator("query_name")
    @classmethod
    def _encodable(cls, v: str) -> str:
        encode_name(v)  # ValueError names the bad label
        return v

    @field_validator("query_type")
    @classmethod
    def _known_type(cls, v: str) -> str:
        if v.upper() not in TYPES:
            raise ValueError(f"unknown query type {v!r}; known: {', '.join(TYPES)}")
        return v.upper()

    @field_validator("query_class")
    @classmethod
    def _known_class(cls, v: str) -> str:
        if v.upper() not in CLASSES:
            raise ValueError(f"unknown query class {v!r}; known: {', '.join(CLASSES)}")
        return v.upper()

    @field_validator("valid_rcodes")
    @classmethod
    def _known_rcodes(cls, v: list[str]) -> list[str]:
        for rcode in v:
            if rcode.upper() not in RCODES:
                raise ValueError(f"unknown rcode {rcode!r}; known: {', '.join(RCODES)}")
        return [r.upper() for r in v]


async def probe_dns(target: str, settings: DnsSettings, result: ProbeResult) -> None:
    """Query the server ``target``; ``ProbeFailed`` naming why the answer is not acceptable."""
    for phase in _PHASES:
        result.set("probe_dns_duration_seconds", 0.0, {"phase": phase})
    result.declare(
        "probe_dns_answer_rrs",
        "probe_dns_authority_rrs",
        "probe_dns_additional_rrs",
        "probe_dns_query_succeeded",
    )
    host, port = split_host_port(target, 53)
    addr, _ = await resolve(host, settings, result)
    lookup = result.get("probe_dns_lookup_time_seconds") or 0.0
    result.set("probe_dns_duration_seconds", lookup, {"phase": "resolve"})
    qtype = TYPES[settings.query_type]
    msg_id = secrets.randbelow(1 << 16)
    query = encode_query(
        msg_id,
        settings.query_name,
        qtype,
        CLASSES[settings.query_class],
        recursion_desired=settings.recursion_desired,
    )
    exchange = _exchange_tcp if settings.transport_protocol == "tcp" else _exchange_udp
    response = await exchange(addr, port, query, msg_id, result)
    result.set("probe_dns_query_succeeded", 1.0)
    result.set("probe_dns_answer_rrs", float(len(response.answer)))
    result.set("probe_dns_authority_rrs", float(len(response.authority)))
    result.set("probe_dns_additional_rrs", float(len(response.additional)))
    if settings.query_type == "SOA":
        result.set("probe_dns_serial", 0.0)
        for rr in response.answer:
            serial = soa_serial(rr)
            if serial is not None:
                result.set("probe_dns_serial", float(serial))
    rcode = RCODE_NAMES.get(response.rcode, str(response.rcode))
    if rcode not in settings.valid_rcodes:
        raise ProbeFailed(f"rcode {rcode} is not one of {', '.join(settings.valid_rcodes)}")
    for section, rrs, validator in (
        ("answer", response.answer, settings.validate_answer_rrs),
        ("authority", response.authority, settings.validate_authority_rrs),
        ("additional", response.additional, settings.validate_additional_rrs),
    ):
        reason = validator.failure(section, rrs)
        if reason:
            raise ProbeFailed(reason)


class _Datagrams(asyncio.DatagramProtocol):
    """Delivers the first datagram carrying ``msg_id`` (others are stray or spoofed)."""

    def __init__(self, msg_id: int) -> None:
        self.msg_id = msg_id
        self.reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        ours = len(data) >= 2 and int.from_bytes(data[:2], "big") == self.msg_id
        if ours and not self.reply.done():
            self.reply.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.reply.done():
            self.reply.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.reply.done():
            self.reply.set_exception(exc or ConnectionError("socket closed"))


async def _exchange_udp(
    addr: str, port: int, query: bytes, msg_id: int, result: ProbeResult
) -> Message:
    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    try:
        transport, proto = await loop.create_datagram_endpoint(
            lambda: _Datagrams(msg_id), remote_addr=(addr, port)
        )
    except OSError as exc:
        raise ProbeFailed(f"cannot open UDP socket to {addr}:{port}: {exc}") from exc
    connected = time.perf_counter()
    result.set("probe_dns_duration_seconds", connected - start, {"phase": "connect"})
    try:
        transport.sendto(query)
        try:
            data = await proto.reply
        except OSError as exc:
            raise ProbeFailed(f"cannot query {addr}:{port}: {exc}") from exc
        finally:
            result.set(
                "probe_dns_duration_seconds", time.perf_counter() - connected, {"phase": "request"}
            )
    finally:
        transport.close()
    return _decode(data, addr, port)


async def _exchange_tcp(
    addr: str, port: int, query: bytes, msg_id: int, result: ProbeResult
) -> Message:
    start = time.perf_counter()
    try:
        reader, writer = await asyncio.open_connection(addr, port)
    except OSError as exc:
        raise ProbeFailed(f"cannot connect to {addr}:{port}: {exc}") from exc
    connected = time.perf_counter()
    result.set("probe_dns_duration_seconds", connected - start, {"phase": "connect"})
    async with closing(writer):
        try:
            writer.write(struct.pack(">H", len(query)) + query)
            await writer.drain()
            (length,) = struct.unpack(">H", await reader.readexactly(2))
            data = await reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError) as exc:
            raise ProbeFailed(f"cannot query {addr}:{port}: {exc}") from exc
        finally:
            result.set(
                "probe_dns_duration_seconds", time.perf_counter() - connected, {"phase": "request"}
            )
    response = _decode(data, addr, port)
    if response.id != msg_id:
        raise ProbeFailed(f"cannot query {addr}:{port}: response id does not match the query")
    return response


def _decode(data: bytes, addr: str, port: int) -> Message:
    try:
        return decode_message(data[:_MAX_UDP])
    except DnsFormatError as exc:
        raise ProbeFailed(f"cannot decode response of {addr}:{port}: {exc}") from exc
