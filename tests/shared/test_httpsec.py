"""shared.httpsec: hash strings, verification and its cache, the role policy, the CLI, config."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import ssl
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml

from shared.config.check import check_files
from shared.config.http import HttpAuthConfig, HttpTLSConfig
from shared.hosts import is_loopback
from shared.httpsec import cli
from shared.httpsec.errors import HashFormatError, Unauthorized
from shared.httpsec.hashing import hash_secret, new_token, parse_hash, verify_secret
from shared.httpsec.middleware import warn_if_open
from shared.httpsec.policy import Access, allows, required
from shared.httpsec.tls import uvicorn_ssl_options
from shared.httpsec.verify import Authenticator

LN = 10  # cheap hashes for tests; the format and code path are those of the default


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode().rstrip("=")


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# --- hashing ------------------------------------------------------------------


def test_hash_is_a_self_describing_salted_scrypt_string() -> None:
    hashed = hash_secret("correct horse")
    scheme, params, salt, key = hashed.split("$")[1:]
    assert (scheme, params) == ("scrypt", "ln=15,r=8,p=1")
    parsed = parse_hash(hashed)
    assert len(parsed.salt) == 16
    assert len(parsed.key) == 32
    assert _b64(parsed.salt) == salt
    assert _b64(parsed.key) == key
    assert hash_secret("correct horse") != hashed  # a new salt every time


def test_verify_accepts_the_secret_and_refuses_anything_else() -> None:
    hashed = hash_secret("s3cret", ln=LN)
    assert verify_secret("s3cret", hashed)
    assert not verify_secret("s3cret ", hashed)
    assert not verify_secret("", hashed)
    assert not verify_secret("S3cret", parse_hash(hashed))


def test_pbkdf2_sha256_hashes_made_elsewhere_are_accepted() -> None:
    salt = b"0123456789abcdef"
    key = hashlib.pbkdf2_hmac("sha256", b"pw", salt, 10_000)
    stored = f"$pbkdf2-sha256$i=10000${_b64(salt)}${_b64(key)}"
    assert verify_secret("pw", stored)
    assert not verify_secret("pw2", stored)


def test_verification_compares_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)  # the module hashing calls
    hashed = hash_secret("pw", ln=LN)
    assert verify_secret("pw", hashed)
    assert not verify_secret("nope", hashed)
    assert len(calls) == 2
    assert all(len(a) == len(b) == 32 for a, b in calls)


@pytest.mark.parametrize(
    ("stored", "says"),
    [
        ("plaintext-password", "expected $scrypt$"),
        ("$md5$x$y$z", "unknown scheme"),
        ("$scrypt$ln=15,r=8$c2FsdHNhbHQ$" + "A" * 43, "missing parameter p"),
        ("$scrypt$ln=99,r=8,p=1$c2FsdHNhbHQ$" + "A" * 43, "out of range"),
        ("$scrypt$ln=15,r=8,p=1$!!!$" + "A" * 43, "salt is not base64"),
        ("$pbkdf2-sha256$i=10$c2FsdHNhbHQ$" + "A" * 43, "iterations"),
        ("$scrypt$ln=15,r=8,p=1$c2FsdA$" + "A" * 43, "too short"),
    ],
)
def test_malformed_hashes_are_refused_without_quoting_them(stored: str, says: str) -> None:
    with pytest.raises(HashFormatError) as caught:
        parse_hash(stored)
    assert says in str(caught.value)
    assert "A" * 43 not in str(caught.value)
    assert "plaintext-password" not in str(caught.value)


def test_tokens_are_random_prefixed_and_long() -> None:
    a, b = new_token(), new_token()
    assert a != b
    assert a.startswith("vgl_")
    assert len(a) >= 40


# --- policy -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "needed"),
    [
        ("GET", "/healthz", Access.OPEN),
        ("GET", "/readyz", Access.OPEN),
        ("HEAD", "/readyz", Access.OPEN),
        ("GET", "/", Access.READ),
        ("GET", "/metrics", Access.READ),
        ("GET", "/api/v1/query", Access.READ),
        ("HEAD", "/api/v1/labels", Access.READ),
        ("OPTIONS", "/api/v2/silences", Access.READ),
        ("POST", "/api/v1/query", Access.READ),
        ("POST", "/api/v1/query_range", Access.READ),
        ("POST", "/api/v1/series", Access.READ),
        ("POST", "/api/v1/labels", Access.READ),
        ("POST", "/api/v1/label/job/values", Access.READ),
        ("POST", "/api/v1/query_exemplars", Access.READ),
        ("POST", "/api/v1/rules", Access.READ),
        ("POST", "/api/v1/alerts", Access.READ),
        ("GET", "/api/v2/silences", Access.READ),
        ("GET", "/api/v2/silence/abc", Access.READ),
        ("POST", "/api/v2/silences", Access.ADMIN),
        ("DELETE", "/api/v2/silence/abc", Access.ADMIN),
        ("POST", "/api/v2/alerts", Access.ADMIN),
        ("POST", "/-/reload", Access.ADMIN),
        ("PUT", "/-/reload", Access.ADMIN),
        ("POST", "/api/v1/admin/tsdb/delete_series", Access.ADMIN),
        ("POST", "/api/v1/label/a/b/values", Access.ADMIN),
        ("POST", "/api/v1/query/", Access.ADMIN),
        ("POST", "/healthz/../api/v2/silences", Access.ADMIN),
        ("PATCH", "/api/v1/query", Access.ADMIN),
        ("post", "/api/v2/silences", Access.ADMIN),
    ],
)
def test_policy_table(method: str, path: str, needed: Access) -> None:
    assert required(method, path) is needed


def test_roles_read_and_admin() -> None:
    assert allows("read", Access.READ)
    assert not allows("read", Access.ADMIN)
    assert allows("admin", Access.ADMIN)
    assert allows("admin", Access.READ)
    assert allows("read", Access.OPEN)


# --- verification and its cache ----------------------------------------------


def _auth(**over: Any) -> HttpAuthConfig:
    doc: dict[str, Any] = {
        "users": [
            {"name": "ann", "password_hash": hash_secret("ann-pw", ln=LN), "role": "admin"},
            {"name": "bob", "password_hash": hash_secret("bob:pw", ln=LN)},
        ],
        "tokens": [
            {"name": "grafana", "token_hash": hash_secret("tok-read", ln=LN)},
            {"name": "ci", "token_hash": hash_secret("tok-admin", ln=LN), "role": "admin"},
        ],
    }
    doc.update(over)
    return HttpAuthConfig.model_validate(doc)


async def test_users_and_tokens_are_recognised_with_their_roles() -> None:
    auth = Authenticator(_auth())
    ann = await auth.authenticate(basic("ann", "ann-pw"))
    assert (ann.kind, ann.name, ann.role) == ("user", "ann", "admin")
    bob = await auth.authenticate(basic("bob", "bob:pw"))  # a colon in a password is fine
    assert (bob.name, bob.role) == ("bob", "read")
    assert (await auth.authenticate("Bearer tok-read")).name == "grafana"
    ci = await auth.authenticate("bearer  tok-admin")
    assert (ci.kind, ci.name, ci.role) == ("token", "ci", "admin")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer wrong",
        "Bearer ann-pw",
        "Digest abc",
        "Basic !!!",
        "Basic ",
        basic("ann", "bob:pw"),
        basic("nobody", "ann-pw"),
        "Basic " + _b64(b"no-colon"),
    ],
)
async def test_missing_wrong_or_malformed_credentials_are_unauthorized(
    header: str | None,
) -> None:
    auth = Authenticator(_auth())
    with pytest.raises(Unauthorized) as caught:
        await auth.authenticate(header)
    for secret in ("ann-pw", "bob:pw", "tok-read", "wrong"):
        assert secret not in str(caught.value)


async def test_a_burst_with_one_credential_verifies_the_hash_once() -> None:
    auth = Authenticator(_auth(users=[], tokens=[_auth().tokens[0]]))
    found = await asyncio.gather(*(auth.authenticate("Bearer tok-read") for _ in range(20)))
    assert {p.name for p in found} == {"grafana"}
    assert auth.verifications == 1
    for _ in range(5):
        with pytest.raises(Unauthorized):
            await auth.authenticate("Bearer tok-wrong")
    assert auth.verifications == 2  # a refused credential is cached too


async def test_the_cache_is_bounded() -> None:
    auth = Authenticator(_auth(users=[], tokens=[_auth().tokens[0]]), cache_size=2)
    for header in ("Bearer a", "Bearer b", "Bearer c", "Bearer a"):
        with pytest.raises(Unauthorized):
            await auth.authenticate(header)
    assert auth.verifications == 4  # "a" was evicted by "c"


async def test_an_unknown_user_costs_a_verification_like_a_known_one() -> None:
    auth = Authenticator(_auth())
    with pytest.raises(Unauthorized):
        await auth.authenticate(basic("mallory", "x"))
    assert auth.verifications == 1


def test_no_users_and_no_tokens_means_auth_is_off() -> None:
    assert not HttpAuthConfig().enabled
    assert not Authenticator(HttpAuthConfig()).enabled
    assert _auth().enabled


# --- configuration, CLI, TLS options -----------------------------------------


def test_check_config_reports_a_malformed_hash_by_path(tmp_path: Path) -> None:
    path = tmp_path / "vigil.yaml"
    good = hash_secret("pw", ln=LN)
    path.write_text(
        yaml.safe_dump(
            {
                "visualization": {
                    "auth": {"users": [{"name": "a", "password_hash": good}]},
                    "cors_origins": ["https://grafana.example"],
                },
                "notifier": {
                    "auth": {
                        "tokens": [
                            {"name": "t", "token_hash": good},
                            {"name": "u", "token_hash": "hunter2", "role": "admin"},
                        ]
                    }
                },
            }
        ),
        encoding="utf-8",
    )
    out = io.StringIO()
    assert check_files([str(path)], out) == 1
    text = out.getvalue()
    assert "notifier.auth.tokens[1].token_hash: cannot parse the hash" in text
    assert "hunter2" not in text
    assert "1 problem(s)" in text


def test_hashes_may_come_from_files_and_names_are_unique(tmp_path: Path) -> None:
    (tmp_path / "h").write_text(hash_secret("pw", ln=LN) + "\n", encoding="utf-8")
    cfg = HttpAuthConfig.model_validate(
        {"users": [{"name": "a", "password_hash_file": "h"}]}, context={"base_dir": tmp_path}
    )
    assert verify_secret("pw", cfg.users[0].password_hash.get_secret_value())
    assert "$scrypt$" not in repr(cfg)
    with pytest.raises(ValueError, match="two users are named 'a'"):
        HttpAuthConfig.model_validate({"users": [cfg.users[0], cfg.users[0]]})


def test_cli_hash_reads_stdin_and_prints_a_verifiable_hash_and_entry() -> None:
    out = io.StringIO()
    assert (
        cli.main(["hash", "--name", "ann", "--role", "admin"], stdin=io.StringIO("pw\n"), out=out)
        == 0
    )
    lines = out.getvalue().splitlines()
    assert verify_secret("pw", lines[0])
    entry = yaml.safe_load("\n".join(lines[2:]))
    assert entry == [{"name": "ann", "password_hash": lines[0], "role": "admin"}]
    HttpAuthConfig.model_validate({"users": entry})


def test_cli_token_prints_the_token_once_and_its_hash() -> None:
    out = io.StringIO()
    assert cli.main(["token"], stdin=io.StringIO(""), out=out) == 0
    text = out.getvalue()
    token = text.split("token: ", 1)[1].split()[0]
    hashed = text.split("hash: ", 1)[1].split()[0]
    assert token.startswith("vgl_")
    assert text.count(token) == 1
    assert verify_secret(token, hashed)


def test_tls_options_for_uvicorn(tmp_path: Path) -> None:
    for name in ("c.pem", "k.pem", "ca.pem"):
        (tmp_path / name).write_text("x", encoding="utf-8")
    assert uvicorn_ssl_options(None) == {}
    ctx = {"base_dir": tmp_path}
    one = HttpTLSConfig.model_validate({"cert_file": "c.pem", "key_file": "k.pem"}, context=ctx)
    assert uvicorn_ssl_options(one) == {
        "ssl_certfile": str(tmp_path / "c.pem"),
        "ssl_keyfile": str(tmp_path / "k.pem"),
    }
    mutual = HttpTLSConfig.model_validate(
        {"cert_file": "c.pem", "key_file": "k.pem", "client_ca_file": "ca.pem"}, context=ctx
    )
    assert uvicorn_ssl_options(mutual)["ssl_cert_reqs"] == ssl.CERT_REQUIRED
    with pytest.raises(ValueError, match="no such file"):
        HttpTLSConfig.model_validate({"cert_file": "nope.pem", "key_file": "k.pem"}, context=ctx)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("web.example", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_a_warning_only_for_an_open_api_beyond_loopback() -> None:
    open_cfg = HttpAuthConfig()
    closed = _auth()

    class Section:
        def __init__(self, auth: HttpAuthConfig) -> None:
            self.auth = auth
            self.cors_origins: list[str] = []

    with structlog.testing.capture_logs() as logs:
        warn_if_open("web", "0.0.0.0", Section(open_cfg))
        warn_if_open("web", "127.0.0.1", Section(open_cfg))
        warn_if_open("notifier", "0.0.0.0", Section(closed))
    assert [(e["log_level"], e["service"], e["host"]) for e in logs] == [
        ("warning", "web", "0.0.0.0")
    ]
