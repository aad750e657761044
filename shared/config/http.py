"""Security of Vigil's HTTP servers (web service and notifier): auth, TLS, CORS.

Both ``visualization`` and ``notifier`` carry the same three fields (``auth``,
``tls``, ``cors_origins``; descriptions and the origin check are here)::

    auth:
      users:  [{name: grafana, password_hash: "$scrypt$...", role: read}]
      tokens: [{name: ci, token_hash: "$scrypt$...", role: admin}]
    tls: {cert_file: web.pem, key_file: web-key.pem, client_ca_file: clients.pem}
    cors_origins: ["https://grafana.example"]

No users and no tokens: authentication is off (the local development stack).
Hashes are made by ``vigil auth hash`` / ``vigil auth token`` and may come from
``password_hash_file`` / ``token_hash_file``. Relative paths are taken from the
config file's folder. docs/security.md tells the whole story.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import (
    AfterValidator,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from shared.config.base import Section, resolve_path
from shared.httpsec.hashing import parse_hash
from shared.httpsec.policy import Role


def _check_hash(value: SecretStr) -> SecretStr:
    parse_hash(value.get_secret_value())  # HashFormatError is a ValueError: reported by path
    return value


class HttpUser(Section):
    """A user for HTTP basic auth."""

    name: str = Field(min_length=1, pattern=r"^[^:\s]+$", description="User name (no colon).")
    password_hash: SecretStr = Field(
        description="Hash of the password from 'vigil auth hash' ($scrypt$... or $pbkdf2-sha256$...)."
    )
    role: Role = Field(default="read", description="read: queries and reads; admin: also writes.")

    _hash = field_validator("password_hash")(_check_hash)


class HttpToken(Section):
    """A bearer token (``Authorization: Bearer ...``)."""

    name: str = Field(min_length=1, description="What the token is for; shown in logs and errors.")
    token_hash: SecretStr = Field(description="Hash of the token from 'vigil auth token'.")
    role: Role = Field(default="read", description="read: queries and reads; admin: also writes.")

    _hash = field_validator("token_hash")(_check_hash)


class HttpAuthConfig(Section):
    """Who may use an HTTP server. Empty: no authentication."""

    users: list[HttpUser] = Field(default_factory=list, description="Basic-auth users.")
    tokens: list[HttpToken] = Field(default_factory=list, description="Bearer tokens.")

    @property
    def enabled(self) -> bool:
        return bool(self.users or self.tokens)

    @model_validator(mode="after")
    def _unique_names(self) -> HttpAuthConfig:
        for kind, names in (
            ("user", [u.name for u in self.users]),
            ("token", [t.name for t in self.tokens]),
        ):
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ValueError(f"two {kind}s are named {dup[0]!r}: give each a distinct name")
        return self


class HttpTLSConfig(Section):
    """TLS of an HTTP server; the files are read when the server starts."""

    cert_file: Path = Field(description="Server certificate chain (PEM).")
    key_file: Path = Field(description="Private key of the certificate (PEM, unencrypted).")
    client_ca_file: Path | None = Field(
        default=None,
        description="CA bundle of client certificates; set: every client must present one "
        "(mutual TLS).",
    )

    @field_validator("cert_file", "key_file", "client_ca_file")
    @classmethod
    def _readable(cls, v: Path | None, info: ValidationInfo) -> Path | None:
        if v is None:
            return None
        path = resolve_path(v, info)
        if not path.is_file():
            raise ValueError(f"cannot read {path}: no such file")
        return path


def _check_origins(origins: list[str]) -> list[str]:
    """Validator of ``cors_origins``: whole origins (``scheme://host[:port]``) or ``*``."""
    for origin in origins:
        if origin != "*" and ("://" not in origin or origin.endswith("/")):
            raise ValueError(
                f"origin {origin!r} must be scheme://host[:port] without a path, or '*'"
            )
    return origins


class HttpServing(Section):
    """The HTTP security settings of a service that serves an API (``visualization``,
    ``notifier``), read by ``shared.httpsec``."""

    auth: HttpAuthConfig = Field(
        default_factory=HttpAuthConfig,
        description="Users and tokens of the HTTP API; none configured: no authentication.",
    )
    tls: HttpTLSConfig | None = Field(
        default=None,
        description="Serve HTTPS instead of HTTP (certificate files; client CA for mutual TLS).",
    )
    cors_origins: Annotated[list[str], AfterValidator(_check_origins)] = Field(
        default_factory=list,
        description="Origins allowed to call the HTTP API from a browser (CORS); empty: no "
        "CORS headers at all; '*': any origin.",
    )
