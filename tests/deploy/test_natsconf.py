"""`vigil nats init` files and the permissions it grants, without a server.

tests/integration/test_enroll.py starts a real nats-server on these files; here the
layout, the modes and the exact permission lists are pinned.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.bus.creds import NKey, Operator, Role, decode_jwt, parse_creds
from shared.bus.natsconf import (
    SERVICES,
    NatsDir,
    NatsDirError,
    ServerOptions,
    ServerTLS,
    agent_inbox_prefix,
    agent_permissions,
    render_server_config,
)


def test_agent_may_publish_only_its_own_subject_and_subscribe_only_its_inbox_prefix() -> None:
    perms = agent_permissions("web-1.example.com")
    assert perms.claims() == {
        "pub": {"allow": ["vigil.metrics.web-1/example/com"]},
        "sub": {"allow": ["_INBOX_web-1/example/com.>"]},
    }
    assert agent_inbox_prefix("db 1") == "_INBOX_db=201"  # host token escaping applies
    assert agent_permissions("h", prefix="acme").pub_allow == ["acme.metrics.h"]


def test_init_writes_private_keys_and_one_creds_file_per_service(tmp_path: Path) -> None:
    setup = NatsDir.init(tmp_path / "nats")
    assert setup.keys_dir.stat().st_mode & 0o777 == 0o700
    keys = sorted(p.name for p in setup.keys_dir.iterdir())
    assert keys == ["SYS.nk", "VIGIL.nk", "operator.nk"]
    for key in setup.keys_dir.iterdir():
        assert key.stat().st_mode & 0o777 == 0o600
    for service in SERVICES:
        creds = setup.service_creds(service)
        assert creds.stat().st_mode & 0o777 == 0o600
        jwt, _seed = parse_creds(creds.read_text(encoding="utf-8"))
        claims = decode_jwt(jwt)
        assert claims["name"] == service
        assert "$JS.>" in claims["nats"]["pub"]["allow"]
    text = setup.server_conf.read_text(encoding="utf-8")
    assert "include accounts.conf" in text
    assert "resolver: MEMORY" in (setup.path / "accounts.conf").read_text(encoding="utf-8")


def test_init_refuses_a_folder_with_keys_unless_forced(tmp_path: Path) -> None:
    NatsDir.init(tmp_path)
    with pytest.raises(NatsDirError, match="holds keys already"):
        NatsDir.init(tmp_path)
    NatsDir.init(tmp_path, force=True)


def test_reloaded_setup_signs_the_same_operator_jwt(tmp_path: Path) -> None:
    # nats-server cannot reload a changed operator: a revoke must leave it byte for byte
    setup = NatsDir.init(tmp_path)
    before = (tmp_path / "accounts.conf").read_text(encoding="utf-8").splitlines()[1]
    loaded = NatsDir.load(tmp_path)
    loaded.enroll("h1")
    loaded.revoke("h1", at=123)
    after = (tmp_path / "accounts.conf").read_text(encoding="utf-8").splitlines()[1]
    assert before == after
    assert before.startswith("operator: ")
    assert NatsDir.load(tmp_path).revocations == loaded.revocations
    assert setup.prefix == loaded.prefix == "vigil"


def test_server_config_has_tls_required_with_client_verification_when_asked() -> None:
    tls = ServerTLS("/tls/server.pem", "/tls/server-key.pem", "/tls/ca.pem", verify=True)
    text = render_server_config(ServerOptions(host="0.0.0.0", port=4222, tls=tls), "/data/js")
    assert 'cert_file: "/tls/server.pem"' in text
    assert "verify: true" in text
    assert 'store_dir: "/data/js"' in text
    with pytest.raises(NatsDirError, match="no CA file"):
        ServerTLS("c", "k", verify=True)


def test_load_without_init_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(NatsDirError, match="vigil nats init"):
        NatsDir.load(tmp_path)


def test_operator_rebuilt_from_its_keys_signs_identical_jwts() -> None:
    key, system = NKey.generate(Role.OPERATOR), NKey.generate(Role.ACCOUNT)
    a = Operator("x", key=key, system_key=system, issued_at=1)
    b = Operator("x", key=key, system_key=system, issued_at=1)
    assert a.jwt == b.jwt
    assert a.server_config() == b.server_config()
