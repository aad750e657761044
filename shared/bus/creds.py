"""NATS decentralized auth: NKeys, JWTs and ``.creds`` files, minted without ``nsc``.

Used by ``vigil nats init`` and ``vigil agent enroll`` (shared is installed on agent
hosts, so this module needs only the standard library and ``nkeys``, which comes
with ``nats-py[nkeys]``; ``nacl`` is nkeys' own dependency).

Operator → Account → User
-------------------------
An operator signs accounts, an account signs its users; the server trusts the
operator JWT and looks accounts up in a resolver (``MEMORY``, preloaded from the
server configuration). A client proves who it is with a ``.creds`` file: its user
JWT plus the NKey seed that signs the server's nonce. The server checks a user JWT
against its account when the user connects, so users can be made at any time
without touching the server; accounts are read when the server starts or reloads.

Each key is an NKey: an ed25519 key pair whose public key is base32 with a role
prefix (``O`` operator, ``A`` account, ``U`` user) and whose seed reads
``SO…``/``SA…``/``SU…``. A NATS JWT (nats-io/jwt v2) is::

    base64url(header) "." base64url(claims) "." base64url(signature)

with base64url unpadded, header ``{"typ":"JWT","alg":"ed25519-nkey"}`` and the
signature the issuer's ed25519 signature of ``header "." claims`` (the two
encoded parts, as ASCII). The claims are::

    jti   base32 (unpadded) of SHA-512/256 of the JSON of the standard claims
          (aud, exp, iat, iss, name, nbf, sub; empty ones left out) without jti
    iat   issue time, Unix seconds
    iss   the issuer's public key (an operator signs itself)
    sub   the subject's public key
    name  a display name
    nats  {"type": "operator"|"account"|"user", "version": 2, ...}

For a user, ``nats`` also holds ``pub``/``sub`` permissions (``{"allow": [...],
"deny": [...]}``) and ``subs``/``data``/``payload`` limits (-1: unlimited). For an
account it holds ``limits`` (JetStream is enabled for the account only when
``mem_storage`` or ``disk_storage`` is non-zero) and ``revocations``: user public
key → Unix time; the server refuses that user's JWTs issued at or before it.

Errors: ``ValueError`` for malformed input (a JWT, a creds file, a seed);
nacl's ``BadSignatureError`` (a ``ValueError`` too) for a signature the issuer
did not make.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

import nkeys  # type: ignore[import-untyped,unused-ignore]
from nacl.signing import VerifyKey

JWT_HEADER = {"typ": "JWT", "alg": "ed25519-nkey"}
UNLIMITED = -1


class Role(IntEnum):
    """The NKey prefix byte of each role (the first base32 letter of the public key)."""

    OPERATOR = nkeys.PREFIX_BYTE_OPERATOR
    ACCOUNT = nkeys.PREFIX_BYTE_ACCOUNT
    USER = nkeys.PREFIX_BYTE_USER


@dataclass(frozen=True)
class NKey:
    """An NKey pair, held as its seed (``S`` + role letter + ...)."""

    seed: bytes

    @classmethod
    def generate(cls, role: Role) -> NKey:
        return cls(bytes(nkeys.encode_seed(secrets.token_bytes(32), int(role))))

    @classmethod
    def from_seed(cls, seed: bytes | str) -> NKey:
        """An NKey from seed text; ``ValueError`` when it is not a valid seed."""
        raw = (seed.encode("ascii") if isinstance(seed, str) else seed).strip()
        try:
            nkeys.from_seed(raw)
        except Exception as exc:  # nkeys raises its own error kinds and binascii's
            raise ValueError(f"cannot read NKey seed: {type(exc).__name__}") from exc
        return cls(raw)

    @property
    def public_key(self) -> str:
        return str(nkeys.from_seed(self.seed).public_key.decode("ascii"))

    def sign(self, data: bytes) -> bytes:
        return bytes(nkeys.from_seed(self.seed).sign(data))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _go_json(value: object) -> bytes:
    """JSON as Go's encoding/json writes it: compact, keys in the given order, HTML escaped."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escaped)
    return text.encode("utf-8")


def claims_id(claims: Mapping[str, Any]) -> str:
    """The ``jti`` NATS gives a claim set: a hash of its standard claims, in Go's field order."""
    standard = {
        key: claims[key]
        for key in ("aud", "exp", "iat", "iss", "name", "nbf", "sub")
        if claims.get(key)
    }
    digest = hashlib.new("sha512_256", _go_json(standard)).digest()
    return base64.b32encode(digest).rstrip(b"=").decode("ascii")


def encode_jwt(
    issuer: NKey, subject: str, name: str, nats: Mapping[str, Any], *, issued_at: int | None = None
) -> str:
    """A NATS JWT for ``subject`` signed by ``issuer``; ``nats`` is the type-specific part."""
    claims: dict[str, Any] = {
        "iat": int(time.time()) if issued_at is None else issued_at,
        "iss": issuer.public_key,
        "name": name,
        "sub": subject,
    }
    claims = {"jti": claims_id(claims), **claims, "nats": {**nats, "version": 2}}
    signed = f"{_b64url(_go_json(JWT_HEADER))}.{_b64url(_go_json(claims))}"
    return f"{signed}.{_b64url(issuer.sign(signed.encode('ascii')))}"


def decode_jwt(token: str) -> dict[str, Any]:
    """The claims of a NATS JWT, after checking its header and its signature by ``iss``.

    Raises ValueError for a malformed token and nacl's BadSignatureError for a
    signature that ``iss`` did not make.
    """
    try:
        header, payload, signature = token.strip().split(".")
        head = json.loads(_b64url_decode(header))
        claims: dict[str, Any] = json.loads(_b64url_decode(payload))
        raw_issuer = base64.b32decode(claims["iss"])[1:33]  # role byte, 32 key bytes, CRC16
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"cannot decode NATS JWT: {exc}") from exc
    if head != JWT_HEADER:
        raise ValueError(f"cannot decode NATS JWT: not a NATS JWT header: {head!r}")
    VerifyKey(raw_issuer).verify(f"{header}.{payload}".encode("ascii"), _b64url_decode(signature))
    return claims


def creds_text(user_jwt: str, seed: bytes) -> str:
    """A ``.creds`` file's content, as ``nsc`` and nats-io/jwt ``FormatUserConfig`` write it."""
    return (
        "-----BEGIN NATS USER JWT-----\n"
        f"{user_jwt}\n"
        "------END NATS USER JWT------\n\n"
        "************************* IMPORTANT *************************\n"
        "NKEY Seed printed below can be used to sign and prove identity.\n"
        "NKEYs are sensitive and should be treated as secrets.\n\n"
        "-----BEGIN USER NKEY SEED-----\n"
        f"{seed.decode('ascii')}\n"
        "------END USER NKEY SEED------\n\n"
        "*************************************************************\n"
    )


_CREDS_BLOCK = re.compile(r"-{3,}BEGIN [A-Z ]+-{3,}\s*\n\s*(\S+)\s*\n\s*-{3,}END [A-Z ]+-{3,}")


def parse_creds(text: str) -> tuple[str, NKey]:
    """The user JWT and NKey of a ``.creds`` file's content; ``ValueError`` if it is not one."""
    blocks = _CREDS_BLOCK.findall(text)
    if len(blocks) != 2:
        raise ValueError("cannot read creds: expected a JWT block and a seed block")
    return blocks[0], NKey.from_seed(blocks[1])


def write_secret(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` with mode 0600 (also when the file existed with another)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    return path


def _allow_deny(allow: Sequence[str] | None, deny: Sequence[str] | None) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if allow is not None:
        out["allow"] = list(allow)
    if deny:
        out["deny"] = list(deny)
    return out


@dataclass(frozen=True)
class Permissions:
    """What a user may publish and subscribe to; ``None`` allow lists leave that unrestricted."""

    pub_allow: Sequence[str] | None = None
    sub_allow: Sequence[str] | None = None
    pub_deny: Sequence[str] = ()
    sub_deny: Sequence[str] = ()

    def claims(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if pub := _allow_deny(self.pub_allow, self.pub_deny):
            out["pub"] = pub
        if sub := _allow_deny(self.sub_allow, self.sub_deny):
            out["sub"] = sub
        return out


@dataclass(frozen=True)
class User:
    """A user of an account; ``jwt`` carries its permissions."""

    name: str
    key: NKey
    jwt: str

    def creds(self) -> str:
        return creds_text(self.jwt, self.key.seed)

    def write_creds(self, path: Path) -> Path:
        """Write the ``.creds`` file (mode 0600, as it holds the seed)."""
        return write_secret(path, self.creds())


@dataclass(frozen=True)
class Account:
    """An account signed by the operator; it signs its users."""

    name: str
    key: NKey
    jwt: str

    def user(
        self,
        name: str,
        *,
        pub_allow: Sequence[str] | None = None,
        sub_allow: Sequence[str] | None = None,
        pub_deny: Sequence[str] = (),
        sub_deny: Sequence[str] = (),
        key: NKey | None = None,
    ) -> User:
        """A new user; ``None`` leaves publishing or subscribing unrestricted."""
        key = key or NKey.generate(Role.USER)
        nats: dict[str, Any] = {"type": "user"}
        nats.update(Permissions(pub_allow, sub_allow, pub_deny, sub_deny).claims())
        nats.update(subs=UNLIMITED, data=UNLIMITED, payload=UNLIMITED)
        return User(name, key, encode_jwt(self.key, key.public_key, name, nats))

    @property
    def revocations(self) -> dict[str, int]:
        """User public key → time before which (inclusive) its JWTs are refused."""
        found = decode_jwt(self.jwt)["nats"].get("revocations") or {}
        return {str(k): int(v) for k, v in found.items()}


@dataclass
class Operator:
    """A self-signed operator, its system account and the accounts it signed.

    nats-server needs a system account in operator mode to run JetStream, so
    one (``SYS``, without JetStream) is made with the operator and named in its
    JWT. ``server_config()`` makes a server trust them all; the server reads
    the accounts when it starts, so make them first (users can come later: the
    server checks a user JWT against its account at connect time).

    Pass ``key``, ``system_key`` and ``issued_at`` to rebuild an operator kept on
    disk: nats-server reloads changed accounts but not a changed operator JWT, so
    a re-signed operator must come out byte for byte the same.
    """

    name: str = "vigil-test"
    key: NKey = field(default_factory=lambda: NKey.generate(Role.OPERATOR))
    system_key: NKey = field(default_factory=lambda: NKey.generate(Role.ACCOUNT))
    issued_at: int | None = None
    accounts: list[Account] = field(default_factory=list, init=False)
    system_account: Account = field(init=False)
    jwt: str = field(default="", init=False)

    def __post_init__(self) -> None:
        self.system_account = self.account(
            "SYS", jetstream=False, key=self.system_key, issued_at=self.issued_at
        )
        self.jwt = encode_jwt(
            self.key,
            self.key.public_key,
            self.name,
            {"type": "operator", "system_account": self.system_account.key.public_key},
            issued_at=self.issued_at,
        )

    def account(
        self,
        name: str,
        *,
        jetstream: bool = True,
        key: NKey | None = None,
        revocations: Mapping[str, int] | None = None,
        issued_at: int | None = None,
    ) -> Account:
        """An account with unlimited connections and, if asked, unlimited JetStream.

        Signing one whose key the operator already signed replaces it (a
        re-issue, e.g. with a new revocation).
        """
        key = key or NKey.generate(Role.ACCOUNT)
        limits: dict[str, Any] = {
            "subs": UNLIMITED,
            "data": UNLIMITED,
            "payload": UNLIMITED,
            "imports": UNLIMITED,
            "exports": UNLIMITED,
            "wildcards": True,
            "conn": UNLIMITED,
            "leaf": UNLIMITED,
        }
        if jetstream:
            limits.update(
                mem_storage=UNLIMITED, disk_storage=UNLIMITED, streams=UNLIMITED, consumer=UNLIMITED
            )
        nats: dict[str, Any] = {"type": "account", "limits": limits}
        if revocations:
            nats["revocations"] = dict(sorted(revocations.items()))
        account = Account(
            name, key, encode_jwt(self.key, key.public_key, name, nats, issued_at=issued_at)
        )
        self.accounts = [a for a in self.accounts if a.key != key] + [account]
        return account

    def server_config(self) -> str:
        """nats-server configuration: trust this operator, resolve its accounts from memory."""
        preload = "\n".join(f"  {a.key.public_key}: {a.jwt}" for a in self.accounts)
        return (
            f"operator: {self.jwt}\n"
            f"system_account: {self.system_account.key.public_key}\n"
            f"resolver: MEMORY\nresolver_preload: {{\n{preload}\n}}\n"
        )
