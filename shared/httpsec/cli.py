"""``vigil auth``: make the hashes the HTTP servers' ``auth`` section stores.

``vigil auth hash`` reads a password (from stdin when it is not a terminal,
else prompts twice without echo) and prints its hash; ``vigil auth token``
makes a random bearer token and prints it once, with its hash. With
``--name``/``--role`` each also prints the YAML entry to paste under
``visualization.auth`` or ``notifier.auth``. Exit status 0, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TextIO

from shared.httpsec.hashing import hash_secret, new_token


def _read_secret(stdin: TextIO) -> str:
    if not stdin.isatty():
        return stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Again: "):
        raise SystemExit("vigil auth hash: the passwords differ")
    return first


def _entry(kind: str, name: str | None, role: str, hashed: str) -> str:
    if name is None:
        return ""
    key = "users" if kind == "user" else "tokens"
    field = "password_hash" if kind == "user" else "token_hash"
    return f"\n# under visualization.auth.{key} or notifier.auth.{key}:\n- name: {name}\n  {field}: '{hashed}'\n  role: {role}\n"


def main(
    argv: list[str] | None = None, *, stdin: TextIO | None = None, out: TextIO | None = None
) -> int:
    parser = argparse.ArgumentParser(prog="vigil auth", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, what in (
        ("hash", "hash a password read from stdin or a prompt"),
        ("token", "make a bearer token and its hash"),
    ):
        p = sub.add_parser(name, help=what, description=what)
        p.add_argument("--name", help="user or token name: also print the config entry")
        p.add_argument(
            "--role", choices=("read", "admin"), default="read", help="role of the entry"
        )
    args = parser.parse_args(argv)
    stdin = stdin if stdin is not None else sys.stdin
    out = out if out is not None else sys.stdout
    if args.command == "hash":
        secret = _read_secret(stdin)
        if not secret:
            parser.error("the password is empty")
        hashed = hash_secret(secret)
        out.write(f"{hashed}\n{_entry('user', args.name, args.role, hashed)}")
        return 0
    token = new_token()
    hashed = hash_secret(token)
    out.write(
        f"token: {token}\n(shown once: give it to the client; the server keeps only the hash)\n"
        f"hash: {hashed}\n{_entry('token', args.name, args.role, hashed)}"
    )
    return 0
