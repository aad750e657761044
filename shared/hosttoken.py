"""Reversible mapping between a host name and one NATS subject token.

Consumers take the host from the subject (``vigil.metrics.<token>``), never from
the payload, so the mapping must be a bijection: ``decode(encode(h)) == h`` for
every non-empty ``str`` that UTF-8 can encode, and ``encode(decode(t)) == t`` for
every token ``decode`` accepts (one host, one subject: a host cannot hide behind
a second spelling of its own token).

Scheme, applied to the UTF-8 bytes of the name:

- ``A-Z a-z 0-9 _ -`` stay as they are;
- ``.`` becomes ``/`` (FQDNs are the common case, and they stay readable:
  ``web-1.example.com`` -> ``web-1/example/com``);
- every other byte, ``/`` and ``=`` included, becomes ``=XX`` with upper-case hex
  (quoted-printable style: ``db 1`` -> ``db=201``).

Why ``/`` and ``=``: a token must not contain ``.``, ``*``, ``>`` or whitespace,
and the same token is used as a key in the NATS KV ``agents`` bucket, whose keys
allow only ``[-/_=.A-Za-z0-9]``; ``/`` and ``=`` are the two characters legal in
both places that host names practically never contain. So every token matches
``^(?:[A-Za-z0-9_/-]|=[0-9A-F]{2})+$``: printable ASCII, subject- and KV-safe.

Host names are case-sensitive here: ``Web-1`` and ``web-1`` are two hosts. The
agent decides its host name; normalising case is its job, not the wire's.

Errors: ``encode`` raises ``ValueError`` for an empty name or one UTF-8 cannot
encode (a lone surrogate): that is a local configuration problem, and a plain
``ValueError`` lets pydantic validators call ``encode`` directly. ``decode``
raises ``DecodeError(reason="subject")`` for anything that is not a token
``encode`` could have produced, because its input comes from the bus.
"""

from __future__ import annotations

import re

from shared.errors import DecodeError

_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_DOT = 0x2E
# Names made only of these characters need no escaping: the common case takes
# one regex match and one str.replace instead of a loop over bytes.
_PLAIN_HOST = re.compile(r"[A-Za-z0-9_.-]+")
_PLAIN_TOKEN = re.compile(r"[A-Za-z0-9_/-]+")
_TOKEN = re.compile(r"(?:[A-Za-z0-9_/-]|=[0-9A-F]{2})+")


def encode(host: str) -> str:
    """Return the subject token for ``host`` (a non-empty name, any Unicode)."""
    if not host:
        raise ValueError("cannot encode host name: it is empty")
    if _PLAIN_HOST.fullmatch(host):
        return host.replace(".", "/")
    try:
        raw = host.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"cannot encode host name {host!r}: not valid Unicode text") from exc
    out: list[str] = []
    for byte in raw:
        if byte in _SAFE:
            out.append(chr(byte))
        elif byte == _DOT:
            out.append("/")
        else:
            out.append(f"={byte:02X}")
    return "".join(out)


def decode(token: str) -> str:
    """Return the host name that ``token`` stands for.

    Raises ``DecodeError(reason="subject")`` unless ``token`` is exactly what
    ``encode`` returns for some host.
    """
    if _PLAIN_TOKEN.fullmatch(token):
        return token.replace("/", ".")
    if not _TOKEN.fullmatch(token):
        raise DecodeError(
            f"cannot decode host token {_shorten(token)!r}: not a host token", reason="subject"
        )
    raw = bytearray()
    pos = 0
    while pos < len(token):
        char = token[pos]
        if char == "=":
            raw.append(int(token[pos + 1 : pos + 3], 16))
            pos += 3
        else:
            raw.append(_DOT if char == "/" else ord(char))
            pos += 1
    try:
        host = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(
            f"cannot decode host token {_shorten(token)!r}: escapes are not UTF-8", reason="subject"
        ) from exc
    # Escaping a byte that needs none (``=41`` for ``A``, ``=2E`` for ``.``)
    # would give one host two subjects; only the canonical spelling is accepted.
    if encode(host) != token:
        raise DecodeError(
            f"cannot decode host token {_shorten(token)!r}: not in canonical form",
            reason="subject",
        )
    return host


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
