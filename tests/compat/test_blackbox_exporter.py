"""The network collector against a real blackbox_exporter on this machine.

Debian's ``prometheus-blackbox-exporter`` (0.23 on bookworm) runs on
127.0.0.1 only, with the same modules as ours (``modules()`` is written both
into its config file and into our ``options.modules``), and probes the same
local servers: HTTP and HTTPS (a self-signed certificate made by openssl), a
line server with STARTTLS, a UDP/TCP DNS server and 127.0.0.1 by ICMP. For
every case both sides must report:

- the same metric names, except ``NOT_IMPLEMENTED`` (none today: every name
  blackbox 0.23 emits for these cases, we emit);
- the same type and help text per metric, and the same label names (ours
  also carry ``instance``, ``module`` and ``job``, which Prometheus adds to
  a scrape of blackbox);
- the same ``probe_success`` and ``probe_http_status_code``, and the same
  value for every gauge that does not measure time (``EXACT``);
- non-negative durations.

Known differences, not checked: durations themselves (two different
clients), and what blackbox sends (its User-Agent, Go's Accept-Encoding).
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from agent.collectors.base import Sample
from agent.collectors.network import create
from shared.config.models import CollectorConfig
from tests.agent.collectors.test_probe_servers import (
    Cert,
    DnsServer,
    HttpServers,
    Zone,
    a_record,
    dns_server,
    http_servers,
    line_server,
    make_cert,
    soa_record,
)
from tests.compat.node_exporter import free_port, running_node_exporter, scrape

BINARY = Path("/usr/bin/prometheus-blackbox-exporter")
MISSING_REASON = (
    "prometheus-blackbox-exporter is not installed: run deploy/local/install-oracles.sh as root "
    "(or apt-get install --no-install-recommends prometheus-blackbox-exporter)"
)
OUR_LABELS = {"instance", "module", "job"}
NOT_IMPLEMENTED: frozenset[str] = frozenset()
EXACT = frozenset(
    {
        "probe_success",
        "probe_http_status_code",
        "probe_http_content_length",
        "probe_http_uncompressed_body_length",
        "probe_http_redirects",
        "probe_http_ssl",
        "probe_http_version",
        "probe_http_last_modified_timestamp_seconds",
        "probe_failed_due_to_regex",
        "probe_ip_protocol",
        "probe_ip_addr_hash",
        "probe_ssl_earliest_cert_expiry",
        "probe_ssl_last_chain_expiry_timestamp_seconds",
        "probe_ssl_last_chain_info",
        "probe_tls_version_info",
        "probe_dns_answer_rrs",
        "probe_dns_authority_rrs",
        "probe_dns_additional_rrs",
        "probe_dns_query_succeeded",
        "probe_dns_serial",
        "probe_icmp_reply_hop_limit",
    }
)
ZONE: Zone = {
    ("www.example.test.", "A"): [
        a_record("www.example.test.", "192.0.2.10"),
        a_record("www.example.test.", "192.0.2.11"),
    ],
    ("example.test.", "SOA"): [soa_record("example.test.", 2026112401)],
}


def modules(cert: Cert) -> dict[str, dict[str, Any]]:
    """The modules both sides run, in blackbox.yml's syntax."""
    dns = {"query_name": "www.example.test", "query_type": "A", "preferred_ip_protocol": "ip4"}
    out: dict[str, dict[str, Any]] = {
        "http_2xx": {"prober": "http"},
        "http_no_follow": {"prober": "http", "http": {"follow_redirects": False}},
        "http_insecure": {"prober": "http", "http": {"tls_config": {"insecure_skip_verify": True}}},
        "http_ca": {"prober": "http", "http": {"tls_config": {"ca_file": str(cert.cert)}}},
        "http_post": {
            "prober": "http",
            "http": {
                "method": "POST",
                "body": "payload-1",
                "headers": {"X-Probe": "yes"},
                "valid_status_codes": [200],
                "fail_if_body_not_matches_regexp": ['"method": "POST"', '"body": "payload-1"'],
            },
        },
        "http_body_fail": {"prober": "http", "http": {"fail_if_body_matches_regexp": ["hel+o"]}},
        "http_header": {
            "prober": "http",
            "http": {"fail_if_header_not_matches": [{"header": "X-Text", "regexp": "^ab"}]},
        },
        "http_need_ssl": {"prober": "http", "http": {"fail_if_not_ssl": True}},
        "tcp_connect": {"prober": "tcp"},
        "tcp_tls": {
            "prober": "tcp",
            "tcp": {"tls": True, "tls_config": {"insecure_skip_verify": True}},
        },
        "tcp_dialogue": {
            "prober": "tcp",
            "tcp": {
                "query_response": [
                    {"expect": "^220 ready$", "send": "EHLO vigil"},
                    {"expect": r"^250 hello (?P<who>\w+)$", "send": "ECHO ${who}-$1"},
                    {"expect": "^vigil-vigil$", "send": "QUIT"},
                    {"expect": "^221"},
                ]
            },
        },
        "tcp_no_match": {
            "prober": "tcp",
            "tcp": {"query_response": [{"send": "QUIT"}, {"expect": "^nope"}]},
        },
        "tcp_starttls": {
            "prober": "tcp",
            "tcp": {
                "tls_config": {"insecure_skip_verify": True},
                "query_response": [
                    {"expect": "^220 ready", "send": "STARTTLS"},
                    {"expect": "^220 go ahead", "starttls": True},
                    {"send": "PING"},
                    {"expect": "^PONG tls$", "send": "QUIT"},
                ],
            },
        },
        "dns_a": {"prober": "dns", "dns": dns},
        "dns_a_tcp": {"prober": "dns", "dns": {**dns, "transport_protocol": "tcp"}},
        "dns_nx": {"prober": "dns", "dns": {**dns, "query_name": "nope.example.test"}},
        "dns_soa": {
            "prober": "dns",
            "dns": {
                **dns,
                "query_name": "example.test",
                "query_type": "SOA",
                "validate_answer_rrs": {"fail_if_not_matches_regexp": ["\tSOA\t"]},
            },
        },
        "icmp": {"prober": "icmp", "icmp": {"preferred_ip_protocol": "ip4"}},
    }
    for module in out.values():
        module["timeout"] = "5s"
    return out


def cases(http: HttpServers, dns: DnsServer, lines: str, refused: int) -> list[tuple[str, str]]:
    """(module, target) pairs probed by both sides."""
    assert http.https is not None
    return [
        ("http_2xx", http.http + "/ok"),
        ("http_2xx", http.http_hostport + "/ok"),
        ("http_2xx", http.http + "/status/404"),
        ("http_2xx", http.http + "/redirect/2"),
        ("http_2xx", http.http + "/chunked"),
        ("http_2xx", http.https + "/ok"),  # untrusted certificate
        ("http_2xx", f"http://127.0.0.1:{refused}/"),
        ("http_no_follow", http.http + "/redirect/2"),
        ("http_insecure", http.https + "/ok"),
        ("http_insecure", http.https + "/redirect/1"),
        ("http_ca", http.https + "/ok"),
        ("http_ca", http.https.replace("127.0.0.1", "localhost") + "/ok"),  # by name, SNI
        ("http_2xx", http.http.replace("127.0.0.1", "localhost") + "/redirect/1"),
        ("http_post", http.http + "/echo"),
        ("http_body_fail", http.http + "/ok"),
        ("http_header", http.http + "/text?t=abc"),
        ("http_header", http.http + "/text?t=xyz"),
        ("http_need_ssl", http.http + "/ok"),
        ("tcp_connect", http.http_hostport),
        ("tcp_connect", f"127.0.0.1:{refused}"),
        ("tcp_tls", http.https_hostport),
        ("tcp_dialogue", lines),
        ("tcp_no_match", lines),
        ("tcp_starttls", lines),
        ("dns_a", dns.target),
        ("dns_a_tcp", dns.target),
        ("dns_nx", dns.target),
        ("dns_soa", dns.target),
        ("icmp", "127.0.0.1"),
    ]


Series = dict[tuple[tuple[str, str], ...], float]


Described = dict[str, tuple[str, str]]
"""Metric name -> (type, help)."""


@dataclass
class Case:
    module: str
    target: str
    theirs: dict[str, Series]
    ours: dict[str, Series]
    their_meta: Described
    our_meta: Described


def parse_exposition(text: str) -> tuple[dict[str, Series], Described]:
    out: dict[str, Series] = {}
    meta: Described = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
            meta[s.name] = (fam.type, fam.documentation)
    return out, meta


def from_samples(samples: list[Sample]) -> tuple[dict[str, Series], Described]:
    out: dict[str, Series] = {}
    meta: Described = {}
    for s in samples:
        labels = tuple(sorted((k, v) for k, v in s.labels.items() if k not in OUR_LABELS))
        out.setdefault(s.name, {})[labels] = s.value
        meta[s.name] = (s.type or "unknown", s.help or "")
    return out, meta


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Case]]:
    if not BINARY.exists():
        pytest.skip(MISSING_REASON)
    tmp = tmp_path_factory.mktemp("blackbox")
    cert = make_cert(tmp)
    mods = modules(cert)
    config_file = tmp / "blackbox.yml"
    config_file.write_text(yaml.safe_dump({"modules": mods}), encoding="utf-8")
    with (
        http_servers(cert) as http,
        dns_server(ZONE) as dns,
        line_server(cert) as lines,
        running_node_exporter(str(BINARY), [f"--config.file={config_file}"]) as bb,
    ):
        pairs = cases(http, dns, lines, free_port())
        collector = create(
            CollectorConfig.model_validate(
                {
                    "type": "network",
                    "name": "blackbox",
                    "options": {
                        "modules": mods,
                        "probes": [{"target": t, "module": m} for m, t in pairs],
                    },
                }
            )
        )
        samples = asyncio.run(collector.collect())
        ours: dict[tuple[str, str], list[Sample]] = {}
        for s in samples:
            ours.setdefault((s.labels["module"], s.labels["instance"]), []).append(s)
        base = bb.url.removesuffix("/metrics")
        out = []
        for module, target in pairs:
            query = urllib.parse.urlencode({"module": module, "target": target})
            theirs, their_meta = parse_exposition(scrape(f"{base}/probe?{query}"))
            mine, my_meta = from_samples(ours[(module, target)])
            out.append(Case(module, target, theirs, mine, their_meta, my_meta))
        yield out


def ids(case: Case) -> str:
    return f"{case.module}:{case.target}"


def test_cases_cover_success_and_failure_of_every_prober(compared: list[Case]) -> None:
    outcomes = {(c.module.split("_")[0], c.theirs["probe_success"][()]) for c in compared}
    for prober in ("http", "tcp", "dns"):
        assert (prober, 1.0) in outcomes, prober
        assert (prober, 0.0) in outcomes, prober


def test_same_metric_names(compared: list[Case]) -> None:
    for c in compared:
        theirs = set(c.theirs) - NOT_IMPLEMENTED
        assert set(c.ours) == theirs, (ids(c), set(c.ours) ^ theirs)


def test_same_types_and_help_texts(compared: list[Case]) -> None:
    for c in compared:
        for name, meta in c.our_meta.items():
            assert meta == c.their_meta[name], (ids(c), name)


def test_same_label_names(compared: list[Case]) -> None:
    for c in compared:
        for name, series in c.ours.items():
            ours = {tuple(k for k, _ in key) for key in series}
            theirs = {tuple(k for k, _ in key) for key in c.theirs[name]}
            assert ours == theirs, (ids(c), name)


def test_same_success_status_and_exact_values(compared: list[Case]) -> None:
    for c in compared:
        for name in EXACT & set(c.ours):
            assert c.ours[name] == c.theirs[name], (ids(c), name)


def test_durations_are_non_negative(compared: list[Case]) -> None:
    for c in compared:
        for name, series in c.ours.items():
            if "duration" in name or "lookup_time" in name:
                assert all(v >= 0 for v in series.values()), (ids(c), name)
