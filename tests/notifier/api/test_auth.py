"""The notifier's Alertmanager API behind ``notifier.auth`` (shared.httpsec), on a real nats-server."""

from __future__ import annotations

import asyncio
import base64
import shutil
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from notifier.app import App, Settings
from notifier.delivery import RetryPolicy
from shared.config.loader import load_config
from shared.devenv.nats import NatsServer
from shared.httpsec.hashing import hash_secret
from tests.fixtures.natsauth import LocalCA, openssl
from tests.notifier.api.conftest import am_config, eventually

LN = 10  # cheap hashes: the test is about the HTTP layer
READ_TOKEN = "vgl_read-token-abc"
ADMIN_TOKEN = "vgl_admin-token-xyz"
HOOK_TOKEN = "hook-token-7f3a"
SMTP_PASSWORD = "smtp-password-91"
SECRETS = (READ_TOKEN, ADMIN_TOKEN, HOOK_TOKEN, SMTP_PASSWORD, "amy-password", "wrong-pw")


def auth_section() -> dict[str, Any]:
    return {
        "users": [{"name": "amy", "password_hash": hash_secret("amy-password", ln=LN)}],
        "tokens": [
            {"name": "amtool-ro", "token_hash": hash_secret(READ_TOKEN, ln=LN), "role": "read"},
            {"name": "oncall", "token_hash": hash_secret(ADMIN_TOKEN, ln=LN), "role": "admin"},
        ],
    }


def secret_am_config() -> dict[str, Any]:
    am = am_config(f"http://127.0.0.1:9/hook?token={HOOK_TOKEN}")
    am["global"] = {
        "smtp_smarthost": "127.0.0.1:25",
        "smtp_from": "vigil@example.org",
        "smtp_auth_username": "vigil",
        "smtp_auth_password": SMTP_PASSWORD,
    }
    am["receivers"][1]["webhook_configs"][0]["http_config"] = {
        "basic_auth": {"username": "u", "password": SMTP_PASSWORD}
    }
    return am


async def start_notifier(tmp_path: Path, nats_url: str, **notifier: Any) -> App:
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(secret_am_config()), "utf-8")
    path = tmp_path / "vigil.yaml"
    doc = {
        "nats": {"servers": [nats_url]},
        "alerting": {"alertmanager_config": "alertmanager.yml"},
        "notifier": notifier,
    }
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    app = App(
        load_config(path, env={}),
        Settings(listen_address="127.0.0.1:0", tick=0.05, policy=RetryPolicy(initial=0.05)),
    )
    await app.start()
    try:
        await eventually(app.ready)
    except BaseException:
        await app.stop()
        raise
    return app


@pytest.fixture
async def client(tmp_path: Path, nats_server: NatsServer) -> AsyncIterator[httpx.AsyncClient]:
    app = await start_notifier(tmp_path, nats_server.url, auth=auth_section())
    try:
        url = f"http://127.0.0.1:{app.admin_port}"
        async with httpx.AsyncClient(base_url=url, timeout=10) as c:
            yield c
    finally:
        await app.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(user: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def silence() -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "matchers": [{"name": "alertname", "value": "Down", "isRegex": False, "isEqual": True}],
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(hours=1)).isoformat(),
        "createdBy": "tester",
        "comment": "maintenance",
    }


def assert_no_secret(r: httpx.Response) -> None:
    for secret in SECRETS:
        assert secret not in r.text


async def test_no_credential_is_401_and_probes_stay_open(client: httpx.AsyncClient) -> None:
    for method, path in (
        ("GET", "/api/v2/silences"),
        ("GET", "/api/v2/status"),
        ("POST", "/api/v2/silences"),
        ("GET", "/metrics"),
    ):
        r = await client.request(method, path)
        assert r.status_code == 401, path
        assert r.headers["www-authenticate"] == 'Basic realm="Vigil"'
    assert (await client.get("/api/v2/alerts")).json()["errorType"] == "unauthorized"
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/readyz")).status_code == 200


async def test_read_credential_reads_but_cannot_silence_or_post_alerts(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/api/v2/silences", headers=bearer(READ_TOKEN))).json() == []
    assert (await client.get("/api/v2/alerts", headers=basic("amy", "amy-password"))).is_success
    r = await client.post("/api/v2/silences", json=silence(), headers=bearer(READ_TOKEN))
    assert r.status_code == 403
    assert r.json()["errorType"] == "forbidden"
    for method, path in (
        ("DELETE", "/api/v2/silence/0b3e5b0a-3e5c-4a43-a1a3-b2f5c1d1e1f1"),
        ("POST", "/api/v2/alerts"),
        ("POST", "/-/reload"),
    ):
        r = await client.request(method, path, headers=basic("amy", "amy-password"))
        assert r.status_code == 403, path
        assert_no_secret(r)
    assert (await client.get("/api/v2/silences", headers=bearer(ADMIN_TOKEN))).json() == []


async def test_admin_creates_and_expires_a_silence(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v2/silences", json=silence(), headers=bearer(ADMIN_TOKEN))
    assert r.status_code == 200, r.text
    sid = r.json()["silenceID"]
    r = await client.get(f"/api/v2/silence/{sid}", headers=bearer(READ_TOKEN))
    assert r.json()["status"]["state"] == "active"
    r = await client.delete(f"/api/v2/silence/{sid}", headers=bearer(ADMIN_TOKEN))
    assert r.status_code == 200, r.text
    assert (await client.post("/-/reload", headers=bearer(ADMIN_TOKEN))).status_code == 200


async def test_wrong_password_or_token_is_401_without_echoing_it(
    client: httpx.AsyncClient,
) -> None:
    for headers in (basic("amy", "wrong-pw"), bearer("wrong-pw"), basic("nobody", "wrong-pw")):
        r = await client.get("/api/v2/silences", headers=headers)
        assert r.status_code == 401
        assert_no_secret(r)


async def test_status_masks_receiver_secrets(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v2/status", headers=bearer(READ_TOKEN))
    assert r.status_code == 200
    assert_no_secret(r)
    assert "$scrypt$" not in r.text
    original = yaml.safe_load(r.json()["config"]["original"])
    assert original["global"]["smtp_auth_password"] == "<secret>"
    hooks = original["receivers"]
    assert hooks[0]["webhook_configs"][0]["url"] == "<secret>"
    assert hooks[1]["webhook_configs"][0]["http_config"]["basic_auth"] == {
        "username": "u",
        "password": "<secret>",
    }


async def test_cors_is_off_by_default(client: httpx.AsyncClient) -> None:
    r = await client.get(
        "/api/v2/status", headers={"Origin": "https://ui.example", **bearer(READ_TOKEN)}
    )
    assert not [h for h in r.headers if h.lower().startswith("access-control-")]


@pytest.mark.skipif(openssl() is None, reason="no openssl command")
async def test_tls_with_a_throwaway_ca(tmp_path: Path, nats_server: NatsServer) -> None:
    ca = LocalCA.create(tmp_path / "pki")
    cert = ca.issue("notifier", ips=["127.0.0.1"])
    tls = {"cert_file": str(cert.cert_file), "key_file": str(cert.key_file)}
    app = await start_notifier(tmp_path, nats_server.url, tls=tls, auth=auth_section())
    try:
        verify = ssl.create_default_context(cafile=str(ca.cert_file))
        url = f"https://127.0.0.1:{app.admin_port}"
        async with httpx.AsyncClient(base_url=url, verify=verify, timeout=10) as c:
            assert (await c.get("/healthz")).status_code == 200
            r = await c.post("/api/v2/silences", json=silence(), headers=bearer(ADMIN_TOKEN))
            assert r.status_code == 200, r.text
        async with httpx.AsyncClient(timeout=10) as plain:
            with pytest.raises(httpx.TransportError):
                await plain.get(f"http://127.0.0.1:{app.admin_port}/healthz")
    finally:
        await app.stop()


AMTOOL = shutil.which("amtool")


async def amtool(url: str, http_config: dict[str, Any], tmp_path: Path, *args: str) -> str:
    config = tmp_path / "amtool-http.yml"
    config.write_text(yaml.safe_dump(http_config), encoding="utf-8")
    assert AMTOOL is not None
    proc = await asyncio.create_subprocess_exec(
        AMTOOL,
        f"--alertmanager.url={url}",
        f"--http.config.file={config}",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={"HOME": "/nonexistent", "USER": "tester", "PATH": "/usr/bin:/bin"},
    )
    async with asyncio.timeout(20):
        out, _ = await proc.communicate()
    return f"exit {proc.returncode}\n{out.decode()}"


@pytest.mark.skipif(AMTOOL is None or openssl() is None, reason="no amtool or no openssl")
async def test_amtool_with_an_http_config_file_over_tls(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    # what docs/security.md tells amtool users to write
    ca = LocalCA.create(tmp_path / "pki")
    cert = ca.issue("notifier", ips=["127.0.0.1"])
    tls = {"cert_file": str(cert.cert_file), "key_file": str(cert.key_file)}
    app = await start_notifier(tmp_path, nats_server.url, tls=tls, auth=auth_section())
    url = f"https://127.0.0.1:{app.admin_port}"
    trust = {"tls_config": {"ca_file": str(ca.cert_file)}}
    admin = {"authorization": {"type": "Bearer", "credentials": ADMIN_TOKEN}, **trust}
    reader = {"basic_auth": {"username": "amy", "password": "amy-password"}, **trust}
    try:
        added = await amtool(url, admin, tmp_path, "silence", "add", "alertname=X", "-c", "m")
        assert added.startswith("exit 0"), added
        sid = added.split()[-1]
        listed = await amtool(url, reader, tmp_path, "silence", "query")
        assert listed.startswith("exit 0"), listed
        assert sid in listed
        refused = await amtool(url, reader, tmp_path, "silence", "expire", sid)
        assert not refused.startswith("exit 0"), refused
        assert "403" in refused or "orbidden" in refused, refused
        anonymous = await amtool(url, trust, tmp_path, "silence", "query")
        assert not anonymous.startswith("exit 0"), anonymous
        assert "401" in anonymous or "nauthorized" in anonymous, anonymous
    finally:
        await app.stop()
