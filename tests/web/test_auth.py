"""The web service behind ``visualization.auth``/``tls``/``cors_origins`` (shared.httpsec).

The HTTP layer runs over the fake engine and a database that is not there (the
pool is lazy): authentication happens before any query reaches either.
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.httpsec.hashing import hash_secret
from tests.fixtures.natsauth import LocalCA, openssl
from tests.web.conftest import FakeEngine, web_config
from web.app import App

NO_DB = "postgresql://vigil:db-password-42@127.0.0.1:1/none"
LN = 10  # cheap hashes: the test is about the HTTP layer
READ_TOKEN = "vgl_read-token-abc"
ADMIN_TOKEN = "vgl_admin-token-xyz"
SECRETS = (READ_TOKEN, ADMIN_TOKEN, "ann-password", "wrong-password", "db-password-42")


def auth_section() -> dict[str, Any]:
    return {
        "users": [
            {"name": "ann", "password_hash": hash_secret("ann-password", ln=LN), "role": "admin"},
            {"name": "rita", "password_hash": hash_secret("rita-password", ln=LN)},
        ],
        "tokens": [
            {"name": "grafana", "token_hash": hash_secret(READ_TOKEN, ln=LN), "role": "read"},
            {"name": "ops", "token_hash": hash_secret(ADMIN_TOKEN, ln=LN), "role": "admin"},
        ],
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(user: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


@asynccontextmanager
async def running(
    tmp_path: Path, *, scheme: str = "http", **visualization: Any
) -> AsyncIterator[tuple[App, str]]:
    app = App(web_config(tmp_path, NO_DB, **visualization), engine=FakeEngine())
    await app.start()
    try:
        yield app, f"{scheme}://127.0.0.1:{app.port}"
    finally:
        await app.stop()


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        running(tmp_path, auth=auth_section()) as (_app, url),
        httpx.AsyncClient(base_url=url, timeout=10) as c,
    ):
        yield c


def assert_no_secret(r: httpx.Response) -> None:
    for secret in SECRETS:
        assert secret not in r.text
        assert all(secret not in v for v in r.headers.values())


async def test_no_credential_is_401_with_a_basic_challenge_and_an_api_envelope(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get("/api/v1/query", params={"query": "vector"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Basic realm="Vigil"'
    body = r.json()
    assert body["status"] == "error"
    assert body["errorType"] == "unauthorized"
    assert "no credentials" in body["error"]
    ui = await client.get("/")
    assert ui.status_code == 401
    assert ui.headers["www-authenticate"] == 'Basic realm="Vigil"'
    assert ui.headers["content-type"].startswith("text/plain")
    assert (await client.get("/metrics")).status_code == 401


async def test_health_and_readiness_stay_open(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/readyz")).status_code == 503  # no database: not ready, not 401


async def test_read_token_queries_with_get_and_post(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/query", params={"query": "vector"}, headers=bearer(READ_TOKEN))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "success"
    r = await client.post("/api/v1/query", data={"query": "vector"}, headers=bearer(READ_TOKEN))
    assert r.status_code == 200, r.text
    r = await client.post(
        "/api/v1/query_range",
        data={"query": "vector", "start": "0", "end": "60", "step": "15"},
        headers=bearer(READ_TOKEN),
    )
    assert r.status_code == 200, r.text


async def test_read_token_on_a_silence_is_403_before_routing(client: httpx.AsyncClient) -> None:
    body = {"matchers": [], "startsAt": "2026-01-01T00:00:00Z", "endsAt": "2026-01-01T01:00:00Z"}
    r = await client.post("/api/v2/silences", json=body, headers=bearer(READ_TOKEN))
    assert r.status_code == 403
    envelope = r.json()  # made by the middleware, whether or not the route exists yet
    assert envelope["errorType"] == "forbidden"
    assert "token 'grafana' has role read" in envelope["error"]
    r = await client.delete("/api/v2/silence/abc", headers=bearer(READ_TOKEN))
    assert r.status_code == 403
    r = await client.post("/-/reload", headers=basic("rita", "rita-password"))
    assert r.status_code == 403
    assert "user 'rita'" in r.text
    assert_no_secret(r)


async def test_admin_passes_the_guard(client: httpx.AsyncClient) -> None:
    r = await client.post("/-/reload", headers=bearer(ADMIN_TOKEN))
    assert r.status_code == 200, r.text
    r = await client.post("/-/reload", headers=basic("ann", "ann-password"))
    assert r.status_code == 200, r.text
    body = {"matchers": [], "startsAt": "2026-01-01T00:00:00Z", "endsAt": "2026-01-01T01:00:00Z"}
    r = await client.post("/api/v2/silences", json=body, headers=bearer(ADMIN_TOKEN))
    assert r.status_code not in (401, 403)  # the route's own answer (or 404/405 without one)


async def test_basic_auth_works_and_a_wrong_password_is_401(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/labels", headers=basic("rita", "rita-password"))
    assert r.status_code != 401
    assert r.status_code != 403
    for headers in (
        basic("rita", "wrong-password"),
        basic("nobody", "ann-password"),
        bearer("wrong-password"),
        {"Authorization": "Basic not-base64!"},
    ):
        r = await client.get("/api/v1/labels", headers=headers)
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == 'Basic realm="Vigil"'
        assert_no_secret(r)


async def test_no_secret_in_responses_of_status_and_errors(client: httpx.AsyncClient) -> None:
    for path in ("/api/v1/status/flags", "/api/v1/status/runtimeinfo", "/api/v1/labels"):
        r = await client.get(path, headers=bearer(ADMIN_TOKEN))
        assert r.status_code != 401
        assert_no_secret(r)
        assert "$scrypt$" not in r.text


async def test_without_users_or_tokens_auth_is_off(tmp_path: Path) -> None:
    async with running(tmp_path) as (_app, url), httpx.AsyncClient(base_url=url) as c:
        r = await c.get("/api/v1/query", params={"query": "vector"})
        assert r.status_code == 200
        assert (await c.post("/-/reload")).status_code == 200


async def test_a_reload_applies_new_tokens(tmp_path: Path) -> None:
    async with (
        running(tmp_path, auth=auth_section()) as (app, url),
        httpx.AsyncClient(base_url=url, timeout=10) as c,
    ):
        assert (await c.get("/api/v1/labels", headers=bearer(READ_TOKEN))).status_code != 401
        new = {
            "tokens": [
                {"name": "ops", "token_hash": hash_secret(ADMIN_TOKEN, ln=LN), "role": "admin"}
            ]
        }
        web_config(tmp_path, NO_DB, auth=new)  # rewrites the same file
        assert (await c.post("/-/reload", headers=bearer(ADMIN_TOKEN))).status_code == 200
        assert app.config.visualization.auth.tokens[0].name == "ops"
        assert (await c.get("/api/v1/labels", headers=bearer(READ_TOKEN))).status_code == 401


# --- CORS -----------------------------------------------------------------------


async def test_cors_is_off_by_default(client: httpx.AsyncClient) -> None:
    origin = {"Origin": "https://grafana.example"}
    r = await client.get("/api/v1/labels", headers={**origin, **bearer(READ_TOKEN)})
    assert not [h for h in r.headers if h.lower().startswith("access-control-")]
    r = await client.options(
        "/api/v1/query", headers={**origin, "Access-Control-Request-Method": "POST"}
    )
    assert not [h for h in r.headers if h.lower().startswith("access-control-")]


async def test_cors_allows_the_configured_origins_only(tmp_path: Path) -> None:
    async with (
        running(tmp_path, auth=auth_section(), cors_origins=["https://grafana.example"]) as (
            _app,
            url,
        ),
        httpx.AsyncClient(base_url=url, timeout=10) as c,
    ):
        preflight = await c.options(
            "/api/v1/query",
            headers={
                "Origin": "https://grafana.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert preflight.status_code == 200  # preflights carry no credentials
        assert preflight.headers["access-control-allow-origin"] == "https://grafana.example"
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        r = await c.get(
            "/api/v1/labels",
            headers={"Origin": "https://grafana.example", **bearer(READ_TOKEN)},
        )
        assert r.headers["access-control-allow-origin"] == "https://grafana.example"
        denied = await c.get("/api/v1/labels", headers={"Origin": "https://grafana.example"})
        assert denied.status_code == 401  # the browser can read the 401
        assert denied.headers["access-control-allow-origin"] == "https://grafana.example"
        other = await c.get(
            "/api/v1/labels", headers={"Origin": "https://evil.example", **bearer(READ_TOKEN)}
        )
        assert "access-control-allow-origin" not in other.headers


# --- TLS ------------------------------------------------------------------------

needs_openssl: Callable[[Any], Any] = pytest.mark.skipif(
    openssl() is None, reason="no openssl command"
)


@pytest.fixture
def ca(tmp_path: Path) -> LocalCA:
    return LocalCA.create(tmp_path / "pki")


@needs_openssl
async def test_tls_serves_https_verified_by_the_ca_and_refuses_plaintext(
    tmp_path: Path, ca: LocalCA
) -> None:
    server = ca.issue("web", dns=["localhost"], ips=["127.0.0.1"])
    tls = {"cert_file": str(server.cert_file), "key_file": str(server.key_file)}
    async with running(tmp_path, scheme="https", tls=tls, auth=auth_section()) as (app, url):
        verify = ssl.create_default_context(cafile=str(ca.cert_file))
        async with httpx.AsyncClient(base_url=url, verify=verify, timeout=10) as c:
            assert (await c.get("/healthz")).status_code == 200
            r = await c.get("/api/v1/labels", headers=bearer(READ_TOKEN))
            assert r.status_code not in (401, 403)
        async with httpx.AsyncClient(timeout=10) as plain:
            with pytest.raises(httpx.TransportError):
                await plain.get(f"http://127.0.0.1:{app.port}/healthz")
        async with httpx.AsyncClient(timeout=10) as untrusting:  # system CAs only
            with pytest.raises(httpx.ConnectError):
                await untrusting.get(f"{url}/healthz")


@needs_openssl
async def test_mutual_tls_needs_a_client_certificate(tmp_path: Path, ca: LocalCA) -> None:
    server = ca.issue("web", ips=["127.0.0.1"])
    client_cert = ca.issue("grafana")
    tls = {
        "cert_file": str(server.cert_file),
        "key_file": str(server.key_file),
        "client_ca_file": str(ca.cert_file),
    }
    async with running(tmp_path, scheme="https", tls=tls) as (_app, url):
        anonymous = ssl.create_default_context(cafile=str(ca.cert_file))
        async with httpx.AsyncClient(base_url=url, verify=anonymous, timeout=10) as c:
            with pytest.raises(httpx.TransportError):
                await c.get("/healthz")
        mutual = ssl.create_default_context(cafile=str(ca.cert_file))
        mutual.load_cert_chain(str(client_cert.cert_file), str(client_cert.key_file))
        async with httpx.AsyncClient(base_url=url, verify=mutual, timeout=10) as c:
            assert (await c.get("/healthz")).status_code == 200
