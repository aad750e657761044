"""Connecting to a real nats-server over TLS and with a creds file (decentralized JWT auth).

Certificates and JWTs are made per run by tests/fixtures/natsauth.py; the
server accepting or refusing them is the oracle. The agent permission tests
are the model of agent enrolment: a host may publish its own metrics subject
and receive replies under its own inbox prefix, nothing else.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from structlog.testing import capture_logs

from shared.bus.connect import connect
from shared.config.models import NatsConfig
from shared.devenv.nats import NatsServer
from shared.errors import BusConnectError
from tests.fixtures.natsauth import (
    Account,
    CertPair,
    LocalCA,
    Operator,
    claims_id,
    decode_jwt,
    openssl,
    tls_block,
)

# A failed TLS handshake must end in BusConnectError, not a hang; a local
# handshake takes milliseconds, so this bound only catches the hang.
HANG_GUARD_S = 5.0


@pytest.fixture
def start_nats(tmp_path: Path) -> Iterator[Callable[[str], NatsServer]]:
    """Start nats-servers with extra configuration; all stopped after the test."""
    started: list[NatsServer] = []

    def start(extra_config: str) -> NatsServer:
        server = NatsServer(tmp_path / f"nats-{len(started)}", extra_config=extra_config)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()


async def assert_round_trip(nc: Client, subject: str = "vigil.test.ping") -> None:
    sub = await nc.subscribe(subject)
    await nc.publish(subject, b"ping")
    assert (await sub.next_msg(timeout=5)).data == b"ping"
    await sub.unsubscribe()


async def eventually(check: Callable[[], bool], what: str, within: float = 5.0) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not seen within {within}s")
        await asyncio.sleep(0.01)


# A refused client is sent the reason, then the connection is closed. The
# client reads the reason unless its next write or read meets the closed socket
# first (a broken pipe, or a reset that makes the kernel drop the unread
# reason); that race is TCP's, so the client's message is allowed to show it.
# The server's log says why every time.
LOST_REASON = "connection reset by peer|broken pipe"


async def assert_refused(
    server: NatsServer, cfg: NatsConfig, *, client_sees: str, server_logs: str
) -> None:
    async with asyncio.timeout(HANG_GUARD_S):
        with pytest.raises(BusConnectError) as caught:
            await connect(cfg, name="t")
    message = str(caught.value)
    assert message.startswith(f"cannot connect to NATS at {cfg.servers[0]}: "), message
    assert re.search(f"(?i){client_sees}|{LOST_REASON}", message), message
    await eventually(
        lambda: server_logs in server.log_file.read_text(encoding="utf-8", errors="replace"),
        f"{server_logs!r} in the server log",
    )


# --- TLS ---------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca: LocalCA
    server: CertPair  # 127.0.0.1 and localhost
    named_server: CertPair  # nats.vigil.test only
    client: CertPair
    foreign_client: CertPair  # signed by a CA the server does not trust


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    if openssl() is None:
        pytest.skip("no openssl command to make test certificates")
    base = tmp_path_factory.mktemp("pki")
    ca = LocalCA.create(base / "ca")
    foreign = LocalCA.create(base / "foreign", name="Foreign CA")
    return Pki(
        ca=ca,
        server=ca.issue("server", dns=["localhost"], ips=["127.0.0.1"]),
        named_server=ca.issue("named-server", dns=["nats.vigil.test"]),
        client=ca.issue("client"),
        foreign_client=foreign.issue("client"),
    )


def tls_url(server: NatsServer) -> str:
    return f"tls://127.0.0.1:{server.port}"


async def test_tls_with_the_ca_file_connects_over_a_tls_url(
    pki: Pki, start_nats: Callable[[str], NatsServer]
) -> None:
    server = start_nats(tls_block(pki.server))
    cfg = NatsConfig.model_validate(
        {"servers": [tls_url(server)], "tls": {"ca_file": pki.ca.cert_file}}
    )
    nc = await connect(cfg, name="t")
    try:
        await assert_round_trip(nc)
    finally:
        await nc.close()


async def test_mutual_tls_connects_with_a_client_certificate_the_server_trusts(
    pki: Pki, start_nats: Callable[[str], NatsServer]
) -> None:
    server = start_nats(tls_block(pki.server, client_ca=pki.ca.cert_file))
    tls = {
        "ca_file": pki.ca.cert_file,
        "cert_file": pki.client.cert_file,
        "key_file": pki.client.key_file,
    }
    nc = await connect(
        NatsConfig.model_validate({"servers": [tls_url(server)], "tls": tls}), name="t"
    )
    try:
        await assert_round_trip(nc)
    finally:
        await nc.close()


@pytest.mark.parametrize(
    ("client_cert", "client_sees", "server_logs"),
    [
        (None, "certificate required", "client didn't provide a certificate"),
        ("foreign", "unknown ca", "certificate signed by unknown authority"),
    ],
    ids=["no-certificate", "untrusted-certificate"],
)
async def test_mutual_tls_refuses_a_client_without_a_trusted_certificate(
    pki: Pki,
    start_nats: Callable[[str], NatsServer],
    client_cert: str | None,
    client_sees: str,
    server_logs: str,
) -> None:
    server = start_nats(tls_block(pki.server, client_ca=pki.ca.cert_file))
    tls: dict[str, Any] = {"ca_file": pki.ca.cert_file}
    if client_cert == "foreign":
        tls |= {"cert_file": pki.foreign_client.cert_file, "key_file": pki.foreign_client.key_file}
    cfg = NatsConfig.model_validate({"servers": [tls_url(server)], "tls": tls})
    await assert_refused(server, cfg, client_sees=client_sees, server_logs=server_logs)


async def test_tls_server_name_is_verified_instead_of_the_url_host(
    pki: Pki, start_nats: Callable[[str], NatsServer]
) -> None:
    server = start_nats(tls_block(pki.named_server))  # not valid for 127.0.0.1
    tls = {"ca_file": pki.ca.cert_file, "server_name": "nats.vigil.test"}
    nc = await connect(
        NatsConfig.model_validate({"servers": [tls_url(server)], "tls": tls}), name="t"
    )
    try:
        await assert_round_trip(nc)
    finally:
        await nc.close()


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("no-ca", "certificate verify failed: unable to get local issuer certificate"),
        ("name-mismatch", "certificate verify failed: IP address mismatch"),
    ],
    ids=["no-ca", "name-mismatch"],
)
async def test_tls_fails_saying_why_when_the_server_certificate_cannot_be_verified(
    pki: Pki, start_nats: Callable[[str], NatsServer], case: str, reason: str
) -> None:
    if case == "no-ca":  # system CAs only
        server = start_nats(tls_block(pki.server))
        cfg = NatsConfig(servers=[tls_url(server)])
    else:  # the certificate is for nats.vigil.test, the URL says 127.0.0.1
        server = start_nats(tls_block(pki.named_server))
        cfg = NatsConfig.model_validate(
            {"servers": [tls_url(server)], "tls": {"ca_file": pki.ca.cert_file}}
        )
    async with asyncio.timeout(HANG_GUARD_S):
        with pytest.raises(BusConnectError, match=rf"cannot connect to NATS at tls://.*{reason}"):
            await connect(cfg, name="t")


@pytest.mark.parametrize("field", ["ca_file", "cert_file"])
async def test_unreadable_tls_file_fails_naming_the_file(
    pki: Pki, tmp_path: Path, field: str
) -> None:
    missing = tmp_path / "missing.pem"
    tls: dict[str, Any] = {"ca_file": pki.ca.cert_file}
    if field == "ca_file":
        tls["ca_file"] = missing
    else:
        tls |= {"cert_file": missing, "key_file": pki.client.key_file}
    cfg = NatsConfig.model_validate({"servers": ["tls://127.0.0.1:1"], "tls": tls})
    with pytest.raises(BusConnectError, match=re.escape(str(missing))):
        await connect(cfg, name="t")


# --- creds file (decentralized JWT auth) --------------------------------------

# A user JWT written by the Go library (nats-io/jwt v2), from a public test
# fixture: the oracle for the JWT layout, the signature and the jti hash.
GO_USER_JWT = (
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.eyJqdGkiOiJETFRGNFpLVVdNNFRPRkVNQko0UEUzTVFF"
    "VlhIUkJJN0xZNDdZNEMzNTNMWlJKSU5CUkJRIiwiaWF0IjoxNjI0ODg1NzMwLCJpc3MiOiJBQVlKRFZMWkdXTjdZM0ZC"
    "UENWWENSVlFaREZNWUdIVTRZWExHU1hYN1UyNTRLSDVTQzNSNVFLTSIsIm5hbWUiOiJ1c2VyIiwic3ViIjoiVUQzQkdX"
    "SUJQVTNDV0w0SE9VVTRWSkVRV1RVQVNBRUc2T0ozWEhNM0VFSk5BMlBBM1VWTllUWk4iLCJuYXRzIjp7InB1YiI6e30s"
    "InN1YiI6e30sInN1YnMiOi0xLCJkYXRhIjotMSwicGF5bG9hZCI6LTEsInR5cGUiOiJ1c2VyIiwidmVyc2lvbiI6Mn19"
    ".YmFL5nRMkEOXe77sQJPPRv_vwi89tzhVVl0AVjE4sXWyoWIHiCepNw28DbpJ0p_MlT8Qf0SY2cjAhIm-Qi7lDw"
)


def test_jwt_helpers_read_a_jwt_made_by_the_go_library() -> None:
    claims = decode_jwt(GO_USER_JWT)  # checks the signature by iss
    assert claims["jti"] == claims_id(claims)
    assert claims["nats"]["type"] == "user"


def test_minted_jwts_chain_operator_to_account_to_user() -> None:
    operator = Operator()
    account = operator.account("VIGIL")
    user = account.user("web-1", pub_allow=["vigil.metrics.web-1"], sub_allow=["_INBOX_web-1.>"])
    op, acc, usr = decode_jwt(operator.jwt), decode_jwt(account.jwt), decode_jwt(user.jwt)
    assert op["iss"] == op["sub"] == operator.key.public_key
    assert op["nats"]["system_account"] == operator.system_account.key.public_key
    assert (acc["iss"], acc["sub"]) == (operator.key.public_key, account.key.public_key)
    assert (usr["iss"], usr["sub"]) == (account.key.public_key, user.key.public_key)
    assert usr["nats"]["pub"] == {"allow": ["vigil.metrics.web-1"]}
    assert usr["nats"]["sub"] == {"allow": ["_INBOX_web-1.>"]}
    for claims in (op, acc, usr):
        assert claims["jti"] == claims_id(claims)
        assert claims["nats"]["version"] == 2


@dataclass(frozen=True)
class Trusted:
    """A nats-server in operator mode and one account (with JetStream) it trusts."""

    server: NatsServer
    account: Account
    creds_dir: Path

    def creds(
        self, name: str, pub_allow: list[str] | None = None, sub_allow: list[str] | None = None
    ) -> Path:
        user = self.account.user(name, pub_allow=pub_allow, sub_allow=sub_allow)
        return user.write_creds(self.creds_dir / f"{name}.creds")

    def config(self, creds: Path, **extra: Any) -> NatsConfig:
        return NatsConfig.model_validate(
            {"servers": [self.server.url], "creds_file": creds, **extra}
        )


@pytest.fixture
def trusted(tmp_path: Path, start_nats: Callable[[str], NatsServer]) -> Trusted:
    operator = Operator()
    account = operator.account("VIGIL")
    return Trusted(start_nats(operator.server_config()), account, tmp_path / "creds")


async def test_creds_file_connects_a_user_of_a_trusted_account(trusted: Trusted) -> None:
    creds = trusted.creds("svc")
    assert creds.stat().st_mode & 0o777 == 0o600
    nc = await connect(trusted.config(creds), name="svc")
    try:
        await assert_round_trip(nc)
        info = await nc.jetstream().account_info()  # the account has JetStream
        assert info.limits.max_streams == -1
    finally:
        await nc.close()


async def test_creds_of_a_user_the_server_does_not_trust_are_refused(trusted: Trusted) -> None:
    stranger = Operator().account("VIGIL").user("svc")  # signed by another operator
    creds = stranger.write_creds(trusted.creds_dir / "stranger.creds")
    await assert_refused(
        trusted.server,
        trusted.config(creds),
        client_sees="authorization violation",
        server_logs="authentication error",
    )


def logged_errors(logs: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str(entry.get("error", "")) for entry in logs]


async def test_agent_publishes_only_its_own_metrics_subject_and_gets_replies_on_its_prefix(
    trusted: Trusted,
) -> None:
    svc = await connect(trusted.config(trusted.creds("svc")), name="svc")
    agent_creds = trusted.creds(
        "web-1", pub_allow=["vigil.metrics.web-1"], sub_allow=["_INBOX_web-1.>"]
    )
    received: list[str] = []

    async def respond(msg: Msg) -> None:
        received.append(msg.subject)
        await msg.respond(b"ack")

    try:
        await svc.subscribe("vigil.metrics.>", cb=respond)
        await svc.flush()
        with capture_logs() as logs:
            agent = await connect(
                trusted.config(agent_creds, inbox_prefix="_INBOX_web-1"), name="web-1"
            )
            try:
                await agent.publish("vigil.metrics.web-2", b"not mine")
                # Allowed, after the refused one: the server keeps a connection's order, so
                # once this is answered the refused message would have arrived first.
                reply = await agent.request("vigil.metrics.web-1", b"mine", timeout=5)
                assert reply.data == b"ack"
                assert reply.subject.startswith("_INBOX_web-1.")
                assert received == ["vigil.metrics.web-1"]
                denied = 'permissions violation for publish to "vigil.metrics.web-2"'
                await eventually(
                    lambda: any(denied in e.lower() for e in logged_errors(logs)),
                    "the publish violation reported to the agent",
                )
                assert agent.is_connected  # a violation is reported, not fatal
            finally:
                await agent.close()
    finally:
        await svc.close()


async def test_agent_without_its_inbox_prefix_may_not_subscribe_to_replies(
    trusted: Trusted,
) -> None:
    creds = trusted.creds("web-1", pub_allow=["vigil.metrics.web-1"], sub_allow=["_INBOX_web-1.>"])
    with capture_logs() as logs:
        agent = await connect(trusted.config(creds), name="web-1")  # default prefix _INBOX
        try:
            await agent.subscribe(agent.new_inbox())
            await agent.flush()
            denied = 'permissions violation for subscription to "_inbox.'
            await eventually(
                lambda: any(denied in e.lower() for e in logged_errors(logs)),
                "the subscription violation reported to the agent",
            )
        finally:
            await agent.close()
