"""E-mail addresses as the mailer sends them (``ar_pipeline.actions.mail``): one rule, shared
with the settings (``AR_MAIL_FROM``), so that an address accepted at start is one the mailer
can send from. Top-level and standard library only: the settings module, which everything
else imports, imports it."""

from __future__ import annotations

from email.headerregistry import Address


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
    if not local.isascii():
        # needs SMTPUTF8, which this mailer does not speak: refused here, not at RCPT time
        raise InvalidMessage(f"{field}: {raw!r}: an address with non-ASCII characters before "
                             "the @ cannot be sent; ask the customer for another address")
    try:  # an internationalised domain travels in its ASCII (IDNA) form
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidMessage(f"{field}: invalid e-mail address {raw!r}: bad domain") from None
    try:
        return Address(username=local, domain=domain)
    except (ValueError, IndexError) as error:
        raise InvalidMessage(f"{field}: invalid e-mail address {raw!r}: {error}") from None


