"""Email: a real SMTP server (aiosmtpd on 127.0.0.1) receives the message; TLS with a
throwaway certificate from the openssl CLI."""

from __future__ import annotations

import asyncio
import email
import email.policy
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from notifier.config.receivers import EmailConfig
from notifier.errors import PermanentError, RetryableError
from notifier.receivers.base import BuildContext, Notification
from notifier.receivers.email import EmailIntegration
from notifier.ssrf import URLGuard
from tests.notifier.helpers import alert, at
from tests.notifier.receivers.data import SECRET, TITLE, notification


@dataclass
class Mailbox:
    """An aiosmtpd handler that keeps what arrives and how the client logged in."""

    messages: list[tuple[Envelope, EmailMessage]] = field(default_factory=list)
    logins: list[tuple[str, str, str]] = field(default_factory=list)
    reject_rcpt: int | None = None

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.reject_rcpt is not None:
            return f"{self.reject_rcpt} no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        raw = envelope.original_content or b""
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append((envelope, msg))
        return "250 Message accepted"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        user, password = data.login.decode(), data.password.decode()
        self.logins.append((mechanism, user, password))
        return AuthResult(success=password == SECRET, handled=False)


@dataclass
class MailServer:
    box: Mailbox
    port: int
    server: asyncio.Server


async def start_smtp(
    box: Mailbox, *, tls: ssl.SSLContext | None = None, implicit: bool = False, **kw: Any
) -> MailServer:
    loop = asyncio.get_running_loop()

    def factory() -> SMTP:
        return SMTP(
            box,
            hostname="mail.test",
            tls_context=None if implicit else tls,
            authenticator=box.authenticate,
            **kw,
        )

    server = await loop.create_server(factory, "127.0.0.1", 0, ssl=tls if implicit else None)
    return MailServer(box, server.sockets[0].getsockname()[1], server)


@pytest.fixture
async def smtp() -> AsyncIterator[MailServer]:
    s = await start_smtp(Mailbox(), auth_require_tls=False)
    yield s
    s.server.close()


def _email(port: int, ctx: BuildContext, **kw: object) -> EmailIntegration:
    cfg = EmailConfig.model_validate(
        {
            "to": "ops@example.org, Oncall <oncall@example.org>",
            "from": "Vigil <vigil@example.org>",
            "smarthost": f"127.0.0.1:{port}",
            "require_tls": False,
            **kw,
        }
    )
    return EmailIntegration(cfg, 0, ctx)


async def test_email_arrives_as_multipart_text_and_html(
    smtp: MailServer, ctx: BuildContext
) -> None:
    e = _email(smtp.port, ctx, headers={"X-Team": "{{ .CommonLabels.severity }}"})
    await e.notify(notification())
    [(envelope, msg)] = smtp.box.messages
    assert envelope.mail_from == "vigil@example.org"
    assert envelope.rcpt_tos == ["ops@example.org", "oncall@example.org"]
    assert msg["Subject"] == TITLE
    assert msg["From"] == "Vigil <vigil@example.org>"
    assert msg["X-Team"] == "critical"
    assert msg["Message-Id"]
    assert msg["Date"]
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None
    assert html is not None
    assert TITLE in text.get_content()
    assert "Runbook: https://runbooks.example/HighCPU" in text.get_content()
    assert '<a href="https://runbooks.example/HighCPU">Runbook</a>' in html.get_content()
    assert "Firing: 2" in html.get_content()


async def test_email_refuses_header_injection_through_labels(
    smtp: MailServer, ctx: BuildContext
) -> None:
    evil = alert(0, alertname="x\r\nBcc: victim@example.org")
    n = Notification("team", "k", {"alertname": evil.labels["alertname"]}, [evil], [], "", at(0))
    with pytest.raises(PermanentError, match="Subject: the value contains a line break"):
        await _email(smtp.port, ctx).notify(n)  # the default subject holds the group label
    custom = _email(
        smtp.port, ctx, headers={"Subject": "fixed", "X-Label": "{{ .CommonLabels.alertname }}"}
    )
    with pytest.raises(PermanentError, match="X-Label: the value contains a line break"):
        await custom.notify(n)
    assert smtp.box.messages == []


async def test_email_html_escapes_label_values(smtp: MailServer, ctx: BuildContext) -> None:
    evil = alert(0, alertname="<img src=x onerror=alert(1)>", instance="a&b")
    n = Notification("team", "k", {}, [evil], [], "", at(0))
    await _email(smtp.port, ctx).notify(n)
    [(_, msg)] = smtp.box.messages
    html = msg.get_body(("html",))
    assert html is not None
    assert "<img" not in html.get_content()
    assert "&lt;img src=x onerror=alert(1)&gt;" in html.get_content()


async def test_email_auth_plain_on_loopback(smtp: MailServer, ctx: BuildContext) -> None:
    e = _email(smtp.port, ctx, auth_username="vigil", auth_password=SECRET)
    await e.notify(notification())
    assert smtp.box.logins == [("PLAIN", "vigil", SECRET)]
    assert len(smtp.box.messages) == 1


async def test_email_auth_login_when_plain_is_not_offered(ctx: BuildContext) -> None:
    s = await start_smtp(Mailbox(), auth_require_tls=False, auth_exclude_mechanism=["PLAIN"])
    try:
        await _email(s.port, ctx, auth_username="vigil", auth_password=SECRET).notify(
            notification()
        )
    finally:
        s.server.close()
    assert s.box.logins == [("LOGIN", "vigil", SECRET)]


async def test_email_wrong_password_is_permanent_and_not_in_the_error(
    smtp: MailServer, ctx: BuildContext
) -> None:
    e = _email(smtp.port, ctx, auth_username="vigil", auth_password="wrong-" + SECRET)
    with pytest.raises(PermanentError) as info:
        await e.notify(notification())
    assert SECRET not in str(info.value)
    assert "535" in str(info.value)


@pytest.mark.parametrize(("code", "error"), [(550, PermanentError), (451, RetryableError)])
async def test_email_smtp_answers_are_classified(
    ctx: BuildContext, code: int, error: type[Exception]
) -> None:
    s = await start_smtp(Mailbox(reject_rcpt=code), auth_require_tls=False)
    try:
        with pytest.raises(error):
            await _email(s.port, ctx).notify(notification())
    finally:
        s.server.close()


async def test_email_require_tls_refuses_a_server_without_starttls(
    smtp: MailServer, ctx: BuildContext
) -> None:
    with pytest.raises(PermanentError, match="STARTTLS"):
        await _email(smtp.port, ctx, require_tls=True).notify(notification())


async def test_email_connection_refused_is_retried(ctx: BuildContext) -> None:
    s = await start_smtp(Mailbox())
    port = s.port
    s.server.close()
    await s.server.wait_closed()
    with pytest.raises(RetryableError):
        await _email(port, ctx).notify(notification())


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl CLI is not installed")
    folder = tmp_path_factory.mktemp("tls")
    key, crt = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(crt), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return crt, key


def _server_tls(cert: tuple[Path, Path]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    return ctx


async def test_email_starttls_with_auth(cert: tuple[Path, Path]) -> None:
    s = await start_smtp(Mailbox(), tls=_server_tls(cert), require_starttls=True)
    ctx = BuildContext(base_dir=cert[0].parent, guard=URLGuard())
    try:
        e = _email(s.port, ctx, require_tls=True, tls_config={"ca_file": "cert.pem"},
                   auth_username="vigil", auth_password=SECRET)  # fmt: skip
        await e.notify(notification())
    finally:
        s.server.close()
    assert s.box.logins == [("PLAIN", "vigil", SECRET)]
    assert len(s.box.messages) == 1


async def test_email_implicit_tls(cert: tuple[Path, Path]) -> None:
    s = await start_smtp(Mailbox(), tls=_server_tls(cert), implicit=True)
    ctx = BuildContext(base_dir=cert[0].parent, guard=URLGuard())
    try:
        e = _email(s.port, ctx, force_implicit_tls=True, tls_config={"ca_file": "cert.pem"})
        await e.notify(notification())
    finally:
        s.server.close()
    assert len(s.box.messages) == 1


async def test_email_starttls_with_an_untrusted_certificate_fails(
    cert: tuple[Path, Path], ctx: BuildContext
) -> None:
    s = await start_smtp(Mailbox(), tls=_server_tls(cert), require_starttls=True)
    try:
        with pytest.raises(RetryableError, match="SSL"):
            await _email(s.port, ctx, require_tls=True).notify(notification())
    finally:
        s.server.close()
    assert s.box.messages == []
