"""Outgoing mail: SMTP (``AR_SMTP_*``, STARTTLS and login) or, without an SMTP host, ``.eml``
files in ``AR_OUTBOX_DIR``.

Headers are built with the standard library's ``email`` policy, which refuses CR/LF inside a
header; addresses are parsed strictly and one invalid address fails that message with an error
that names the field. The Message-ID derives from the action id, so a retried send carries the
same id and the receiving side can recognise it.
"""

from __future__ import annotations

import smtplib
from collections.abc import Sequence
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate
from pathlib import Path

import dagster as dg

from ar_pipeline.settings import Settings

DEFAULT_SENDER = "accounts-receivable@localhost.localdomain"  # when AR_MAIL_FROM is unset


class InvalidMessage(ValueError):
    """A draft that cannot become a safe e-mail; the message names the field."""


def parse_address(field: str, raw: object) -> Address:
    """One plain address (``name@domain``), no display name, no header tricks."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidMessage(f"{field}: missing e-mail address")
    text = raw.strip()
    if any(ch in text for ch in '\r\n\t,;<>"()[]\\ ') or text.count("@") != 1:
        raise InvalidMessage(f"{field}: invalid e-mail address {raw!r}")
    local, domain = text.split("@")
    if not local or not domain or "." not in domain.strip(".") or ".." in text:
        raise InvalidMessage(f"{field}: invalid e-mail address {raw!r}")
    try:
        return Address(username=local, domain=domain)
    except (ValueError, IndexError) as error:
        raise InvalidMessage(f"{field}: invalid e-mail address {raw!r}: {error}") from None


def _single_line(field: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidMessage(f"{field}: must be text")
    if "\r" in value or "\n" in value:
        raise InvalidMessage(f"{field}: must be a single line (no CR/LF)")
    return value


def message_id(action_id: int, sender: Address) -> str:
    return f"<ar-action-{action_id}@{sender.domain}>"


def build_message(
    action_id: int,
    sender: str,
    to: Sequence[str],
    cc: Sequence[str],
    subject: str,
    body: str,
    reply_to: str | None = None,
) -> EmailMessage:
    """A plain-text message, or :class:`InvalidMessage` naming the bad field."""
    sender_address = parse_address("from", sender)
    recipients = [parse_address(f"to[{i}]", a) for i, a in enumerate(to)]
    if not recipients:
        raise InvalidMessage("to: no recipient")
    copies = [parse_address(f"cc[{i}]", a) for i, a in enumerate(cc)]
    message = EmailMessage(policy=SMTP)
    message["From"] = sender_address
    message["To"] = recipients
    if copies:
        message["Cc"] = copies
    if reply_to:
        message["Reply-To"] = parse_address("reply_to", reply_to)
    message["Subject"] = _single_line("subject", subject)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id(action_id, sender_address)
    message.set_content(body if isinstance(body, str) else str(body))
    return message


class Mailer(dg.ConfigurableResource):
    """Sends a message over SMTP, or writes it to the outbox when no SMTP host is set."""

    mail_from: str = DEFAULT_SENDER
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    outbox_dir: str = ".ar_data/outbox"
    timeout_seconds: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Mailer:
        return cls(
            mail_from=settings.mail_from or DEFAULT_SENDER,
            smtp_host=settings.smtp_host,
            smtp_port=settings.smtp_port,
            smtp_user=settings.smtp_user,
            smtp_password=settings.smtp_password,
            smtp_starttls=settings.smtp_starttls,
            outbox_dir=str(settings.outbox_dir),
        )

    def send(self, message: EmailMessage) -> str:
        """Deliver ``message``; returns where it went (for the run log)."""
        if not self.smtp_host:
            outbox = Path(self.outbox_dir)
            outbox.mkdir(parents=True, exist_ok=True)
            name = message["Message-ID"].strip("<>").split("@")[0]
            path = outbox / f"{name}.eml"
            path.write_bytes(message.as_bytes())
            return str(path)
        with smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=self.timeout_seconds) as smtp:
            if self.smtp_starttls:
                smtp.starttls()
            if self.smtp_user:
                smtp.login(self.smtp_user, self.smtp_password or "")
            smtp.send_message(message)
        return f"smtp://{self.smtp_host}:{self.smtp_port}"
