"""Real local servers the probe tests (and the blackbox compatibility test) probe.

Thread-based, so a synchronous caller (blackbox_exporter's HTTP API read with
urllib) and an async one (our probers) can share them. Every server binds
127.0.0.1 port 0 and is shut down and closed by its context manager.

- ``http_servers(cert)``: one HTTP and one HTTPS server with the routes of
  ``Handler`` (HTTP/1.1, so ``probe_http_version`` is 1.1);
- ``dns_server(zone)``: UDP and TCP on one port, answering from ``zone``;
- ``silent_listener()``: accepts TCP connections and never answers (a hanging target);
- ``line_server(cert)``: a line dialogue with STARTTLS, SMTP-like, for tcp's query_response;
- ``make_cert(tmp)``: a self-signed certificate for localhost/127.0.0.1 made by ``openssl``.

The tests at the bottom check the servers themselves and the DNS codec on
bytes written by hand.
"""

from __future__ import annotations

import gzip
import json
import shutil
import socket
import socketserver
import ssl
import struct
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from agent.collectors.probe_dnswire import (
    CLASSES,
    FLAG_QR,
    FLAG_RA,
    RCODES,
    TYPES,
    Message,
    Question,
    Record,
    decode_message,
    encode_message,
    encode_name,
)

BODY = b"hello world"
LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"
LAST_MODIFIED_UNIX = 1445412480.0
ECHOED = frozenset({"Host", "X-Probe", "Content-Type", "Authorization"})


class Handler(BaseHTTPRequestHandler):
    """Routes: /ok, /status/<code>, /redirect/<n>, /chunked, /gzip, /echo, /text?t=..."""

    protocol_version = "HTTP/1.1"
    server_version = "vigil-test"

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test output is not the place for access logs."""

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_POST(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        path = parts.path
        if path == "/ok":
            self._send(200, BODY, [("Last-Modified", LAST_MODIFIED)])
        elif path.startswith("/status/"):
            self._send(int(path.rsplit("/", 1)[1]), b"")
        elif path.startswith("/redirect/"):
            n = int(path.rsplit("/", 1)[1])
            target = "/ok" if n <= 1 else f"/redirect/{n - 1}"
            self._send(302, b"", [("Location", target)])
        elif path == "/chunked":
            self._chunked([b"hello ", b"chunked ", b"world"])
        elif path == "/gzip":
            if "gzip" in (self.headers.get("Accept-Encoding") or ""):
                self._send(200, gzip.compress(BODY * 10), [("Content-Encoding", "gzip")])
            else:
                self._send(200, BODY * 10)
        elif path == "/echo":
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode()
            # Only headers the tests set: a client's own (User-Agent...) would vary the length.
            headers = {k: v for k, v in self.headers.items() if k in ECHOED}
            echo = {"method": self.command, "headers": headers, "body": body}
            self._send(200, json.dumps(echo).encode(), [("Content-Type", "application/json")])
        elif path == "/text":
            text = parse_qs(parts.query).get("t", [""])[0]
            self._send(200, text.encode(), [("X-Text", text)])
        else:
            self._send(404, b"not found")

    def _send(self, code: int, body: bytes, headers: list[tuple[str, str]] | None = None) -> None:
        self.send_response(code)
        for key, value in headers or []:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _chunked(self, parts: list[bytes]) -> None:
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for part in parts:
            self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")


@dataclass(frozen=True)
class Cert:
    cert: Path
    key: Path


@dataclass(frozen=True)
class HttpServers:
    http: str  # "http://127.0.0.1:<port>"
    https: str | None  # "https://127.0.0.1:<port>", when a certificate was given

    @property
    def http_hostport(self) -> str:
        return self.http.removeprefix("http://")

    @property
    def https_hostport(self) -> str:
        assert self.https is not None
        return self.https.removeprefix("https://")


def make_cert(directory: Path) -> Cert:
    """A self-signed CA-capable certificate for localhost and 127.0.0.1 (30 days)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl CLI is not installed: cannot make a test certificate")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "30",
            "-subj",
            "/O=Vigil Test/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return Cert(cert, key)


@contextmanager
def _serving(server: socketserver.BaseServer) -> Iterator[None]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


class _QuietHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hangs up mid-response (a TLS probe failing) is not a test failure."""


@contextmanager
def http_servers(cert: Cert | None = None) -> Iterator[HttpServers]:
    plain = _QuietHTTPServer(("127.0.0.1", 0), Handler)
    with _serving(plain):
        http_url = f"http://127.0.0.1:{plain.server_address[1]}"
        if cert is None:
            yield HttpServers(http_url, None)
            return
        secure = _QuietHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert.cert, cert.key)
        secure.socket = ctx.wrap_socket(secure.socket, server_side=True)
        with _serving(secure):
            yield HttpServers(http_url, f"https://127.0.0.1:{secure.server_address[1]}")


@contextmanager
def silent_listener() -> Iterator[str]:
    """``127.0.0.1:<port>`` that completes TCP handshakes (backlog) and never says a word."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"127.0.0.1:{sock.getsockname()[1]}"


@contextmanager
def line_server(cert: Cert) -> Iterator[str]:
    """``127.0.0.1:<port>`` speaking lines: greets with ``220 ready``; ``EHLO x`` ->
    ``250 hello x``; ``ECHO x`` -> ``x``; ``STARTTLS`` -> ``220 go ahead`` then TLS;
    ``PING`` -> ``PONG`` (``PONG tls`` once upgraded); ``QUIT`` -> ``221 bye`` and close."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert.cert, cert.key)

    class Lines(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            sock: socket.socket = self.request
            sock.settimeout(10)
            tls = False
            stream = sock.makefile("rwb", buffering=0)
            stream.write(b"220 ready\r\n")
            try:
                while line := stream.readline():
                    word, _, arg = line.decode().strip().partition(" ")
                    if word == "EHLO":
                        stream.write(f"250 hello {arg}\r\n".encode())
                    elif word == "ECHO":
                        stream.write(f"{arg}\r\n".encode())
                    elif word == "STARTTLS" and not tls:
                        stream.write(b"220 go ahead\r\n")
                        sock = ctx.wrap_socket(sock, server_side=True)
                        stream = sock.makefile("rwb", buffering=0)
                        tls = True
                    elif word == "PING":
                        stream.write(b"PONG tls\r\n" if tls else b"PONG\r\n")
                    elif word == "QUIT":
                        stream.write(b"221 bye\r\n")
                        return
            except (OSError, ssl.SSLError):
                return  # the client hung up or failed its handshake: its test says so
            finally:
                stream.close()
                sock.close()

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Lines)
    server.daemon_threads = True
    with _serving(server):
        yield f"127.0.0.1:{server.server_address[1]}"


# ---------------------------------------------------------------------- DNS

Zone = dict[tuple[str, str], list[Record]]
"""(name with trailing dot, type name) -> records; names not in it get NXDOMAIN."""


def a_record(name: str, address: str, ttl: int = 300) -> Record:
    return Record(name, TYPES["A"], CLASSES["IN"], ttl, socket.inet_aton(address))


def soa_record(name: str, serial: int) -> Record:
    rdata = (
        encode_name(f"ns.{name}")
        + encode_name(f"hostmaster.{name}")
        + struct.pack(">IIIII", serial, 3600, 600, 86400, 60)
    )
    return Record(name, TYPES["SOA"], CLASSES["IN"], 3600, rdata)


def answer(zone: Zone, query: bytes) -> bytes:
    msg = decode_message(query)
    q = msg.questions[0]
    type_name = next((k for k, v in TYPES.items() if v == q.type), "")
    known = {name for name, _ in zone}
    records = zone.get((q.name.lower(), type_name), [])
    rcode = RCODES["NOERROR"] if q.name.lower() in known else RCODES["NXDOMAIN"]
    reply = Message(
        msg.id,
        FLAG_QR | FLAG_RA | (msg.flags & 0x0100) | rcode,
        [Question(q.name, q.type, q.cls)],
        list(records),
    )
    return encode_message(reply)


@dataclass(frozen=True)
class DnsServer:
    host: str
    port: int
    queries: list[bytes]

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"


@contextmanager
def dns_server(zone: Zone) -> Iterator[DnsServer]:
    queries: list[bytes] = []

    class Udp(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            data, sock = self.request
            queries.append(data)
            sock.sendto(answer(zone, data), self.client_address)

    class Tcp(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            head = self.rfile.read(2)
            if len(head) < 2:
                return
            data = self.rfile.read(struct.unpack(">H", head)[0])
            queries.append(data)
            reply = answer(zone, data)
            self.wfile.write(struct.pack(">H", len(reply)) + reply)

    for _attempt in range(5):  # UDP and TCP on one port: the TCP port may be taken for UDP
        tcp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Tcp)
        tcp.daemon_threads = True
        port = tcp.server_address[1]
        try:
            udp = socketserver.ThreadingUDPServer(("127.0.0.1", port), Udp)
        except OSError:
            tcp.server_close()
            continue
        udp.daemon_threads = True
        with _serving(tcp), _serving(udp):
            yield DnsServer("127.0.0.1", port, queries)
        return
    raise RuntimeError("cannot bind a UDP and TCP DNS server on one loopback port")


# ---------------------------------------------------------------------- tests of the servers


def test_dns_server_answers_a_query_written_by_hand() -> None:
    zone: Zone = {("host.test.", "A"): [a_record("host.test.", "10.1.2.3")]}
    query = (
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
        + b"\x04host\x04test\x00"
        + b"\x00\x01\x00\x01"
    )
    with dns_server(zone) as srv, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(10)
        sock.sendto(query, (srv.host, srv.port))
        data = sock.recv(512)
    assert data[:2] == b"\x12\x34"
    assert struct.unpack(">H", data[6:8]) == (1,)  # one answer
    assert data.endswith(bytes([10, 1, 2, 3]))


def test_decoder_follows_compression_pointers_of_a_message_written_by_hand() -> None:
    # Answer name is a pointer (0xc00c) to the question's name, the CNAME target a
    # label plus a pointer into it: "www" + "example.org." -> "www.example.org.".
    question = b"\x07example\x03org\x00\x00\x05\x00\x01"
    cname = b"\x03www\xc0\x0c"
    data = (
        b"\xab\xcd\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00"
        + question
        + b"\xc0\x0c\x00\x05\x00\x01\x00\x00\x0e\x10"
        + struct.pack(">H", len(cname))
        + cname
    )
    msg = decode_message(data)
    assert msg.id == 0xABCD
    assert msg.rcode == 0
    assert msg.questions == [Question("example.org.", 5, 1)]
    (rr,) = msg.answer
    assert rr.text == "example.org.\t3600\tIN\tCNAME\twww.example.org."


def test_http_server_serves_chunked_and_redirects() -> None:
    import urllib.request

    with http_servers() as srv:
        with urllib.request.urlopen(srv.http + "/chunked", timeout=10) as resp:  # noqa: S310
            assert resp.read() == b"hello chunked world"
        with urllib.request.urlopen(srv.http + "/redirect/2", timeout=10) as resp:  # noqa: S310
            assert resp.read() == BODY
