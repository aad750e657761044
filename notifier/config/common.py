"""Pieces every part of the Alertmanager configuration shares: the base model, HTTP client
settings (Prometheus' ``common/config.HTTPClientConfig``), secrets and matcher lists.

Like Alertmanager (which unmarshals strictly), unknown keys are errors. Secrets are
``SecretStr`` (never printed); ``*_file`` variants are kept as paths and read when
used, relative to the Alertmanager file's folder, as Alertmanager reads them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, model_validator

from shared.alertmanager.matchers import LABEL_NAME_RE, LabelMatcher, parse_matchers


class AMModel(BaseModel):
    """Base of every model of the Alertmanager configuration: strict keys, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def at_most_one(model: BaseModel, *names: str) -> None:
    given = [n for n in names if getattr(model, n) is not None]
    if len(given) > 1:
        raise ValueError(f"at most one of {', '.join(names)} must be configured")


def read_secret(value: SecretStr | None, file: str | None, base_dir: Path) -> str | None:
    """The secret's text, from the value or the file (trailing newline stripped)."""
    if value is not None:
        return value.get_secret_value()
    if file is None:
        return None
    path = Path(file).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    try:
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ValueError(f"cannot read secret file {path}: {exc.strerror or exc}") from exc


class BasicAuth(AMModel):
    username: str = Field("", description="User name.")
    username_file: str | None = Field(None, description="File holding the user name.")
    password: SecretStr | None = Field(None, description="Password.")
    password_file: str | None = Field(None, description="File holding the password.")

    @model_validator(mode="after")
    def _exclusive(self) -> BasicAuth:
        at_most_one(self, "password", "password_file")
        return self


class Authorization(AMModel):
    type: str = Field("Bearer", description="Scheme of the Authorization header.")
    credentials: SecretStr | None = Field(None, description="Credentials of the header.")
    credentials_file: str | None = Field(None, description="File holding the credentials.")

    @model_validator(mode="after")
    def _exclusive(self) -> Authorization:
        at_most_one(self, "credentials", "credentials_file")
        if self.type.strip().lower() == "basic":
            raise ValueError(
                "authorization type cannot be set to 'basic', use 'basic_auth' instead"
            )
        return self


class TLSConfig(AMModel):
    ca: str | None = None
    ca_file: str | None = None
    cert: str | None = None
    cert_file: str | None = None
    key: SecretStr | None = None
    key_file: str | None = None
    server_name: str | None = None
    insecure_skip_verify: bool = False
    min_version: str | None = None
    max_version: str | None = None


class OAuth2(AMModel):
    client_id: str
    client_secret: SecretStr | None = None
    client_secret_file: str | None = None
    scopes: list[str] = Field(default_factory=list)
    token_url: str
    endpoint_params: dict[str, str] = Field(default_factory=dict)
    tls_config: TLSConfig | None = None
    proxy_url: str | None = None


class HTTPConfig(AMModel):
    """How a receiver reaches its endpoint (Prometheus' ``http_config``)."""

    basic_auth: BasicAuth | None = None
    authorization: Authorization | None = None
    bearer_token: SecretStr | None = Field(None, description="Deprecated: use authorization.")
    bearer_token_file: str | None = Field(None, description="Deprecated: use authorization.")
    oauth2: OAuth2 | None = None
    tls_config: TLSConfig | None = None
    proxy_url: str | None = None
    no_proxy: str | None = None
    proxy_from_environment: bool = False
    proxy_connect_header: dict[str, list[SecretStr]] | None = None
    follow_redirects: bool = True
    enable_http2: bool = True
    http_headers: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_auth(self) -> HTTPConfig:
        at_most_one(self, "bearer_token", "bearer_token_file")
        methods = [
            n
            for n, v in (
                ("basic_auth", self.basic_auth),
                ("authorization", self.authorization),
                ("oauth2", self.oauth2),
                ("bearer_token", self.bearer_token or self.bearer_token_file),
            )
            if v is not None
        ]
        if len(methods) > 1:
            raise ValueError(f"at most one of {', '.join(methods)} must be configured")
        return self


def _matcher_line(value: object) -> tuple[LabelMatcher, ...]:
    if not isinstance(value, str):
        raise ValueError("a matcher must be a string like 'severity=\"critical\"'")  # noqa: TRY004 - pydantic wants ValueError
    return tuple(parse_matchers(value))


MatcherLine = Annotated[tuple[LabelMatcher, ...], BeforeValidator(_matcher_line)]
"""One entry of a ``matchers:`` list (it may hold several comma-separated matchers)."""


def _label_name(value: object) -> str:
    if not isinstance(value, str) or not LABEL_NAME_RE.fullmatch(value):
        raise ValueError(f"invalid label name {value!r}")
    return value


LabelName = Annotated[str, BeforeValidator(_label_name)]


def flatten(lines: list[tuple[LabelMatcher, ...]]) -> tuple[LabelMatcher, ...]:
    return tuple(m for line in lines for m in line)


def legacy_matchers(
    match: dict[str, str] | None, match_re: dict[str, str] | None
) -> tuple[LabelMatcher, ...]:
    """``match``/``match_re`` as matchers (regexes anchored like the new syntax)."""
    out = [LabelMatcher.make(k, "=", v) for k, v in sorted((match or {}).items())]
    out += [LabelMatcher.make(k, "=~", v) for k, v in sorted((match_re or {}).items())]
    return tuple(out)


def check_legacy(match: dict[str, str] | None, match_re: dict[str, str] | None) -> None:
    for name in list(match or {}) + list(match_re or {}):
        _label_name(name)
    for name, value in (match_re or {}).items():
        LabelMatcher.make(name, "=~", value)
