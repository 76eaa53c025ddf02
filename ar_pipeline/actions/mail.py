"""Outgoing mail: SMTP (``AR_SMTP_*``, STARTTLS and login) or, without an SMTP host, ``.eml``
files in ``AR_OUTBOX_DIR``.

Every send ends in one of four outcomes, decided by how far the SMTP dialogue got:

* **delivered** (:class:`Delivered`): the server answered 2xx to the message data. The message is
  the server's from then on; a failure afterwards (QUIT refused, connection dropped) is only
  noted, never a reason to send again.
* **transient** (:class:`TransientDeliveryError`): the server did not take the message and said
  so before it had the data, or could not be reached: connection refused or dropped, greeting,
  EHLO, MAIL, RCPT or DATA answered 4xx, a 4xx to the data itself, or the connection failing
  while the data was still being written (without its final ``.`` no server accepts a
  message). Safe to retry.
* **permanent** (:class:`PermanentDeliveryError`): a 5xx answer at any step before acceptance.
  Retrying cannot help.
* **unknown** (:class:`UnknownDeliveryOutcome`): the whole message data was written and no
  answer came (timeout, connection lost), or an answer that is neither 2xx, 4xx nor 5xx
  (unreadable, or cut short). The server may have queued it; sending again may
  give the customer a second copy, so the caller must not retry on its own.

Headers are built with the standard library's ``email`` policy, which refuses CR/LF inside a
header; addresses are parsed strictly and one invalid address fails that message with an error
that names the field. The Message-ID derives from the action id, so a retried send carries the
same id and the receiving side can recognise it.
"""

from __future__ import annotations

import re
import smtplib
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate
from pathlib import Path

import dagster as dg

from ar_pipeline.addresses import InvalidMessage, parse_address
from ar_pipeline.settings import Settings

DEFAULT_SENDER = "accounts-receivable@localhost.localdomain"  # when AR_MAIL_FROM is unset


def single_line(field: str, value: object) -> str:
    """``value`` if it is one line of text a header can carry. Python breaks lines at more than
    CR and LF (vertical tab, form feed, NEL, U+2028...) and the e-mail policy refuses every one
    of them in a header at send time, so they are refused here, by name, with any other control
    character but the tab."""
    if not isinstance(value, str):
        raise InvalidMessage(f"{field}: must be text")
    if any(c != "\t" and unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in value):
        raise InvalidMessage(
            f"{field}: must be a single line (no line breaks or control characters)"
        )
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
    message["Subject"] = single_line("subject", subject)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id(action_id, sender_address)
    message.set_content(body if isinstance(body, str) else str(body))
    return message


class DeliveryError(Exception):
    """A send that did not end in a 2xx answer to the message data."""


class TransientDeliveryError(DeliveryError):
    """Not taken, and safe to try again (see the module docstring)."""


class PermanentDeliveryError(DeliveryError):
    """Refused with a 5xx answer; trying again cannot help."""


class UnknownDeliveryOutcome(DeliveryError):
    """The message data was written and no answer came: it may or may not have been taken."""


@dataclass(frozen=True)
class Delivered:
    where: str  # smtp://host:port or the .eml path
    server_reply: str = ""  # e.g. "250 2.0.0 Ok: queued as 4F2A"
    after_note: str = ""  # what failed after the server took it (QUIT), for the log

    def detail(self) -> str:
        parts = [self.where, self.server_reply, self.after_note]
        return "; ".join(p for p in parts if p)


def _reply_text(code: int, reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return f"{code} {' '.join(text.split())}"[:500]


def _refusal(step: str, code: int, reply: bytes | str) -> DeliveryError:
    """A server answer other than success: 5xx is permanent, anything else transient."""
    text = f"{step} answered {_reply_text(code, reply)}"
    return PermanentDeliveryError(text) if 500 <= code <= 599 else TransientDeliveryError(text)


def _quoted_data(message: EmailMessage) -> bytes:
    """The message as SMTP DATA: CRLF lines, leading dots doubled, ending in CRLF.CRLF."""
    data = message.as_bytes(policy=SMTP)
    data = re.sub(rb"(?m)^\.", b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


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

    def send(self, message: EmailMessage) -> Delivered:
        """Deliver ``message`` once, or raise the :class:`DeliveryError` that says how far it
        got (module docstring). Never retries by itself."""
        if not self.smtp_host:
            return self._write_to_outbox(message)
        return self._send_smtp(message)

    def _write_to_outbox(self, message: EmailMessage) -> Delivered:
        outbox = Path(self.outbox_dir)
        name = message["Message-ID"].strip("<>").split("@")[0]
        path = outbox / f"{name}.eml"
        try:
            outbox.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".eml.partial")
            partial.write_bytes(message.as_bytes())
            partial.replace(path)  # whole or not at all
        except OSError as error:
            raise TransientDeliveryError(f"outbox {outbox}: {error}") from None
        return Delivered(str(path))

    def _send_smtp(self, message: EmailMessage) -> Delivered:
        where = f"smtp://{self.smtp_host}:{self.smtp_port}"
        sender = message["From"].addresses[0].addr_spec
        recipients = _recipients(message)
        smtp = smtplib.SMTP(timeout=self.timeout_seconds)
        data_written = False
        try:
            code, reply = smtp.connect(self.smtp_host, self.smtp_port)
            if code != 220:
                raise _refusal("greeting", code, reply)
            smtp.ehlo_or_helo_if_needed()
            if self.smtp_starttls:
                smtp.starttls()
                smtp.ehlo_or_helo_if_needed()
            if self.smtp_user:
                smtp.login(self.smtp_user, self.smtp_password or "")
            code, reply = smtp.mail(sender)
            if code != 250:
                raise _refusal("MAIL FROM", code, reply)
            for recipient in recipients:
                # any refused recipient stops the whole message: a letter goes to all its
                # recipients or to none
                code, reply = smtp.rcpt(recipient)
                if code not in (250, 251):
                    raise _refusal(f"RCPT TO {recipient}", code, reply)
            smtp.putcmd("data")
            code, reply = smtp.getreply()
            if code != 354:
                raise _refusal("DATA", code, reply)
            smtp.send(_quoted_data(message))
            data_written = True
            code, reply = smtp.getreply()
            if not 200 <= code <= 299:
                if not 400 <= code <= 599:
                    # an answer that is neither a yes nor a no (unreadable, cut short): the
                    # server may have queued it, so it is not a reason to send again
                    raise UnknownDeliveryOutcome(
                        f"the message data was answered {_reply_text(code, reply)}, which is "
                        "neither acceptance nor refusal; the server may have taken it"
                    )
                raise _refusal("the message data", code, reply)
            accepted = _reply_text(code, reply)
        except DeliveryError:
            smtp.close()
            raise
        except smtplib.SMTPResponseException as error:  # HELO, STARTTLS, AUTH answered badly
            smtp.close()
            raise _refusal(type(error).__name__, error.smtp_code, error.smtp_error) from None
        except (OSError, smtplib.SMTPException) as error:
            smtp.close()
            what = f"{type(error).__name__}: {error}".strip(": ")
            if data_written:
                raise UnknownDeliveryOutcome(
                    f"no answer after the message data was sent ({what}); the server may "
                    "have taken it"
                ) from None
            raise TransientDeliveryError(what) from None
        except Exception as error:  # e.g. a header the library cannot encode
            smtp.close()
            what = f"{type(error).__name__}: {error}"
            if data_written:
                raise UnknownDeliveryOutcome(
                    f"error after the message data was sent ({what}); the server may have "
                    "taken it"
                ) from None
            # certainly not sent, and the same message would fail the same way again
            raise PermanentDeliveryError(f"could not be sent ({what})") from None
        after = ""
        try:
            code, reply = smtp.quit()
            if code != 221:
                after = f"after acceptance QUIT answered {_reply_text(code, reply)}"
        except (OSError, smtplib.SMTPException) as error:
            after = f"after acceptance QUIT failed ({type(error).__name__}: {error})"
        finally:
            smtp.close()
        return Delivered(where, accepted, after)


def _recipients(message: EmailMessage) -> list[str]:
    """Envelope recipients: every address in To and Cc (the builder never sets Bcc)."""
    return [
        address.addr_spec
        for field in ("To", "Cc")
        if message[field] is not None
        for address in message[field].addresses
    ]
