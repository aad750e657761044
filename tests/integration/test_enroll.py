"""Agent enrolment against a real nats-server started with `vigil nats init`'s configuration.

The server is the oracle: the files written by ``vigil nats init`` are started as they
are (``nats-server -c DIR/nats-server.conf``), service credentials provision the
contract, and an enrolled agent may publish its own metrics subject with JetStream
acknowledgements coming back under its inbox prefix, and nothing else.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client

from shared.bus.connect import connect
from shared.bus.natsconf import NatsDir, ServerOptions, ServerTLS
from shared.bus.provision import provision
from shared.config.models import NatsConfig
from shared.devenv.natscli import agent_main
from shared.devenv.natscli import main as nats_main
from shared.devenv.procs import find_binary, stop_process, wait_for_port
from shared.errors import BusConnectError
from shared.wire import Names
from tests.fixtures.natsauth import LocalCA, openssl

HOST = "web-1.example.com"
OTHER = "db-1.example.com"
NAMES = Names("vigil")


@dataclass
class Server:
    """A nats-server run from a generated configuration, stopped by PID after the test."""

    setup: NatsDir
    proc: subprocess.Popen[bytes]
    port: int
    log_file: Path

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def reload(self) -> None:
        self.proc.send_signal(signal.SIGHUP)

    def log(self) -> str:
        return self.log_file.read_text(encoding="utf-8", errors="replace")


def _start(setup: NatsDir) -> Server:
    ports = setup.path / "ports"
    ports.mkdir()
    log_file = setup.path / "nats-server.log"
    with log_file.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(find_binary("nats-server")),
                "-c",
                str(setup.server_conf),
                "--ports_file_dir",
                str(ports),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    deadline = time.monotonic() + 10
    while not list(ports.glob("*.ports")):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_process(proc)
            pytest.fail(f"nats-server did not start: {log_file.read_text(errors='replace')}")
        time.sleep(0.02)
    time.sleep(0.05)  # the ports file is written in one go, but give it a moment
    urls = json.loads(next(ports.glob("*.ports")).read_text(encoding="utf-8"))["nats"]
    port = int(str(urls[0]).rsplit(":", 1)[1])
    wait_for_port("127.0.0.1", port, timeout=10, proc=proc)
    return Server(setup, proc, port, log_file)


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(tls: ServerTLS | None = None) -> Server:
        options = ServerOptions(host="127.0.0.1", port=-1, tls=tls)
        server = _start(NatsDir.init(tmp_path / f"nats-{len(started)}", options))
        started.append(server)
        return server

    yield start
    for server in started:
        stop_process(server.proc)


@pytest.fixture
async def provisioned(start_server: Callable[..., Server]) -> Server:
    """A server whose contract streams and buckets ingest's credentials created."""
    server = start_server()
    cfg = NatsConfig.model_validate(
        {"servers": [server.url], "creds_file": server.setup.service_creds("ingest")}
    )
    nc = await connect(cfg, name="ingest", wait=5)
    try:
        report = await provision(nc.jetstream(), cfg)
        assert NAMES.stream_metrics in report.created
    finally:
        await nc.close()
    return server


class Agent:
    """An enrolled agent's connection, recording the errors the server reports to it."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.nc = Client()

    async def connect(self, server: Server, host: str) -> Agent:
        enrolled = server.setup.enroll(host)

        async def on_error(exc: Exception) -> None:
            self.errors.append(str(exc).lower())

        await self.nc.connect(
            server.url,
            user_credentials=str(enrolled.creds_file),
            inbox_prefix=enrolled.inbox_prefix,
            error_cb=on_error,
            allow_reconnect=False,
            connect_timeout=5,
        )
        return self

    async def violation(self, text: str) -> None:
        deadline = time.monotonic() + 5
        while not any(text in e for e in self.errors):
            if time.monotonic() > deadline:
                pytest.fail(f"no {text!r} reported to the agent; got {self.errors}")
            await asyncio.sleep(0.01)


@pytest.fixture
async def agent(provisioned: Server) -> AsyncIterator[Agent]:
    a = await Agent().connect(provisioned, HOST)
    try:
        yield a
    finally:
        await a.nc.close()


async def _service(server: Server, name: str = "web") -> Client:
    return await nats.connect(
        server.url, user_credentials=str(server.setup.service_creds(name)), connect_timeout=5
    )


async def _stream_messages(server: Server) -> int:
    svc = await _service(server)
    try:
        info = await svc.jetstream().stream_info(NAMES.stream_metrics)
        return int(info.state.messages)
    finally:
        await svc.close()


async def test_enrolled_agent_jetstream_publish_to_its_own_subject_is_acknowledged(
    agent: Agent, provisioned: Server
) -> None:
    js = agent.nc.jetstream()
    ack = await js.publish(NAMES.metrics(HOST), b"batch-1", timeout=5)
    assert ack.stream == NAMES.stream_metrics
    # publish_async is what the agent's publisher uses: one wildcard inbox subscription
    ack = await (await js.publish_async(NAMES.metrics(HOST), b"batch-2"))
    assert ack.seq == 2
    assert await _stream_messages(provisioned) == 2
    assert agent.errors == []


async def test_enrolled_agent_may_not_publish_to_another_hosts_subject(
    agent: Agent, provisioned: Server
) -> None:
    await agent.nc.publish(NAMES.metrics(OTHER), b"forged")
    await agent.nc.flush()
    await agent.violation(f'permissions violation for publish to "{NAMES.metrics(OTHER)}"')
    # its own subject still works after the refusal, and the forged batch is not stored
    await agent.nc.jetstream().publish(NAMES.metrics(HOST), b"mine", timeout=5)
    assert await _stream_messages(provisioned) == 1
    assert agent.nc.is_connected


@pytest.mark.parametrize(
    "subject",
    ["vigil.metrics.>", "vigil.alerts.*", "_INBOX.>", "_INBOX_db-1/example/com.>", "$JS.API.>"],
)
async def test_enrolled_agent_may_not_subscribe_outside_its_inbox_prefix(
    agent: Agent, subject: str
) -> None:
    await agent.nc.subscribe(subject)
    await agent.nc.flush()
    await agent.violation(f'permissions violation for subscription to "{subject.lower()}"')


@pytest.mark.parametrize("operation", ["delete", "purge", "info", "add-consumer"])
async def test_enrolled_agent_may_not_manage_streams(
    agent: Agent, provisioned: Server, operation: str
) -> None:
    await agent.nc.jetstream().publish(NAMES.metrics(HOST), b"kept", timeout=5)
    js = agent.nc.jetstream(timeout=0.5)
    stream = NAMES.stream_metrics
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "delete": lambda: js.delete_stream(stream),
        "purge": lambda: js.purge_stream(stream),
        "info": lambda: js.stream_info(stream),
        "add-consumer": lambda: js.add_consumer(stream, durable_name="stolen"),
    }
    with pytest.raises(nats.errors.TimeoutError):  # refused by the server: no reply ever comes
        await calls[operation]()
    await agent.violation('permissions violation for publish to "$js.api.')
    assert await _stream_messages(provisioned) == 1  # still there, not purged


async def test_service_credentials_provision_and_read_what_agents_publish(
    agent: Agent, provisioned: Server
) -> None:
    svc = await _service(provisioned, "ingest")
    try:
        js = svc.jetstream()
        sub = await js.pull_subscribe(NAMES.metrics_wildcard, durable="ingest")
        await agent.nc.jetstream().publish(NAMES.metrics(HOST), b"batch", timeout=5)
        [msg] = await sub.fetch(1, timeout=5)
        assert msg.subject == NAMES.metrics(HOST)  # the host comes from the subject
        await msg.ack()
        kv = await js.key_value(NAMES.kv_agents)
        await kv.put("web-1", b"seen")
        assert (await kv.get("web-1")).value == b"seen"
    finally:
        await svc.close()


async def test_anonymous_connection_is_refused(provisioned: Server) -> None:
    cfg = NatsConfig.model_validate({"servers": [provisioned.url]})
    with pytest.raises(BusConnectError, match=r"(?i)authorization violation|reset|broken pipe"):
        await connect(cfg, name="anon")


async def test_revoked_agent_is_disconnected_and_refused_after_a_reload(
    agent: Agent, provisioned: Server
) -> None:
    await agent.nc.jetstream().publish(NAMES.metrics(HOST), b"before", timeout=5)
    public_key = provisioned.setup.revoke(HOST)
    assert not provisioned.setup.agent_creds(HOST).exists()  # renamed *.revoked
    provisioned.reload()
    deadline = time.monotonic() + 5
    while agent.nc.is_connected:
        if time.monotonic() > deadline:
            pytest.fail("the revoked agent is still connected after the reload")
        await asyncio.sleep(0.02)
    assert "Reloaded server configuration" in provisioned.log()
    # its old creds are refused; a fresh enrolment of the host works again
    revoked = provisioned.setup.agent_creds(HOST).with_name(
        provisioned.setup.agent_creds(HOST).name + ".revoked"
    )
    cfg = NatsConfig.model_validate({"servers": [provisioned.url], "creds_file": revoked})
    with pytest.raises(BusConnectError, match=r"(?i)authorization violation|reset|broken pipe"):
        await connect(cfg, name="revoked")
    assert public_key in NatsDir.load(provisioned.setup.path).revocations
    await asyncio.sleep(1.05)  # revocation covers JWTs issued up to its second
    again = await Agent().connect(provisioned, HOST)
    try:
        await again.nc.jetstream().publish(NAMES.metrics(HOST), b"after", timeout=5)
    finally:
        await again.nc.close()


# --- TLS required ------------------------------------------------------------


@pytest.fixture
def tls_server(tmp_path: Path, start_server: Callable[..., Server]) -> tuple[Server, LocalCA]:
    if openssl() is None:
        pytest.skip("no openssl command to make test certificates")
    ca = LocalCA.create(tmp_path / "ca")
    pair = ca.issue("nats", dns=["localhost"], ips=["127.0.0.1"])
    tls = ServerTLS(str(pair.cert_file), str(pair.key_file), str(ca.cert_file))
    return start_server(tls), ca


async def test_with_tls_required_a_plaintext_connection_is_refused(
    tls_server: tuple[Server, LocalCA],
) -> None:
    server, _ca = tls_server
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        info = json.loads(sock.recv(65536).decode().removeprefix("INFO ").strip())
        assert info["tls_required"] is True
        sock.sendall(b'CONNECT {"verbose":false}\r\nPING\r\n')
        sock.settimeout(5)
        try:
            answer = sock.recv(65536)
        except ConnectionResetError:
            answer = b""
    assert b"PONG" not in answer  # the server never speaks plaintext NATS: it hangs up


async def test_with_tls_required_service_credentials_connect_over_tls(
    tls_server: tuple[Server, LocalCA],
) -> None:
    server, ca = tls_server
    cfg = NatsConfig.model_validate(
        {
            "servers": [f"tls://127.0.0.1:{server.port}"],
            "creds_file": server.setup.service_creds("alerter"),
            "tls": {"ca_file": ca.cert_file},
        }
    )
    nc = await connect(cfg, name="alerter", wait=5)
    try:
        await nc.jetstream().account_info()
    finally:
        await nc.close()


@pytest.mark.parametrize("with_creds", [False, True], ids=["anonymous", "agent-creds"])
async def test_with_tls_required_a_client_without_ca_trust_or_creds_is_refused(
    tls_server: tuple[Server, LocalCA], with_creds: bool
) -> None:
    server, ca = tls_server
    settings: dict[str, object] = {"servers": [f"tls://127.0.0.1:{server.port}"]}
    if with_creds:  # valid creds, but the server certificate is not trusted: no connection
        settings["creds_file"] = server.setup.enroll(HOST).creds_file
    else:  # a trusted server certificate, but no credentials: operator mode refuses it
        settings["tls"] = {"ca_file": ca.cert_file}
    cfg = NatsConfig.model_validate(settings)
    reason = "certificate verify failed" if with_creds else "authorization violation"
    with pytest.raises(BusConnectError, match=rf"(?i){reason}|reset|broken pipe"):
        async with asyncio.timeout(10):
            await connect(cfg, name="t")


def test_cli_init_then_enroll_prints_the_agent_nats_section(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = tmp_path / "nats"
    assert nats_main(["init", "--dir", str(setup), "--listen", "0.0.0.0:4222"]) == 0
    assert nats_main(["init", "--dir", str(setup)]) == 1  # keys exist: refused without --force
    assert "holds keys already" in capsys.readouterr().err
    assert agent_main(["enroll", HOST, "--dir", str(setup), "--server", "nats://n:4222"]) == 0
    out = capsys.readouterr().out
    assert "creds_file: /etc/vigil/agent.creds" in out
    assert "inbox_prefix: '_INBOX_web-1/example/com'" in out
    assert (setup / "agents" / f"{HOST}.creds").stat().st_mode & 0o777 == 0o600
    assert agent_main(["revoke", OTHER, "--dir", str(setup)]) == 1  # never enrolled
    assert "no credentials" in capsys.readouterr().err
