"""The http prober against real local HTTP and HTTPS servers (127.0.0.1, port 0)."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.collectors.probe_base import ProbeFailed, ProbeResult, ip_hash
from agent.collectors.probe_http import HttpSettings, probe_http
from agent.collectors.probe_httpwire import build_request, read_response
from agent.collectors.probe_tls import GO_ZERO_TIME, Cert
from tests.agent.collectors.test_probe_servers import (
    BODY,
    LAST_MODIFIED_UNIX,
    HttpServers,
    http_servers,
    make_cert,
)
from tests.agent.collectors.test_probe_servers import Cert as CertFiles
from tests.compat.node_exporter import free_port

PHASES = {"resolve", "connect", "tls", "processing", "transfer"}


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return make_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def servers(cert: CertFiles) -> Iterator[HttpServers]:
    with http_servers(cert) as srv:
        yield srv


async def probe(target: str, **settings: Any) -> tuple[ProbeResult, str | None]:
    result = ProbeResult()
    try:
        await probe_http(target, HttpSettings.model_validate(settings), result)
    except ProbeFailed as exc:
        return result, str(exc)
    return result, None


def phases(result: ProbeResult) -> dict[str, float]:
    out = {}
    for phase in PHASES:
        value = result.get("probe_http_duration_seconds", {"phase": phase})
        assert value is not None, phase
        out[phase] = value
    return out


def leaf_der(cert: CertFiles) -> bytes:
    return ssl.PEM_cert_to_DER_cert(cert.cert.read_text())


async def test_ok_page_reports_status_lengths_version_and_every_phase(
    servers: HttpServers,
) -> None:
    result, reason = await probe(servers.http + "/ok")
    assert reason is None
    assert result.get("probe_http_status_code") == 200
    assert result.get("probe_http_content_length") == len(BODY)
    assert result.get("probe_http_uncompressed_body_length") == len(BODY)
    assert result.get("probe_http_version") == 1.1
    assert result.get("probe_http_ssl") == 0
    assert result.get("probe_http_redirects") == 0
    assert result.get("probe_failed_due_to_regex") == 0
    assert result.get("probe_http_last_modified_timestamp_seconds") == LAST_MODIFIED_UNIX
    assert result.get("probe_ip_protocol") == 4
    assert result.get("probe_ip_addr_hash") == ip_hash("127.0.0.1")
    assert all(v >= 0 for v in phases(result).values())
    assert "probe_ssl_earliest_cert_expiry" not in result.names()


async def test_target_without_scheme_is_http(servers: HttpServers) -> None:
    result, reason = await probe(servers.http_hostport + "/ok")
    assert reason is None
    assert result.get("probe_http_status_code") == 200


async def test_non_2xx_fails_unless_listed_in_valid_status_codes(servers: HttpServers) -> None:
    result, reason = await probe(servers.http + "/status/404")
    assert reason == "status code 404 is not 2xx"
    assert result.get("probe_http_status_code") == 404
    _, reason = await probe(servers.http + "/status/404", valid_status_codes=[404])
    assert reason is None
    _, reason = await probe(servers.http + "/ok", valid_status_codes=[404])
    assert reason is not None
    assert "200 is not one of [404]" in reason


async def test_redirects_are_followed_and_counted(servers: HttpServers) -> None:
    result, reason = await probe(servers.http + "/redirect/3")
    assert reason is None
    assert result.get("probe_http_redirects") == 3
    assert result.get("probe_http_status_code") == 200
    assert result.get("probe_http_content_length") == len(BODY)


async def test_no_follow_redirects_reports_the_redirect_itself(servers: HttpServers) -> None:
    result, reason = await probe(servers.http + "/redirect/3", no_follow_redirects=True)
    assert result.get("probe_http_status_code") == 302
    assert result.get("probe_http_redirects") == 1  # as blackbox: the refused one counts
    assert reason == "status code 302 is not 2xx"
    _, reason = await probe(
        servers.http + "/redirect/1", follow_redirects=False, valid_status_codes=[302]
    )
    assert reason is None


async def test_chunked_body_has_no_content_length_and_is_measured(servers: HttpServers) -> None:
    result, reason = await probe(servers.http + "/chunked")
    assert reason is None
    assert result.get("probe_http_content_length") == -1
    assert result.get("probe_http_uncompressed_body_length") == len(b"hello chunked world")


async def test_gzip_compression_measures_the_decoded_body(servers: HttpServers) -> None:
    result, reason = await probe(servers.http + "/gzip", compression="gzip")
    assert reason is None
    compressed = result.get("probe_http_content_length")
    assert compressed is not None
    assert 0 < compressed < len(BODY) * 10
    assert result.get("probe_http_uncompressed_body_length") == len(BODY) * 10


async def test_method_headers_and_body_are_sent(servers: HttpServers) -> None:
    result, reason = await probe(
        servers.http + "/echo",
        method="post",
        headers={"X-Probe": "yes", "content-type": "text/plain"},
        body="payload-123",
        fail_if_body_not_matches_regexp=[
            '"method": "POST"',
            '"X-Probe": "yes"',
            '"Content-Type": "text/plain"',
            '"body": "payload-123"',
        ],
    )
    assert reason is None
    assert result.get("probe_failed_due_to_regex") == 0


async def test_host_header_overrides_the_targets_host(servers: HttpServers) -> None:
    _, reason = await probe(
        servers.http + "/echo",
        headers={"Host": "example.test"},
        fail_if_body_not_matches_regexp=['"Host": "example.test"'],
    )
    assert reason is None


async def test_credentials_in_the_url_are_basic_auth_and_never_in_messages(
    servers: HttpServers,
) -> None:
    url = servers.http.replace("http://", "http://user:p%40ss@") + "/echo"
    _, reason = await probe(
        url,
        fail_if_body_not_matches_regexp=['"Authorization": "Basic dXNlcjpwQHNz"', '"Host": "127'],
    )
    assert reason is None
    _, reason = await probe(f"http://user:secret@127.0.0.1:{free_port()}/")
    assert reason is not None
    assert "secret" not in reason


async def test_head_reads_no_body(servers: HttpServers) -> None:
    result, reason = await probe(servers.http + "/ok", method="HEAD")
    assert reason is None
    assert result.get("probe_http_content_length") == len(BODY)
    assert result.get("probe_http_uncompressed_body_length") == 0


async def test_body_regex_failure_sets_failed_due_to_regex(servers: HttpServers) -> None:
    result, reason = await probe(servers.http + "/ok", fail_if_body_matches_regexp=["hel+o"])
    assert reason == "body matches 'hel+o'"
    assert result.get("probe_failed_due_to_regex") == 1


async def test_header_regexes_and_allow_missing(servers: HttpServers) -> None:
    url = servers.http + "/text?t=abc"
    _, reason = await probe(
        url,
        fail_if_header_not_matches=[{"header": "x-text", "regexp": "^ab"}],
        fail_if_header_matches=[{"header": "X-Missing", "regexp": ".", "allow_missing": True}],
    )
    assert reason is None
    result, reason = await probe(url, fail_if_header_matches=[{"header": "X-Text", "regexp": "b"}])
    assert reason == "header X-Text matches 'b'"
    assert result.get("probe_failed_due_to_regex") == 1
    _, reason = await probe(
        url, fail_if_header_not_matches=[{"header": "X-Missing", "regexp": "."}]
    )
    assert reason == "header X-Missing is missing"


async def test_valid_http_versions(servers: HttpServers) -> None:
    _, reason = await probe(servers.http + "/ok", valid_http_versions=["HTTP/1.1"])
    assert reason is None
    _, reason = await probe(servers.http + "/ok", valid_http_versions=["HTTP/2.0"])
    assert reason is not None
    assert "HTTP/1.1 is not one of" in reason


async def test_https_insecure_reports_certificate_and_tls_version(
    servers: HttpServers, cert: CertFiles
) -> None:
    assert servers.https is not None
    result, reason = await probe(servers.https + "/ok", tls_config={"insecure_skip_verify": True})
    assert reason is None
    der = leaf_der(cert)
    parsed = Cert(der)
    assert result.get("probe_http_ssl") == 1
    assert result.get("probe_ssl_earliest_cert_expiry") == parsed.not_after
    assert result.get("probe_ssl_last_chain_expiry_timestamp_seconds") == GO_ZERO_TIME
    info = {
        "fingerprint_sha256": hashlib.sha256(der).hexdigest(),
        "subject": "CN=localhost,O=Vigil Test",
        "issuer": "CN=localhost,O=Vigil Test",
        "subjectalternative": "localhost",
    }
    assert result.get("probe_ssl_last_chain_info", info) == 1
    versions = [
        v for v in ("TLS 1.2", "TLS 1.3") if result.get("probe_tls_version_info", {"version": v})
    ]
    assert len(versions) == 1
    assert phases(result)["tls"] >= 0


async def test_certificate_expiry_matches_openssls_reading(cert: CertFiles) -> None:
    decoded: dict[str, Any] = ssl._ssl._test_decode_cert(str(cert.cert))  # type: ignore[attr-defined]
    assert Cert(leaf_der(cert)).not_after == ssl.cert_time_to_seconds(decoded["notAfter"])


async def test_https_verified_with_ca_file_reports_the_verified_chain(
    servers: HttpServers, cert: CertFiles
) -> None:
    assert servers.https is not None
    result, reason = await probe(servers.https + "/ok", tls_config={"ca_file": str(cert.cert)})
    assert reason is None
    expiry = Cert(leaf_der(cert)).not_after
    assert result.get("probe_ssl_last_chain_expiry_timestamp_seconds") == expiry


async def test_https_with_an_untrusted_certificate_fails_at_tls(servers: HttpServers) -> None:
    assert servers.https is not None
    result, reason = await probe(servers.https + "/ok")
    assert reason is not None
    assert "cannot complete TLS handshake" in reason
    assert "certificate verify failed" in reason
    assert result.get("probe_http_status_code") == 0
    assert phases(result)["processing"] == 0


async def test_fail_if_ssl_and_fail_if_not_ssl(servers: HttpServers) -> None:
    assert servers.https is not None
    _, reason = await probe(servers.http + "/ok", fail_if_not_ssl=True)
    assert reason == "TLS not used (fail_if_not_ssl)"
    _, reason = await probe(
        servers.https + "/ok", fail_if_ssl=True, tls_config={"insecure_skip_verify": True}
    )
    assert reason == "TLS used (fail_if_ssl)"


async def test_refused_connection_fails_with_zero_status() -> None:
    result, reason = await probe(f"http://127.0.0.1:{free_port()}/")
    assert reason is not None
    assert reason.startswith("cannot connect to 127.0.0.1:")
    assert result.get("probe_http_status_code") == 0


async def test_unresolvable_host_fails_naming_it() -> None:
    result, reason = await probe("http://no-such-host.invalid/")
    assert reason is not None
    assert reason.startswith("cannot resolve no-such-host.invalid")
    assert result.get("probe_dns_lookup_time_seconds") is not None


def test_bad_settings_are_rejected_naming_the_field() -> None:
    with pytest.raises(ValueError, match="invalid regular expression"):
        HttpSettings.model_validate({"fail_if_body_matches_regexp": ["("]})
    with pytest.raises(ValueError, match="invalid HTTP method"):
        HttpSettings.model_validate({"method": "GET /x"})
    with pytest.raises(ValueError, match="line break"):
        HttpSettings.model_validate({"headers": {"X": "a\r\nInjected: 1"}})
    with pytest.raises(ValueError, match="proxy_url"):
        HttpSettings.model_validate({"proxy_url": "http://proxy"})
    assert HttpSettings.model_validate({"ip_protocol": "ip4"}).preferred_ip_protocol == "ip4"


def test_cert_reader_reads_a_file_written_by_openssl(tmp_path: Path) -> None:
    files = make_cert(tmp_path)
    parsed = Cert(leaf_der(files))
    assert parsed.subject == "CN=localhost,O=Vigil Test"
    assert parsed.dns_names == ["localhost"]


# ---------------------------------------------------------------------- HTTP/1.1 framing


def feed(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


def test_request_keeps_framing_headers_ours() -> None:
    raw = build_request(
        "POST",
        "http://h.test:8080/p?q=1",
        "abc",
        {"content-length": "999", "x-a": "b", "connection": "keep-alive"},
        user_agent="ua",
    )
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /p?q=1 HTTP/1.1"
    assert set(lines[1:]) == {
        "Host: h.test:8080",
        "User-Agent: ua",
        "X-A: b",
        "Content-Length: 3",
        "Connection: close",
    }
    assert body == b"abc"


async def test_interim_responses_are_skipped_and_trailers_read() -> None:
    data = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3;ext=1\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    resp = await read_response(feed(data), "GET", keep_body=True, decode="", limit=0)
    assert (resp.status, resp.body, resp.content_length) == (200, b"abc", -1)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "connection closed before a status line"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "malformed status line"),
        (b"HTTP/1.1 abc OK\r\n\r\n", "malformed status line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", "bad Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "body shorter than Content-Length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789", "body larger than 4 bytes"),
    ],
)
async def test_malformed_responses_fail_naming_what(data: bytes, message: str) -> None:
    with pytest.raises(ProbeFailed, match=message):
        await read_response(feed(data), "GET", keep_body=False, decode="", limit=4)
