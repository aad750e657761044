"""The tcp prober against a real local listener, with and without TLS."""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Iterator
from typing import Any

import pytest

from agent.collectors.probe_base import ProbeFailed, ProbeResult, ip_hash
from agent.collectors.probe_tcp import TcpSettings, probe_tcp
from agent.collectors.probe_tls import GO_ZERO_TIME, Cert
from tests.agent.collectors.test_probe_servers import Cert as CertFiles
from tests.agent.collectors.test_probe_servers import (
    HttpServers,
    http_servers,
    line_server,
    make_cert,
)
from tests.compat.node_exporter import free_port


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return make_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def servers(cert: CertFiles) -> Iterator[HttpServers]:
    with http_servers(cert) as srv:
        yield srv


@pytest.fixture(scope="module")
def lines(cert: CertFiles) -> Iterator[str]:
    with line_server(cert) as target:
        yield target


async def probe(target: str, **settings: Any) -> tuple[ProbeResult, str | None]:
    result = ProbeResult()
    try:
        await probe_tcp(target, TcpSettings.model_validate(settings), result)
    except ProbeFailed as exc:
        return result, str(exc)
    return result, None


async def test_connect_succeeds_and_reports_the_address(servers: HttpServers) -> None:
    result, reason = await probe(servers.http_hostport)
    assert reason is None
    assert result.get("probe_ip_protocol") == 4
    assert result.get("probe_ip_addr_hash") == ip_hash("127.0.0.1")
    assert result.get("probe_failed_due_to_regex") == 0
    assert "probe_ssl_earliest_cert_expiry" not in result.names()


async def test_refused_connect_fails_naming_the_target() -> None:
    port = free_port()
    _, reason = await probe(f"127.0.0.1:{port}")
    assert reason is not None
    assert reason.startswith(f"cannot connect to 127.0.0.1:{port}")


async def test_target_without_port_is_rejected() -> None:
    _, reason = await probe("127.0.0.1")
    assert reason == "cannot probe 127.0.0.1: missing port in address"


async def test_tls_reports_the_certificate(servers: HttpServers, cert: CertFiles) -> None:
    result, reason = await probe(
        servers.https_hostport, tls=True, tls_config={"insecure_skip_verify": True}
    )
    assert reason is None
    der = ssl.PEM_cert_to_DER_cert(cert.cert.read_text())
    assert result.get("probe_ssl_earliest_cert_expiry") == Cert(der).not_after
    assert result.get("probe_ssl_last_chain_expiry_timestamp_seconds") == GO_ZERO_TIME
    labels = {
        "fingerprint_sha256": hashlib.sha256(der).hexdigest(),
        "subject": "CN=localhost,O=Vigil Test",
        "issuer": "CN=localhost,O=Vigil Test",
        "subjectalternative": "localhost",
    }
    assert result.get("probe_ssl_last_chain_info", labels) == 1


async def test_tls_verification_with_ca_file_and_server_name(
    servers: HttpServers, cert: CertFiles
) -> None:
    target = "localhost:" + servers.https_hostport.rsplit(":", 1)[1]
    result, reason = await probe(
        target, tls=True, preferred_ip_protocol="ip4", tls_config={"ca_file": str(cert.cert)}
    )
    assert reason is None
    assert result.get("probe_ssl_last_chain_expiry_timestamp_seconds") != GO_ZERO_TIME
    _, reason = await probe(
        servers.https_hostport,
        tls=True,
        tls_config={"ca_file": str(cert.cert), "server_name": "other.example"},
    )
    assert reason is not None
    assert "certificate verify failed" in reason or "match" in reason


async def test_tls_against_a_plain_listener_fails(servers: HttpServers) -> None:
    _, reason = await probe(servers.http_hostport, tls=True)
    assert reason is not None
    assert reason.startswith("cannot connect to")


async def test_ipv6_literal_with_port_is_split() -> None:
    _, reason = await probe(f"[::1]:{free_port()}", preferred_ip_protocol="ip6")
    assert reason is not None
    assert "::1" in reason


async def test_query_response_expects_sends_and_expands_groups(lines: str) -> None:
    result, reason = await probe(
        lines,
        query_response=[
            {"expect": "^220 ready$", "send": "EHLO vigil"},
            {"expect": r"^250 hello (?P<who>\w+)$", "send": "ECHO ${who}-$1-$$"},
            {"expect": "^vigil-vigil-\\$$", "send": "QUIT"},
            {"expect": "^221"},
        ],
    )
    assert reason is None
    assert result.get("probe_failed_due_to_regex") == 0
    assert "probe_tls_version_info" not in result.names()


async def test_query_response_without_a_matching_line_fails_due_to_regex(lines: str) -> None:
    result, reason = await probe(lines, query_response=[{"send": "QUIT"}, {"expect": "^nope"}])
    assert reason == "query_response[1]: no line matches '^nope'"
    assert result.get("probe_failed_due_to_regex") == 1


async def test_starttls_upgrades_and_reports_the_certificate(lines: str, cert: CertFiles) -> None:
    result, reason = await probe(
        lines,
        tls_config={"ca_file": str(cert.cert), "server_name": "localhost"},
        query_response=[
            {"expect": "^220 ready", "send": "STARTTLS"},
            {"expect": "^220 go ahead", "starttls": True},
            {"send": "PING"},
            {"expect": "^PONG tls$", "send": "QUIT"},
        ],
    )
    assert reason is None
    der = ssl.PEM_cert_to_DER_cert(cert.cert.read_text())
    assert result.get("probe_ssl_earliest_cert_expiry") == Cert(der).not_after
    assert result.get("probe_ssl_last_chain_expiry_timestamp_seconds") == Cert(der).not_after


async def test_starttls_with_an_untrusted_certificate_fails(lines: str) -> None:
    _, reason = await probe(
        lines,
        query_response=[
            {"expect": "^220 ready", "send": "STARTTLS"},
            {"expect": "^220 go ahead", "starttls": True},
        ],
    )
    assert reason is not None
    assert reason.startswith("cannot talk to")
    assert "certificate verify failed" in reason


def test_query_response_rejects_a_bad_expression() -> None:
    with pytest.raises(ValueError, match="invalid regular expression"):
        TcpSettings.model_validate({"query_response": [{"expect": "("}]})
