"""NATS helpers against a real nats-server: connecting with each auth method, provisioning."""

from __future__ import annotations

from pathlib import Path

import nats
import pytest
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType

from shared.bus.connect import connect
from shared.bus.provision import contract_buckets, contract_streams, provision
from shared.config.models import NatsConfig
from shared.devenv.nats import NatsServer
from shared.errors import BusConnectError
from shared.wire import Names


async def test_provision_creates_every_stream_and_bucket_of_the_contract(nats_url: str) -> None:
    cfg = NatsConfig(servers=[nats_url])
    nc = await connect(cfg, name="test")
    try:
        js = nc.jetstream()
        report = await provision(js, cfg)
        names = Names("vigil")
        assert set(report.created) == {
            "VIGIL_METRICS",
            "VIGIL_ALERTS",
            "VIGIL_NOTIFICATIONS",
            "VIGIL_SILENCES",
            "vigil_silences",
            "vigil_alert_state",
            "vigil_agents",
            "vigil_nflog",
        }
        metrics = (await js.stream_info("VIGIL_METRICS")).config
        assert metrics.subjects == ["vigil.metrics.*"]
        assert metrics.retention == RetentionPolicy.LIMITS
        assert metrics.storage == StorageType.FILE
        assert metrics.discard == DiscardPolicy.OLD
        assert metrics.max_age == pytest.approx(86400)
        # a publish to a host's subject lands in the metrics stream
        ack = await js.publish(names.metrics("web-1.example.com"), b"x")
        assert ack.stream == "VIGIL_METRICS"
        kv = await js.key_value(names.kv_nflog)
        assert (await kv.status()).ttl == pytest.approx(120 * 3600)
    finally:
        await nc.close()


async def test_provision_is_idempotent_and_applies_changed_limits(nats_url: str) -> None:
    cfg = NatsConfig(servers=[nats_url])
    nc = await connect(cfg, name="test")
    try:
        js = nc.jetstream()
        await provision(js, cfg)
        again = await provision(js, cfg)
        assert again.created == []
        assert again.updated == []
        assert len(again.unchanged) == 8
        changed = NatsConfig.model_validate(
            {
                "servers": [nats_url],
                "kv_history": 10,
                "streams": {"metrics": {"max_age": "2h", "max_bytes": 1 << 20}},
            }
        )
        report = await provision(js, changed)
        assert set(report.updated) == {
            "VIGIL_METRICS",
            "vigil_silences",
            "vigil_alert_state",
            "vigil_agents",
            "vigil_nflog",
        }
        info = (await js.stream_info("VIGIL_METRICS")).config
        assert info.max_age == pytest.approx(7200)
        assert info.max_bytes == 1 << 20
    finally:
        await nc.close()


async def test_prefix_keeps_tenants_apart(nats_url: str) -> None:
    a, b = (
        NatsConfig(servers=[nats_url], prefix="teama"),
        NatsConfig(servers=[nats_url], prefix="teamb"),
    )
    nc = await connect(a, name="test")
    try:
        js = nc.jetstream()
        await provision(js, a)
        await provision(js, b)
        assert {s.name for s in contract_streams(a)}.isdisjoint(
            {s.name for s in contract_streams(b)}
        )
        assert {s.name for s in contract_buckets(a)}.isdisjoint(
            {s.name for s in contract_buckets(b)}
        )
        ack = await js.publish(Names("teamb").metrics("h"), b"x")
        assert ack.stream == "TEAMB_METRICS"
    finally:
        await nc.close()


def auth_server(tmp_path: Path, auth: str) -> NatsServer:
    server = NatsServer(tmp_path / "authnats", extra_config=auth)
    server.start()
    return server


async def test_connect_with_user_password_and_reject_wrong_password(tmp_path: Path) -> None:
    server = auth_server(tmp_path, 'authorization { user: svc, password: "s3cret" }')
    try:
        nc = await connect(
            NatsConfig(servers=[server.url], user="svc", password="s3cret"), name="t"
        )  # type: ignore[arg-type]
        assert nc.is_connected
        await nc.close()
        with pytest.raises(BusConnectError, match="cannot connect to NATS"):
            await connect(NatsConfig(servers=[server.url], user="svc", password="nope"), name="t")  # type: ignore[arg-type]
    finally:
        server.stop()


async def test_connect_with_token(tmp_path: Path) -> None:
    server = auth_server(tmp_path, 'authorization { token: "tok3n" }')
    try:
        nc = await connect(NatsConfig(servers=[server.url], token="tok3n"), name="t")  # type: ignore[arg-type]
        assert nc.is_connected
        await nc.close()
    finally:
        server.stop()


async def test_connect_with_nkey_seed_file(tmp_path: Path) -> None:
    import nkeys

    seed = nkeys.from_seed(_user_seed())
    public = seed.public_key.decode()
    seed_file = tmp_path / "user.nk"
    seed_file.write_bytes(_user_seed())
    server = auth_server(tmp_path, f"authorization {{ users: [ {{ nkey: {public} }} ] }}")
    try:
        nc = await connect(NatsConfig(servers=[server.url], nkey_seed_file=seed_file), name="t")
        assert nc.is_connected
        await nc.close()
    finally:
        server.stop()


async def test_custom_inbox_prefix_is_used_for_replies(nats_url: str) -> None:
    cfg = NatsConfig(servers=[nats_url], inbox_prefix="_INBOX_web-1")
    nc = await connect(cfg, name="t")
    try:
        assert nc.new_inbox().startswith("_INBOX_web-1.")
    finally:
        await nc.close()


async def test_first_connection_is_retried_until_the_server_appears(tmp_path: Path) -> None:
    import asyncio

    from shared.devenv.procs import free_port

    port = free_port()
    server = NatsServer(tmp_path / "late", port=port)
    loop = asyncio.get_running_loop()
    loop.call_later(0.5, server.start)
    try:
        nc = await connect(NatsConfig(servers=[f"nats://127.0.0.1:{port}"]), name="t", wait=15)
        assert nc.is_connected
        await nc.close()
    finally:
        server.stop()


async def test_unreachable_server_fails_with_bus_error_naming_it() -> None:
    with pytest.raises(BusConnectError, match=r"127\.0\.0\.1:1"):
        await connect(
            NatsConfig(servers=["nats://127.0.0.1:1"], connect_timeout=1), name="t", wait=0.5
        )


def _user_seed() -> bytes:
    import base64
    import binascii

    # A user seed (prefix "SU") for 32 fixed bytes, built as nkeys encodes seeds.
    raw = bytes(range(32))
    prefix_seed, prefix_user = 18 << 3, 20 << 3
    b1 = prefix_seed | (prefix_user >> 5)
    b2 = (prefix_user & 31) << 3
    payload = bytes([b1, b2]) + raw
    crc = binascii.crc_hqx(payload, 0)
    return base64.b32encode(payload + crc.to_bytes(2, "little")).rstrip(b"=")


def test_nats_package_is_real() -> None:
    assert nats.__name__ == "nats"  # no mock anywhere in this suite
