"""TLS for the http and tcp probers: client settings and the certificate gauges.

``TlsSettings`` is the part of Prometheus' ``tls_config`` a probe uses.
After a handshake, ``record_tls`` sets blackbox's gauges from the peer's
certificates:

- ``probe_ssl_earliest_cert_expiry``: earliest ``notAfter`` of the chain the
  server sent (Go's ``PeerCertificates``);
- ``probe_ssl_last_chain_expiry_timestamp_seconds``: earliest ``notAfter`` of
  the verified chain; without verification (``insecure_skip_verify``) Go's
  zero time, -62135596800, exactly as blackbox 0.23 reports it;
- ``probe_ssl_last_chain_info{fingerprint_sha256,subject,issuer,subjectalternative}``
  of the leaf, names in Go's ``pkix.Name.String()`` form;
- ``probe_tls_version_info{version="TLS 1.3"}``.

Python 3.11 has no public API for the peer's chain; ``ssl``'s C object has
``get_unverified_chain``/``get_verified_chain`` (public from 3.13) and they
are used when present, else the leaf alone stands for the chain. Certificates
are read by the small DER reader below (only the fields named above).
"""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agent.collectors.probe_base import ProbeResult

_ENCODING_DER = 2  # _ssl.ENCODING_DER: ssl does not re-export it

GO_ZERO_TIME = -62135596800.0
"""``time.Time{}.Unix()``: what blackbox reports for a chain it did not verify."""

_TLS_VERSIONS = {
    "TLSv1": "TLS 1.0",
    "TLSv1.1": "TLS 1.1",
    "TLSv1.2": "TLS 1.2",
    "TLSv1.3": "TLS 1.3",
}

# Go's pkix attribute names (crypto/x509/pkix attributeTypeNames).
_ATTR_NAMES = {
    "2.5.4.6": "C",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.3": "CN",
    "2.5.4.5": "SERIALNUMBER",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.9": "STREET",
    "2.5.4.17": "POSTALCODE",
}
_SAN_OID = "2.5.29.17"


class TlsSettings(BaseModel):
    """Client TLS (Prometheus' ``tls_config``, the fields probes use)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    insecure_skip_verify: bool = Field(
        default=False, description="Do not verify the server's certificate or name."
    )
    ca_file: str | None = Field(
        default=None, description="PEM file of CAs to verify with, instead of the system's."
    )
    cert_file: str | None = Field(default=None, description="PEM client certificate.")
    key_file: str | None = Field(default=None, description="PEM key of cert_file.")
    server_name: str | None = Field(
        default=None, description="Name to send (SNI) and verify; default: the target's host."
    )


def client_context(settings: TlsSettings) -> ssl.SSLContext:
    """An ``SSLContext`` for ``settings``; ``OSError``/``ssl.SSLError`` if a file is unusable."""
    ctx = ssl.create_default_context(cafile=settings.ca_file)
    if settings.insecure_skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if settings.cert_file:
        ctx.load_cert_chain(settings.cert_file, settings.key_file)
    return ctx


def record_tls(sslobj: Any, result: ProbeResult, *, verified: bool) -> None:
    """Set the TLS gauges from an ``ssl.SSLObject``/``SSLSocket`` after its handshake."""
    leaf = sslobj.getpeercert(binary_form=True)
    sent = _chain(sslobj, "get_unverified_chain") or ([leaf] if leaf else [])
    certs = _parse_all(sent)
    if certs:
        result.set("probe_ssl_earliest_cert_expiry", min(c.not_after for c in certs))
    version = _TLS_VERSIONS.get(sslobj.version() or "", "unknown")
    result.set("probe_tls_version_info", 1.0, {"version": version})
    last_chain = GO_ZERO_TIME
    if verified:
        verified_chain = _parse_all(_chain(sslobj, "get_verified_chain")) or certs
        if verified_chain:
            last_chain = min(c.not_after for c in verified_chain)
    result.set("probe_ssl_last_chain_expiry_timestamp_seconds", last_chain)
    if certs:
        leaf_cert = certs[0]
        result.set(
            "probe_ssl_last_chain_info",
            1.0,
            {
                "fingerprint_sha256": hashlib.sha256(leaf_cert.der).hexdigest(),
                "subject": leaf_cert.subject,
                "issuer": leaf_cert.issuer,
                "subjectalternative": ",".join(leaf_cert.dns_names),
            },
        )


def _parse_all(ders: list[bytes]) -> list[Cert]:
    """The certificates this reader understands; a TLS library accepted them all, so one it
    cannot read (an exotic encoding) costs only its own gauges, never the probe."""
    out = []
    for der in ders:
        try:
            out.append(Cert(der))
        except (ValueError, IndexError, UnicodeDecodeError):
            continue
    return out


def _chain(sslobj: Any, method: str) -> list[bytes]:
    # The C object's chain getters are private before 3.13; absent -> [] (leaf only).
    inner = getattr(sslobj, "_sslobj", sslobj)
    getter = getattr(inner, method, None)
    if getter is None:
        return []
    try:
        certs = getter() or []
        return [c.public_bytes(_ENCODING_DER) for c in certs]
    except (ValueError, ssl.SSLError, AttributeError):
        return []


# ---------------------------------------------------------------------- DER


class Cert:
    """The few fields of an X.509 certificate the gauges need, read from DER."""

    def __init__(self, der: bytes) -> None:
        self.der = der
        cert = _children(_one(der, 0x30))
        tbs = list(_children(cert[0][1]))
        i = 1 if tbs[0][0] == 0xA0 else 0  # [0] version is optional
        self.issuer = _name(tbs[i + 2][1])
        validity = _children(tbs[i + 3][1])
        self.not_after = _time(validity[1][0], validity[1][1])
        self.subject = _name(tbs[i + 4][1])
        self.dns_names: list[str] = []
        for tag, value in tbs[i + 6 :]:
            if tag == 0xA3:  # [3] extensions
                self.dns_names = _dns_names(_one(value, 0x30))


def _read(data: bytes, pos: int) -> tuple[int, bytes, int]:
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(data[pos : pos + n], "big")
        pos += n
    if pos + length > len(data):
        raise ValueError("truncated DER")
    return tag, data[pos : pos + length], pos + length


def _one(data: bytes, tag: int) -> bytes:
    got, value, _ = _read(data, 0)
    if got != tag:
        raise ValueError(f"DER tag {got:#x}, expected {tag:#x}")
    return value


def _iter(data: bytes) -> Iterator[tuple[int, bytes]]:
    pos = 0
    while pos < len(data):
        tag, value, pos = _read(data, pos)
        yield tag, value


def _children(data: bytes) -> list[tuple[int, bytes]]:
    return list(_iter(data))


def _oid(value: bytes) -> str:
    parts = [value[0] // 40, value[0] % 40]
    n = 0
    for byte in value[1:]:
        n = (n << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(n)
            n = 0
    return ".".join(map(str, parts))


def _time(tag: int, value: bytes) -> float:
    text = value.decode("ascii")
    fmt = "%y%m%d%H%M%SZ" if tag == 0x17 else "%Y%m%d%H%M%SZ"  # UTCTime | GeneralizedTime
    return datetime.strptime(text, fmt).replace(tzinfo=UTC).timestamp()


def _name(value: bytes) -> str:
    """Go's ``pkix.Name.String()``: RFC 2253, most specific RDN first."""
    rdns: list[str] = []
    for _, rdn in _iter(value):  # SET OF AttributeTypeAndValue
        parts = []
        for _, atv in _iter(rdn):
            (_, oid), (vtag, raw) = _children(atv)[:2]
            key = _oid(oid)
            name = _ATTR_NAMES.get(key)
            if name is None:
                parts.append(f"{key}=#{vtag:02x}{len(raw):02x}{raw.hex()}")
            else:
                text = raw.decode("utf-16-be" if vtag == 0x1E else "utf-8", "replace")
                parts.append(f"{name}={_escape(text)}")
        rdns.append("+".join(parts))
    return ",".join(reversed(rdns))


def _escape(text: str) -> str:
    out = []
    for i, ch in enumerate(text):
        if ch in ',+"\\<>;' or (i == 0 and ch in " #") or (i == len(text) - 1 and ch == " "):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def _dns_names(extensions: bytes) -> list[str]:
    for _, ext in _iter(extensions):
        parts = _children(ext)
        if _oid(parts[0][1]) != _SAN_OID:
            continue
        names = _one(parts[-1][1], 0x30)  # extnValue OCTET STRING wraps GeneralNames
        return [v.decode("ascii", "replace") for tag, v in _iter(names) if tag == 0x82]
    return []
