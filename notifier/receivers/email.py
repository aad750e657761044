"""The email receiver: one multipart message (text and HTML) over SMTP.

Connection, as Alertmanager does it: port 465 or ``force_implicit_tls: true``
means TLS from the first byte; otherwise plain SMTP upgraded with STARTTLS
when the server offers it, and ``require_tls`` (default true, from
``global.smtp_require_tls``) refuses a server that does not. Authentication
(``auth_username`` with ``auth_password``) uses PLAIN or LOGIN, whichever the
server offers, and only over TLS or to a loopback address, so a password
never crosses the network in clear.

The message: ``From``, ``To``, ``Subject`` (default: the title,
``[FIRING:2] HighCPU (web-1 critical)``), ``Date``, ``Message-Id``, the
configured ``headers`` (templates), a ``text/plain`` part (``text``, default
``email.text.j2``) and a ``text/html`` part (``html``, default
``email.html.j2``, rendered with HTML autoescaping). Header injection: a
rendered header value containing CR or LF is refused (``PermanentError``),
so a label such as ``"x\\r\\nBcc: victim@example"`` cannot add headers or
recipients; non-ASCII values are RFC 2047-encoded by ``email``.

Errors: 5xx answers (recipient refused, authentication failed) are
permanent; 4xx answers, timeouts and connection errors are retried. The
password never appears in a message. smtplib is blocking, so each attempt
runs in a worker thread with a socket timeout of ``SMTP_TIMEOUT`` seconds.
"""

from __future__ import annotations

import asyncio
import ipaddress
import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid
from pathlib import Path
from typing import Any

from notifier.config.common import TLSConfig, read_secret
from notifier.config.receivers import EmailConfig
from notifier.errors import PermanentError, RetryableError
from notifier.receivers.base import BuildContext, Notification
from notifier.template import TemplateError, Text, context, templates
from shared.hosts import is_loopback

SMTP_TIMEOUT = 30.0
IMPLICIT_TLS_PORT = 465


def _tls_context(tls: TLSConfig | None, base_dir: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if tls is None:
        return ctx
    if tls.insecure_skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE

    def path(p: str) -> str:
        q = Path(p).expanduser()
        return str(q if q.is_absolute() else base_dir / q)

    if tls.ca_file:
        ctx.load_verify_locations(cafile=path(tls.ca_file))
    elif tls.ca:
        ctx.load_verify_locations(cadata=tls.ca)
    if tls.cert_file and tls.key_file:
        ctx.load_cert_chain(path(tls.cert_file), path(tls.key_file))
    return ctx


def header_value(name: str, value: str) -> str:
    """``value`` if it is safe in a header; ``PermanentError`` on CR/LF (header injection)."""
    if "\r" in value or "\n" in value:
        raise PermanentError(
            f"cannot build email header {name}: the value contains a line break "
            "(refused: it could inject headers)"
        )
    return value


def split_host(smarthost: str) -> tuple[str, int]:
    host, sep, port = smarthost.rpartition(":")
    if not sep or not port.isdigit():
        raise PermanentError(f"cannot notify email: smarthost {smarthost!r} is not host:port")
    return host.strip("[]"), int(port)


class EmailIntegration:
    kind = "email"

    def __init__(self, cfg: EmailConfig, index: int, ctx: BuildContext) -> None:
        self.cfg = cfg
        self.index = index
        self.send_resolved = cfg.send_resolved
        self.ctx = ctx
        t = templates()
        self.text = t.text(cfg.text, "email.text.j2")
        self.html = t.html(cfg.html, "email.html.j2")
        headers = {k.title(): v for k, v in cfg.headers.items()}
        headers.setdefault("Subject", '{{ template "email.default.subject" . }}')
        headers.setdefault("To", cfg.to)
        headers.setdefault("From", cfg.from_ or "")
        self.headers: dict[str, Text] = {k: t.text(v, "empty.j2") for k, v in headers.items()}

    def message(self, n: Notification) -> EmailMessage:
        data = context(n)
        msg = EmailMessage()
        try:
            for name, tpl in self.headers.items():
                msg[name] = header_value(name, tpl.render(data))
            text = self.text.render(data)
            html = self.html.render(data)
        except TemplateError as exc:
            raise PermanentError(f"cannot notify email {n.receiver}: {exc}") from exc
        except ValueError as exc:  # email's own header checks
            raise PermanentError(f"cannot notify email {n.receiver}: {exc}") from exc
        if "Date" not in msg:
            msg["Date"] = formatdate(localtime=False)
        if "Message-Id" not in msg:
            msg["Message-Id"] = make_msgid(domain=self.cfg.hello or "vigil")
        msg.set_content(text or " ")
        if html:
            msg.add_alternative(html, subtype="html")
        return msg

    def _connect(self, host: str, port: int) -> tuple[smtplib.SMTP, bool]:
        cfg = self.cfg
        tls_ctx = _tls_context(cfg.tls_config, self.ctx.base_dir)
        hello = cfg.hello or "localhost"
        if cfg.force_implicit_tls or (cfg.force_implicit_tls is None and port == IMPLICIT_TLS_PORT):
            return smtplib.SMTP_SSL(
                host, port, local_hostname=hello, timeout=SMTP_TIMEOUT, context=tls_ctx
            ), True
        smtp = smtplib.SMTP(host, port, local_hostname=hello, timeout=SMTP_TIMEOUT)
        smtp.ehlo()
        if smtp.has_extn("starttls"):
            smtp.starttls(context=tls_ctx)
            smtp.ehlo()
            return smtp, True
        if cfg.require_tls is not False:
            smtp.close()
            raise PermanentError(
                f"cannot notify email via {host}:{port}: require_tls is true but the server "
                "does not offer STARTTLS"
            )
        return smtp, False

    def _send(self, msg: EmailMessage, host: str, port: int, password: str | None) -> None:
        smtp, secure = self._connect(host, port)
        try:
            if self.cfg.auth_username:
                if not (secure or is_loopback(host)):
                    raise PermanentError(
                        f"cannot notify email via {host}:{port}: refusing to authenticate over "
                        "an unencrypted connection"
                    )
                if not smtp.has_extn("auth"):
                    raise PermanentError(
                        f"cannot notify email via {host}:{port}: auth_username is set but the "
                        "server offers no AUTH"
                    )
                smtp.user, smtp.password = self.cfg.auth_username, password or ""
                offered = (smtp.esmtp_features.get("auth") or "").upper().split()
                method = "PLAIN" if "PLAIN" in offered else "LOGIN" if "LOGIN" in offered else None
                if method is None:
                    raise PermanentError(
                        f"cannot notify email via {host}:{port}: the server offers neither "
                        "AUTH PLAIN nor LOGIN"
                    )
                authobject: Any = smtp.auth_plain if method == "PLAIN" else smtp.auth_login
                smtp.auth(method, authobject)
            to = [addr for _, addr in getaddresses([str(msg["To"])]) if addr]
            sender = getaddresses([str(msg["From"])])[0][1]
            smtp.send_message(msg, from_addr=sender, to_addrs=to)
        finally:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()

    async def notify(self, notification: Notification) -> None:
        cfg = self.cfg
        if not cfg.smarthost:
            raise PermanentError("cannot notify email: no smarthost configured")
        host, port = split_host(cfg.smarthost)
        where = f"{host}:{port}"
        await _check_address(self.ctx, host, port, where)
        try:
            password = read_secret(cfg.auth_password, cfg.auth_password_file, self.ctx.base_dir)
        except ValueError as exc:
            raise PermanentError(f"cannot notify email: {exc}") from exc
        msg = self.message(notification)
        try:
            await asyncio.to_thread(self._send, msg, host, port, password)
        except smtplib.SMTPResponseException as exc:
            text = f"cannot notify email via {where}: SMTP {exc.smtp_code}"
            if exc.smtp_code >= 500:
                raise PermanentError(text, status=exc.smtp_code) from exc
            raise RetryableError(text, status=exc.smtp_code) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            codes = sorted({code for code, _ in exc.recipients.values()})
            text = f"cannot notify email via {where}: every recipient refused (SMTP {codes})"
            if all(code >= 500 for code in codes):
                raise PermanentError(text, status=codes[0]) from exc
            raise RetryableError(text, status=codes[0]) from exc
        except (smtplib.SMTPException, ssl.SSLError) as exc:
            raise RetryableError(f"cannot notify email via {where}: {type(exc).__name__}") from exc
        except TimeoutError as exc:
            raise RetryableError(f"cannot notify email via {where}: timed out") from exc
        except OSError as exc:
            raise RetryableError(
                f"cannot notify email via {where}: {exc.strerror or type(exc).__name__}"
            ) from exc

    async def close(self) -> None:
        return None


async def _check_address(ctx: BuildContext, host: str, port: int, where: str) -> None:
    """The SSRF guard's rules for a mail server (it is not a URL)."""
    if host.lower() in ctx.guard.allow_names:
        return
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            raise RetryableError(f"cannot resolve {where}: {exc.strerror or exc}") from exc
        addresses = [ipaddress.ip_address(str(i[4][0]).split("%", 1)[0]) for i in infos]
    for address in addresses:
        if ctx.guard.refused(address):
            raise PermanentError(
                f"cannot send to {where}: address {address} is link-local or a metadata service"
            )


def build(cfg: EmailConfig, index: int, ctx: BuildContext) -> EmailIntegration:
    return EmailIntegration(cfg, index, ctx)
