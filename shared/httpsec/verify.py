"""Check an ``Authorization`` header against the configured users and tokens.

``Authenticator.authenticate`` takes the header's value and returns who it is
(a ``Principal`` with a role) or raises ``Unauthorized``. Verifying a hash costs
tens of milliseconds of CPU (``hashing``), so:

* it runs in a worker thread, never on the event loop;
* outcomes, good and bad, are cached by an HMAC of the header under a key made
  per process (the cache holds no secret a memory dump could replay offline
  faster than the stored hashes), at most ``cache_size`` entries, least
  recently used evicted;
* concurrent requests with the same header wait for one verification.

An Authenticator is made for one configuration: a reload makes a new one, so
a removed user or token stops working at once.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

from shared.config.http import HttpAuthConfig
from shared.httpsec.errors import Unauthorized
from shared.httpsec.hashing import ParsedHash, parse_hash, verify_secret
from shared.httpsec.policy import Role

NO_CREDENTIALS = "cannot authenticate: no credentials (use HTTP basic auth or a bearer token)"
BAD_CREDENTIALS = "cannot authenticate: invalid user name, password or token"
MALFORMED = "cannot authenticate: malformed Authorization header (expected Basic or Bearer)"


@dataclass(frozen=True)
class Principal:
    """Who made a request: a basic-auth user or a named token, and its role."""

    kind: Literal["user", "token"]
    name: str
    role: Role


@dataclass(frozen=True)
class _Entry:
    name: str
    hashed: ParsedHash
    role: Role


class Authenticator:
    """Verifies credentials of one ``HttpAuthConfig``; safe to share between requests."""

    def __init__(self, config: HttpAuthConfig, *, cache_size: int = 4096) -> None:
        self.enabled = config.enabled
        self._users = {
            u.name: _Entry(u.name, parse_hash(u.password_hash.get_secret_value()), u.role)
            for u in config.users
        }
        self._tokens = [
            _Entry(t.name, parse_hash(t.token_hash.get_secret_value()), t.role)
            for t in config.tokens
        ]
        self._cache_size = cache_size
        self._cache: OrderedDict[bytes, Principal | None] = OrderedDict()
        self._pending: dict[bytes, asyncio.Future[Principal | None]] = {}
        self._key = secrets.token_bytes(32)
        self.verifications = 0  # hash computations made: what the cache saves

    async def authenticate(self, authorization: str | None) -> Principal:
        """The principal of an ``Authorization`` header value; Unauthorized when none matches."""
        if not authorization or not authorization.strip():
            raise Unauthorized(NO_CREDENTIALS)
        digest = hmac.new(self._key, authorization.encode("utf-8", "replace"), hashlib.sha256)
        key = digest.digest()
        if key in self._cache:
            self._cache.move_to_end(key)
            found = self._cache[key]
        elif key in self._pending:
            found = await asyncio.shield(self._pending[key])
        else:
            found = await self._verify_once(key, authorization)
        if found is None:
            raise Unauthorized(BAD_CREDENTIALS)
        return found

    async def _verify_once(self, key: bytes, authorization: str) -> Principal | None:
        future: asyncio.Future[Principal | None] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            found = await asyncio.to_thread(self.verify, authorization)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody else must log it
            raise
        finally:
            del self._pending[key]
        future.set_result(found)
        self._cache[key] = found
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return found

    def verify(self, authorization: str) -> Principal | None:
        """Verify a header synchronously, without the cache (CPU-bound: call from a thread).

        Raises Unauthorized for a malformed header.
        """
        scheme, _, value = authorization.strip().partition(" ")
        value = value.strip()
        match scheme.lower():
            case "bearer" if value:
                return self._verify_token(value)
            case "basic" if value:
                user, password = _basic(value)
                return self._verify_user(user, password)
        raise Unauthorized(MALFORMED)

    def _verify_token(self, token: str) -> Principal | None:
        found = None
        for entry in self._tokens:  # every entry: the time taken does not say which matched
            self.verifications += 1
            if verify_secret(token, entry.hashed) and found is None:
                found = Principal("token", entry.name, entry.role)
        return found

    def _verify_user(self, user: str, password: str) -> Principal | None:
        entry = self._users.get(user)
        if entry is None:
            if self._users:  # same work as a known user: the time does not reveal who exists
                self.verifications += 1
                verify_secret(password, next(iter(self._users.values())).hashed)
            return None
        self.verifications += 1
        if verify_secret(password, entry.hashed):
            return Principal("user", entry.name, entry.role)
        return None


def _basic(value: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError) as exc:
        raise Unauthorized(MALFORMED) from exc
    user, sep, password = decoded.partition(":")
    if not sep or not user:
        raise Unauthorized(MALFORMED)
    return user, password
