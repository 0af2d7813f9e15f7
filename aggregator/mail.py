"""Digests as mail: compose the message (pure), and hand it to an SMTP server (I/O).

The message is multipart/alternative: the text digest (72 columns) and the sanitised HTML one.
Every header is one line whatever the feeds put in their headlines. TLS always verifies the
server's certificate (``ssl.create_default_context()``, plus ``email.ca_file`` when a relay
uses its own CA), and a login happens only inside TLS: with ``starttls``, a server that does
not offer STARTTLS gets nothing, neither the password nor the digest.
"""

from __future__ import annotations

import os
import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from types import TracebackType

from .config import EmailConfig, mail_address
from .digest import one_line, subject_line
from .errors import ConfigError, DeliveryError
from .models import Digest
from .render import render_digest

__all__ = ["SmtpSender", "compose", "read_password"]


def compose(digest: Digest, email: EmailConfig, recipient: str, *, links: int) -> EmailMessage:
    """The digest as a message to ``recipient`` (an address as written in the config)."""
    message = EmailMessage(policy=SMTP)  # CRLF line endings, as SMTP wants them
    message["Subject"] = subject_line(email.subject, digest)
    message["From"] = one_line(email.from_addr)
    message["To"] = one_line(recipient)
    message["Date"] = format_datetime(digest.generated_at)
    domain = mail_address(email.from_addr, "email.from").rpartition("@")[2]
    message["Message-ID"] = make_msgid("digest", domain=domain)
    # RFC 3834: machine-made, so vacation responders do not answer it.
    message["Auto-Submitted"] = "auto-generated"
    # For filters and scripts: each story's id (`aggregator story ID`) and its sources here.
    message["X-Aggregator-Stories"] = " ".join(
        f"{entry.story.id}:{len(entry.story.sources)}" for entry in digest.shown
    )
    message.set_content(render_digest(digest, "text", links=links))
    message.add_alternative(render_digest(digest, "html", links=links), subtype="html")
    return message


def read_password(email: EmailConfig) -> str | None:
    """The SMTP password from ``password_env`` or ``password_file``; None without a login."""
    if email.password_env:
        password = os.environ.get(email.password_env)
        if not password:
            raise ConfigError(
                f"email.password_env: the environment variable {email.password_env} is not set"
            )
        return password
    if email.password_file:
        try:
            lines = email.password_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            reason = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
            raise ConfigError(
                f"email.password_file: cannot read {email.password_file} ({reason})"
            ) from None
        if not lines or not lines[0]:
            raise ConfigError(f"email.password_file: {email.password_file} is empty")
        return lines[0]
    return None


class SmtpSender:
    """One SMTP connection for a run's messages, opened at the first send.

    Every failure becomes a ``DeliveryError`` that says what to do; the connection is dropped
    after one, so the next send starts afresh.
    """

    def __init__(self, email: EmailConfig, password: str | None = None) -> None:
        self.email = email
        self.password = password
        self.server = f"{email.smtp_host}:{email.smtp_port}"
        self._smtp: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpSender:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()

    def send(self, message: bytes, recipient: str) -> None:
        """Hand ``message`` to the server for ``recipient`` (a bare address)."""
        sender = mail_address(self.email.from_addr, "email.from")
        try:
            smtp = self._smtp or self._connect()
            self._smtp = smtp
            refused = smtp.sendmail(sender, [recipient], message)
        except smtplib.SMTPRecipientsRefused as e:
            self._drop()
            code, reply = next(iter(e.recipients.values()), (0, b""))
            raise self._refused(code, reply, f"the recipient {recipient}") from None
        except smtplib.SMTPResponseException as e:
            self._drop()
            raise self._refused(e.smtp_code, e.smtp_error, "the digest") from None
        except UnicodeError:
            self._drop()
            raise DeliveryError(
                f"cannot log in to the SMTP server {self.server}: the username or password has "
                "characters beyond ASCII, which SMTP AUTH as smtplib speaks it cannot carry"
            ) from None
        except ssl.SSLCertVerificationError as e:
            self._drop()
            raise DeliveryError(
                f"the certificate of the SMTP server {self.server} cannot be verified "
                f"({e.verify_message}); if your relay uses its own CA, point email.ca_file at it"
            ) from None
        except (ssl.SSLError, smtplib.SMTPException, OSError) as e:
            self._drop()
            raise DeliveryError(
                f"cannot send through the SMTP server {self.server}: {_why(e)}"
            ) from None
        if refused:  # some recipients refused; ours is the only one, so this is defensive
            raise DeliveryError(f"the SMTP server {self.server} refused {recipient}")

    def _connect(self) -> smtplib.SMTP:
        email = self.email
        context = ssl.create_default_context()
        if email.ca_file:  # trusted as well as the system's CAs, not instead of them
            try:
                context.load_verify_locations(cafile=str(email.ca_file))
            except (OSError, ssl.SSLError) as e:
                raise ConfigError(
                    f"email.ca_file: cannot load {email.ca_file} as PEM certificates ({e})"
                ) from None
        smtp: smtplib.SMTP
        if email.security == "ssl":
            smtp = smtplib.SMTP_SSL(
                email.smtp_host, email.smtp_port, timeout=email.timeout, context=context
            )
        else:
            smtp = smtplib.SMTP(email.smtp_host, email.smtp_port, timeout=email.timeout)
        try:
            smtp.ehlo()
            if email.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise DeliveryError(
                        f"the SMTP server {self.server} does not offer STARTTLS, so aggregator "
                        "sent nothing: it never sends mail or a password in the clear (use "
                        "security: ssl if the server speaks TLS from the start)"
                    )
                smtp.starttls(context=context)
                smtp.ehlo()
            if email.username:
                if not smtp.has_extn("auth"):
                    raise DeliveryError(
                        f"the SMTP server {self.server} does not offer a login (AUTH); remove "
                        "email.username if it takes mail without one"
                    )
                smtp.login(email.username, self.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()

    def _refused(self, code: int, reply: bytes | str, what: str) -> DeliveryError:
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
        text = one_line(text)
        if code == 535 or code == 534:
            return DeliveryError(
                f"the SMTP server {self.server} refused the login for {self.email.username}: "
                f"{code} {text}"
            )
        kind = "deferred" if 400 <= code < 500 else "refused"
        return DeliveryError(f"the SMTP server {self.server} {kind} {what}: {code} {text}")


def _why(error: BaseException) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused (is the server running, and is the port right?)"
    if isinstance(error, socket.gaierror):
        return f"the host name does not resolve ({error.strerror})"
    if isinstance(error, TimeoutError | socket.timeout):
        return "it did not answer in time (email.timeout)"
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return f"it closed the connection ({error})"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__
