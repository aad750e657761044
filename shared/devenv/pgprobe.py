"""A readiness probe that speaks just enough of the postgres wire protocol (3.0).

A few lines of the protocol keep the server code free of a driver and usable
from inside a running event loop. The probe logs in as ``postgres`` to the
``postgres`` database with ``trust`` authentication only: it is for the local
development servers, never for a real one.
"""

from __future__ import annotations

import socket
import struct

from shared.errors import DevEnvError

_PROTOCOL_3_0 = 196608


class NotReadyError(DevEnvError):
    """The server answered but cannot run a query yet (starting up, shutting down)."""


def query_one(port: int, sql: str, *, host: str = "127.0.0.1") -> str | None:
    """First column of the first row of ``sql``, as user postgres, on a fresh connection.

    Raises :class:`NotReadyError` when the server answers with an error or asks
    for a password, and :class:`OSError` when it cannot be reached or hangs up.
    Blocks for at most about two seconds per socket operation.
    """
    with socket.create_connection((host, port), timeout=2.0) as sock:
        params = b"user\0postgres\0database\0postgres\0\0"
        sock.sendall(struct.pack("!ii", 8 + len(params), _PROTOCOL_3_0) + params)
        query = sql.encode() + b"\0"
        sent, value = False, None
        while True:
            kind, body = _read_message(sock)
            if kind == b"E":
                fields = {part[:1]: part[1:] for part in body.split(b"\0") if part}
                raise NotReadyError(fields.get(b"M", b"error").decode(errors="replace"))
            if kind == b"R" and body[:4] != b"\0\0\0\0":
                raise NotReadyError("the server asks for a password; trust authentication expected")
            if kind == b"D" and value is None and body[:2] != b"\0\0":
                (length,) = struct.unpack("!i", body[2:6])
                value = None if length < 0 else body[6 : 6 + length].decode(errors="replace")
            if kind == b"Z":
                if sent:
                    sock.sendall(b"X\0\0\0\4")  # Terminate: no "unexpected EOF" in the server log
                    return value
                sock.sendall(b"Q" + struct.pack("!i", 4 + len(query)) + query)
                sent = True


def _read_message(sock: socket.socket) -> tuple[bytes, bytes]:
    header = _read_exactly(sock, 5)
    (length,) = struct.unpack("!i", header[1:])
    return header[:1], _read_exactly(sock, length - 4)


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionResetError("the server closed the connection")
        data += chunk
    return data
