"""DNS messages (RFC 1035) for the dns prober: encode a query, decode a response.

Focused on what a probe needs: one question out, every section counted and
each record printed as miekg/dns prints it (``RR.text``, what blackbox's
``validate_*_rrs`` expressions are matched against)::

    example.org.\t300\tIN\tA\t93.184.216.34

Rdata is printed for A, AAAA, NS, CNAME, PTR, MX, TXT, SOA and SRV; other
types in RFC 3597's generic form (``\\# <len> <hex>``). ``encode_message``
and ``encode_name`` also build responses (the tests' DNS server uses them).

Exceptions::

    ValueError
     └── DnsFormatError   a message that does not parse (truncated, bad pointer, loop)
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

TYPES: dict[str, int] = {
    "A": 1,
    "NS": 2,
    "CNAME": 5,
    "SOA": 6,
    "PTR": 12,
    "MX": 15,
    "TXT": 16,
    "AAAA": 28,
    "SRV": 33,
    "NAPTR": 35,
    "DS": 43,
    "RRSIG": 46,
    "DNSKEY": 48,
    "HTTPS": 65,
    "CAA": 257,
    "ANY": 255,
}
TYPE_NAMES = {v: k for k, v in TYPES.items()}
CLASSES: dict[str, int] = {"IN": 1, "CH": 3, "HS": 4, "NONE": 254, "ANY": 255}
CLASS_NAMES = {v: k for k, v in CLASSES.items()}
RCODES: dict[str, int] = {
    "NOERROR": 0,
    "FORMERR": 1,
    "SERVFAIL": 2,
    "NXDOMAIN": 3,
    "NOTIMP": 4,
    "REFUSED": 5,
    "YXDOMAIN": 6,
    "YXRRSET": 7,
    "NXRRSET": 8,
    "NOTAUTH": 9,
    "NOTZONE": 10,
}
RCODE_NAMES = {v: k for k, v in RCODES.items()}

FLAG_QR = 0x8000
FLAG_TC = 0x0200
FLAG_RD = 0x0100
FLAG_RA = 0x0080
_HEADER = struct.Struct(">HHHHHH")
_MAX_POINTERS = 64


class DnsFormatError(ValueError):
    """The bytes are not a DNS message this decoder can read."""


@dataclass(frozen=True, slots=True)
class Question:
    name: str
    type: int
    cls: int = 1


@dataclass(frozen=True, slots=True)
class Record:
    """A resource record; ``rdata`` as on the wire, ``text`` as miekg/dns prints it."""

    name: str
    type: int
    cls: int
    ttl: int
    rdata: bytes
    text: str = ""


@dataclass(slots=True)
class Message:
    id: int
    flags: int
    questions: list[Question] = field(default_factory=list)
    answer: list[Record] = field(default_factory=list)
    authority: list[Record] = field(default_factory=list)
    additional: list[Record] = field(default_factory=list)

    @property
    def rcode(self) -> int:
        return self.flags & 0x000F

    @property
    def truncated(self) -> bool:
        return bool(self.flags & FLAG_TC)


def fqdn(name: str) -> str:
    return name if name.endswith(".") else name + "."


def encode_name(name: str) -> bytes:
    """Wire form of ``name`` (no compression); ``ValueError`` for an over-long label."""
    out = bytearray()
    if name in (".", ""):
        return b"\0"  # the root
    for label in fqdn(name).split(".")[:-1]:
        raw = label.encode("idna") if label and not label.isascii() else label.encode()
        if not raw or len(raw) > 63:
            raise ValueError(f"invalid DNS name {name!r}: empty or over-long label")
        out += bytes([len(raw)]) + raw
    out.append(0)
    if len(out) > 255:
        raise ValueError(f"invalid DNS name {name!r}: longer than 255 bytes")
    return bytes(out)


def encode_query(
    msg_id: int, name: str, qtype: int, qclass: int = 1, *, recursion_desired: bool = True
) -> bytes:
    flags = FLAG_RD if recursion_desired else 0
    return (
        _HEADER.pack(msg_id, flags, 1, 0, 0, 0)
        + encode_name(name)
        + struct.pack(">HH", qtype, qclass)
    )


def encode_message(msg: Message) -> bytes:
    out = bytearray(
        _HEADER.pack(
            msg.id,
            msg.flags,
            len(msg.questions),
            len(msg.answer),
            len(msg.authority),
            len(msg.additional),
        )
    )
    for q in msg.questions:
        out += encode_name(q.name) + struct.pack(">HH", q.type, q.cls)
    for rr in (*msg.answer, *msg.authority, *msg.additional):
        out += encode_name(rr.name) + struct.pack(">HHIH", rr.type, rr.cls, rr.ttl, len(rr.rdata))
        out += rr.rdata
    return bytes(out)


def decode_message(data: bytes) -> Message:
    if len(data) < _HEADER.size:
        raise DnsFormatError("message shorter than its header")
    msg_id, flags, qd, an, ns, ar = _HEADER.unpack_from(data)
    msg = Message(msg_id, flags)
    pos = _HEADER.size
    for _ in range(qd):
        name, pos = _name(data, pos)
        qtype, qclass = _unpack(">HH", data, pos)
        pos += 4
        msg.questions.append(Question(name, qtype, qclass))
    for section, count in ((msg.answer, an), (msg.authority, ns), (msg.additional, ar)):
        for _ in range(count):
            rr, pos = _record(data, pos)
            section.append(rr)
    return msg


def _unpack(fmt: str, data: bytes, pos: int) -> tuple[int, ...]:
    try:
        return struct.unpack_from(fmt, data, pos)
    except struct.error as exc:
        raise DnsFormatError("message truncated") from exc


def _name(data: bytes, pos: int) -> tuple[str, int]:
    """The name at ``pos`` (following compression pointers) and the offset after it."""
    labels: list[str] = []
    end = -1
    jumps = 0
    while True:
        if pos >= len(data):
            raise DnsFormatError("name runs past the message")
        length = data[pos]
        if length & 0xC0 == 0xC0:
            if pos + 1 >= len(data):
                raise DnsFormatError("truncated compression pointer")
            jumps += 1
            if jumps > _MAX_POINTERS:
                raise DnsFormatError("compression pointer loop")
            if end < 0:
                end = pos + 2
            pos = ((length & 0x3F) << 8) | data[pos + 1]
            continue
        if length & 0xC0:
            raise DnsFormatError(f"unsupported label type {length:#x}")
        pos += 1
        if length == 0:
            break
        if pos + length > len(data):
            raise DnsFormatError("label runs past the message")
        labels.append(_escape_label(data[pos : pos + length]))
        pos += length
    return ".".join(labels) + ".", (end if end >= 0 else pos)


def _escape_label(raw: bytes) -> str:
    out = []
    for b in raw:
        ch = chr(b)
        if ch in '.\\"() ;@$':
            out.append("\\" + ch)
        elif 0x21 <= b <= 0x7E:
            out.append(ch)
        else:
            out.append(f"\\{b:03d}")
    return "".join(out)


def _record(data: bytes, pos: int) -> tuple[Record, int]:
    name, pos = _name(data, pos)
    rtype, rclass, ttl, rdlen = _unpack(">HHIH", data, pos)
    pos += 10
    if pos + rdlen > len(data):
        raise DnsFormatError("rdata runs past the message")
    rdata = data[pos : pos + rdlen]
    text = _rdata_text(data, pos, rtype, rdata)
    type_name = TYPE_NAMES.get(rtype, f"TYPE{rtype}")
    class_name = CLASS_NAMES.get(rclass, f"CLASS{rclass}")
    head = f"{name}\t{ttl}\t{class_name}\t{type_name}\t"
    return Record(name, rtype, rclass, ttl, rdata, head + text), pos + rdlen


def _rdata_text(data: bytes, pos: int, rtype: int, rdata: bytes) -> str:
    try:
        if rtype == 1 and len(rdata) == 4:
            return str(ipaddress.IPv4Address(rdata))
        if rtype == 28 and len(rdata) == 16:
            return str(ipaddress.IPv6Address(rdata))
        if rtype in (2, 5, 12):
            return _name(data, pos)[0]
        if rtype == 15:
            (pref,) = _unpack(">H", data, pos)
            return f"{pref} {_name(data, pos + 2)[0]}"
        if rtype == 16:
            return " ".join(_txt_strings(rdata))
        if rtype == 6:
            mname, p = _name(data, pos)
            rname, p = _name(data, p)
            serial, refresh, retry, expire, minimum = _unpack(">IIIII", data, p)
            return f"{mname} {rname} {serial} {refresh} {retry} {expire} {minimum}"
        if rtype == 33:
            prio, weight, port = _unpack(">HHH", data, pos)
            return f"{prio} {weight} {port} {_name(data, pos + 6)[0]}"
    except DnsFormatError:
        pass
    return f"\\# {len(rdata)} {rdata.hex()}" if rdata else "\\# 0"


def _txt_strings(rdata: bytes) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(rdata):
        n = rdata[pos]
        raw = rdata[pos + 1 : pos + 1 + n]
        pos += 1 + n
        text = "".join(
            "\\" + chr(b) if chr(b) in '"\\' else chr(b) if 0x20 <= b <= 0x7E else f"\\{b:03d}"
            for b in raw
        )
        out.append(f'"{text}"')
    return out


def soa_serial(rr: Record) -> int | None:
    """The serial of an SOA record, read from its printed form (its names may be compressed)."""
    if rr.type != TYPES["SOA"]:
        return None
    fields = rr.text.split("\t")[-1].split()
    return int(fields[2]) if len(fields) == 7 else None
