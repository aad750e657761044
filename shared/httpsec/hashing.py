"""Salted password and token hashes in a self-describing string (PHC string format).

Two schemes, both from the standard library::

    $scrypt$ln=15,r=8,p=1$<salt>$<hash>        made by hash_secret() (the default)
    $pbkdf2-sha256$i=600000$<salt>$<hash>      accepted, for hashes made elsewhere

``<salt>`` and ``<hash>`` are base64 without padding (PHC's B64). The cost
parameters travel with the hash, so raising the default later leaves old hashes
valid. ``verify_secret`` recomputes the key with the stored parameters and
compares in constant time (``hmac.compare_digest``); one verification costs tens
of milliseconds of CPU on purpose, so callers cache the outcome (see
``shared.httpsec.verify``) and run it off the event loop.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Final

from shared.httpsec.errors import HashFormatError

SCRYPT_LN: Final = 15  # N = 2**15, r = 8: 32 MiB and ~50 ms per verification
SCRYPT_R: Final = 8
SCRYPT_P: Final = 1
PBKDF2_MIN_ITERATIONS: Final = 10_000
SALT_BYTES: Final = 16
KEY_BYTES: Final = 32
TOKEN_PREFIX: Final = "vgl_"  # noqa: S105 - a public prefix, not a secret

_MAX_LN: Final = 20  # 2**20 * 8 * 128 bytes = 1 GiB: anything above is a typo or an attack
_MAX_PBKDF2_ITERATIONS: Final = 10_000_000


@dataclass(frozen=True)
class ParsedHash:
    """A hash string taken apart; ``params`` are the scheme's cost parameters."""

    scheme: str
    params: dict[str, int]
    salt: bytes
    key: bytes


def _b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii").rstrip("=")


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise HashFormatError(f"cannot parse the hash: its {what} is not base64") from exc


def _params(text: str, names: tuple[str, ...]) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if not sep or name not in names or not value.isdigit() or name in out:
            raise HashFormatError(
                f"cannot parse the hash: parameter {name[:20]!r} is not one of {', '.join(names)}"
            )
        out[name] = int(value)
    missing = [n for n in names if n not in out]
    if missing:
        raise HashFormatError(f"cannot parse the hash: missing parameter {', '.join(missing)}")
    return out


def parse_hash(text: str) -> ParsedHash:
    """Take a hash string apart; HashFormatError says what is wrong (never quoting the hash)."""
    parts = text.strip().split("$")
    if len(parts) != 5 or parts[0] != "":
        raise HashFormatError(
            "cannot parse the hash: expected $scrypt$ln=..,r=..,p=..$SALT$HASH or "
            "$pbkdf2-sha256$i=..$SALT$HASH (make one with 'vigil auth hash')"
        )
    _, scheme, raw_params, raw_salt, raw_key = parts
    if scheme == "scrypt":
        params = _params(raw_params, ("ln", "r", "p"))
        if not 1 <= params["ln"] <= _MAX_LN or params["r"] < 1 or params["p"] < 1:
            raise HashFormatError("cannot parse the hash: scrypt parameters out of range")
    elif scheme == "pbkdf2-sha256":
        params = _params(raw_params, ("i",))
        if not PBKDF2_MIN_ITERATIONS <= params["i"] <= _MAX_PBKDF2_ITERATIONS:
            raise HashFormatError(
                f"cannot parse the hash: pbkdf2-sha256 needs {PBKDF2_MIN_ITERATIONS} to "
                f"{_MAX_PBKDF2_ITERATIONS} iterations"
            )
    else:
        raise HashFormatError(
            f"cannot parse the hash: unknown scheme {scheme[:20]!r} (scrypt or pbkdf2-sha256)"
        )
    salt = _b64decode(raw_salt, "salt")
    key = _b64decode(raw_key, "hash")
    if len(salt) < 8 or len(key) < 16:
        raise HashFormatError("cannot parse the hash: salt or hash too short")
    return ParsedHash(scheme, params, salt, key)


def _derive(parsed: ParsedHash, secret: bytes) -> bytes:
    if parsed.scheme == "scrypt":
        n, r, p = 1 << parsed.params["ln"], parsed.params["r"], parsed.params["p"]
        return hashlib.scrypt(
            secret,
            salt=parsed.salt,
            n=n,
            r=r,
            p=p,
            maxmem=256 * r * n + (1 << 20),
            dklen=len(parsed.key),
        )
    return hashlib.pbkdf2_hmac(
        "sha256", secret, parsed.salt, parsed.params["i"], dklen=len(parsed.key)
    )


def hash_secret(secret: str, *, ln: int = SCRYPT_LN) -> str:
    """A new scrypt hash of ``secret`` with a random salt."""
    salt = secrets.token_bytes(SALT_BYTES)
    parsed = ParsedHash("scrypt", {"ln": ln, "r": SCRYPT_R, "p": SCRYPT_P}, salt, b"\0" * KEY_BYTES)
    key = _derive(parsed, secret.encode("utf-8"))
    return f"$scrypt$ln={ln},r={SCRYPT_R},p={SCRYPT_P}${_b64encode(salt)}${_b64encode(key)}"


def verify_secret(secret: str, stored: str | ParsedHash) -> bool:
    """Whether ``secret`` matches the stored hash; the comparison is constant-time."""
    parsed = parse_hash(stored) if isinstance(stored, str) else stored
    return hmac.compare_digest(_derive(parsed, secret.encode("utf-8")), parsed.key)


def new_token() -> str:
    """A random bearer token (256 bits), prefixed so secret scanners recognise it."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)
