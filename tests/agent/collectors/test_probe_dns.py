"""The dns prober against a tiny real DNS server on 127.0.0.1 (UDP and TCP), and its codec."""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.collectors.probe_base import ProbeFailed, ProbeResult
from agent.collectors.probe_dns import DnsSettings, probe_dns
from agent.collectors.probe_dnswire import (
    TYPES,
    DnsFormatError,
    Message,
    Question,
    Record,
    decode_message,
    encode_message,
    encode_name,
    encode_query,
)
from tests.agent.collectors.test_probe_servers import (
    DnsServer,
    Zone,
    a_record,
    dns_server,
    soa_record,
)
from tests.compat.node_exporter import free_port

ZONE: Zone = {
    ("www.example.test.", "A"): [
        a_record("www.example.test.", "192.0.2.10"),
        a_record("www.example.test.", "192.0.2.11"),
    ],
    ("example.test.", "SOA"): [soa_record("example.test.", 2026112401)],
}


@pytest.fixture(scope="module")
def server() -> Iterator[DnsServer]:
    with dns_server(ZONE) as srv:
        yield srv


async def probe(target: str, **settings: Any) -> tuple[ProbeResult, str | None]:
    result = ProbeResult()
    try:
        await probe_dns(target, DnsSettings.model_validate(settings), result)
    except ProbeFailed as exc:
        return result, str(exc)
    return result, None


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_a_query_counts_answers_and_reports_phases(server: DnsServer, transport: str) -> None:
    result, reason = await probe(
        server.target, query_name="www.example.test", query_type="A", transport_protocol=transport
    )
    assert reason is None
    assert result.get("probe_dns_query_succeeded") == 1
    assert result.get("probe_dns_answer_rrs") == 2
    assert result.get("probe_dns_authority_rrs") == 0
    assert result.get("probe_dns_additional_rrs") == 0
    for phase in ("resolve", "connect", "request"):
        value = result.get("probe_dns_duration_seconds", {"phase": phase})
        assert value is not None
        assert value >= 0
    assert "probe_dns_serial" not in result.names()


async def test_query_carries_name_type_class_and_rd(server: DnsServer) -> None:
    await probe(
        server.target, query_name="www.example.test", query_type="A", recursion_desired=False
    )
    msg = decode_message(server.queries[-1])
    assert msg.questions == [Question("www.example.test.", TYPES["A"], 1)]
    assert not msg.flags & 0x0100


async def test_nxdomain_fails_unless_valid(server: DnsServer) -> None:
    result, reason = await probe(server.target, query_name="nope.example.test", query_type="A")
    assert reason == "rcode NXDOMAIN is not one of NOERROR"
    assert result.get("probe_dns_query_succeeded") == 1
    _, reason = await probe(
        server.target, query_name="nope.example.test", query_type="A", valid_rcodes=["nxdomain"]
    )
    assert reason is None


async def test_answer_validation_matches_records_as_miekg_prints_them(server: DnsServer) -> None:
    ok = {"fail_if_not_matches_regexp": [r"www\.example\.test\.\t300\tIN\tA\t192\.0\.2\.1[01]"]}
    _, reason = await probe(
        server.target, query_name="www.example.test", query_type="A", validate_answer_rrs=ok
    )
    assert reason is None
    bad = {"fail_if_matches_regexp": [r"192\.0\.2\.11$"]}
    _, reason = await probe(
        server.target, query_name="www.example.test", query_type="A", validate_answer_rrs=bad
    )
    assert reason is not None
    assert "matches" in reason
    none = {"fail_if_none_matches_regexp": ["10\\.0\\.0\\.1"]}
    _, reason = await probe(
        server.target, query_name="www.example.test", query_type="A", validate_answer_rrs=none
    )
    assert reason is not None
    all_match = {"fail_if_all_match_regexp": ["192\\.0\\.2\\."]}
    _, reason = await probe(
        server.target, query_name="www.example.test", query_type="A", validate_answer_rrs=all_match
    )
    assert reason is not None
    empty = {"fail_if_not_matches_regexp": ["."]}
    _, reason = await probe(
        server.target, query_name="example.test", query_type="A", validate_authority_rrs=empty
    )
    assert reason == "no authority records to match"


async def test_soa_query_reports_the_serial(server: DnsServer) -> None:
    result, reason = await probe(server.target, query_name="example.test", query_type="SOA")
    assert reason is None
    assert result.get("probe_dns_serial") == 2026112401


async def test_silent_server_leaves_query_unsucceeded() -> None:
    # Nothing listens on this UDP port: the kernel's port-unreachable fails the query.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
    result, reason = await probe(f"127.0.0.1:{port}", query_name="x.test", query_type="A")
    assert reason is not None
    assert reason.startswith(f"cannot query 127.0.0.1:{port}")
    assert result.get("probe_dns_query_succeeded") == 0


async def test_tcp_refused_fails_naming_the_server() -> None:
    port = free_port()
    _, reason = await probe(f"127.0.0.1:{port}", transport_protocol="tcp", query_name="x.test")
    assert reason is not None
    assert reason.startswith(f"cannot connect to 127.0.0.1:{port}")


def test_settings_reject_unknown_types_classes_rcodes_and_dot() -> None:
    with pytest.raises(ValueError, match="unknown query type"):
        DnsSettings.model_validate({"query_type": "BOGUS"})
    with pytest.raises(ValueError, match="unknown query class"):
        DnsSettings.model_validate({"query_class": "XX"})
    with pytest.raises(ValueError, match="unknown rcode"):
        DnsSettings.model_validate({"valid_rcodes": ["FINE"]})
    with pytest.raises(ValueError, match="dns_over_tls"):
        DnsSettings.model_validate({"dns_over_tls": True})
    assert DnsSettings.model_validate({"query_type": "aaaa"}).query_type == "AAAA"


# ---------------------------------------------------------------------- codec


def test_records_print_as_miekg_does() -> None:
    mx = struct.pack(">H", 10) + encode_name("mail.example.test")
    txt = b'\x05hello\x0bwith "quote'
    soa = soa_record("example.test.", 7).rdata
    srv = struct.pack(">HHH", 1, 2, 5060) + encode_name("sip.example.test")
    aaaa = socket.inet_pton(socket.AF_INET6, "2001:db8::1")
    cases = [
        (TYPES["MX"], mx, "10 mail.example.test."),
        (TYPES["TXT"], txt, '"hello" "with \\"quote"'),
        (TYPES["SOA"], soa, "ns.example.test. hostmaster.example.test. 7 3600 600 86400 60"),
        (TYPES["SRV"], srv, "1 2 5060 sip.example.test."),
        (TYPES["AAAA"], aaaa, "2001:db8::1"),
        (TYPES["CNAME"], encode_name("x.test"), "x.test."),
        (99, b"\x01\x02", "\\# 2 0102"),
    ]
    for rtype, rdata, text in cases:
        msg = Message(1, 0x8180, [], [Record("example.test.", rtype, 1, 60, rdata)])
        (rr,) = decode_message(encode_message(msg)).answer
        type_name = next((k for k, v in TYPES.items() if v == rtype), f"TYPE{rtype}")
        assert rr.text == f"example.test.\t60\tIN\t{type_name}\t{text}"


def test_query_encoding_matches_the_wire_format() -> None:
    data = encode_query(0x0102, "a.bc", TYPES["AAAA"], recursion_desired=True)
    assert (
        data == b"\x01\x02\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\x02bc\x00\x00\x1c\x00\x01"
    )
    assert encode_name(".") == b"\x00"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x01", "shorter than its header"),
        (b"\x00\x01\x81\x80\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c", "compression pointer loop"),
        (b"\x00\x01\x81\x80\x00\x01\x00\x00\x00\x00\x00\x00\x05ab", "label runs past"),
        (b"\x00\x01\x81\x80\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01\x00\x01", "truncated"),
    ],
)
def test_malformed_messages_raise_format_errors(data: bytes, message: str) -> None:
    with pytest.raises(DnsFormatError, match=message):
        decode_message(data)


def test_over_long_labels_are_rejected() -> None:
    with pytest.raises(ValueError, match="over-long label"):
        encode_name("a" * 64 + ".test")
    with pytest.raises(ValueError, match="longer than 255"):
        encode_name(".".join(["a" * 60] * 5))


@given(st.binary(max_size=300))
def test_decoder_never_fails_other_than_with_a_format_error(data: bytes) -> None:
    with contextlib.suppress(DnsFormatError):
        decode_message(data)
