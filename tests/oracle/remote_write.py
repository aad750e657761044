"""Prometheus remote write (protobuf + snappy), hand-encoded: the only way to give the
oracle staleness markers, which ``promtool`` backfill cannot write.

Snappy is written as literals only (valid, uncompressed), which keeps this dependency-free.
"""

from __future__ import annotations

import struct
import urllib.request

Labels = dict[str, str]


def _varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def write_request(series: list[tuple[Labels, list[tuple[int, float]]]]) -> bytes:
    body = b""
    for labels, samples in series:
        ts = b""
        for name, value in sorted(labels.items()):
            ts += _field(1, _field(1, name.encode()) + _field(2, value.encode()))
        for t, v in samples:
            sample = bytes([1 << 3 | 1]) + struct.pack("<d", v) + _varint(2 << 3) + _varint(t)
            ts += _field(2, sample)
        body += _field(1, ts)
    return body


def snappy_literal(data: bytes) -> bytes:
    out = _varint(len(data))
    pos = 0
    while pos < len(data):
        chunk = data[pos : pos + 65536]
        n = len(chunk) - 1
        out += (bytes([n << 2]) if n < 60 else bytes([61 << 2]) + struct.pack("<H", n)) + chunk
        pos += len(chunk)
    return out


def push(base: str, series: list[tuple[Labels, list[tuple[int, float]]]]) -> None:
    req = urllib.request.Request(  # noqa: S310 - our own loopback Prometheus
        f"{base}/api/v1/write",
        data=snappy_literal(write_request(series)),
        method="POST",
        headers={
            "Content-Encoding": "snappy",
            "Content-Type": "application/x-protobuf",
            "X-Prometheus-Remote-Write-Version": "0.1.0",
        },
    )
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
        resp.read()
