"""Building mail: header tricks and invalid addresses are refused with the field named."""

import pytest

from ar_pipeline.actions.mail import InvalidMessage, build_message

SENDER = "ar@example.com"


def test_message_headers_and_id():
    message = build_message(
        42, SENDER, ["ap@customer.example.com"], ["rep@sales.example.com"], "Reminder",
        "Body\nline 2\n", reply_to="rep@sales.example.com",
    )  # fmt: skip
    assert message["To"] == "ap@customer.example.com"
    assert message["Cc"] == "rep@sales.example.com"
    assert message["Reply-To"] == "rep@sales.example.com"
    assert message["Message-ID"] == "<ar-action-42@example.com>"
    assert message.get_content() == "Body\nline 2\n"


@pytest.mark.parametrize(
    ("to", "cc", "subject", "error"),
    [
        (["ap@x.example.com\r\nBcc: evil@y.example.com"], [], "s", "to[0]: invalid e-mail"),
        (["ap@x.example.com, evil@y.example.com"], [], "s", "to[0]: invalid e-mail"),
        (["Evil <evil@y.example.com>"], [], "s", "to[0]: invalid e-mail"),
        (["not-an-address"], [], "s", "to[0]: invalid e-mail"),
        (["ap@nodot"], [], "s", "to[0]: invalid e-mail"),
        ([], [], "s", "to: no recipient"),
        (["ap@x.example.com"], ["rep@\nsales.example.com"], "s", "cc[0]: invalid e-mail"),
        (["ap@x.example.com"], [], "Hi\r\nBcc: evil@y.example.com", "subject: must be a single"),
        # line breaks Python knows besides CR and LF: the e-mail policy would refuse them late
        (["ap@x.example.com"], [], "Hi\x0bthere", "subject: must be a single"),
        (["ap@x.example.com"], [], "Hi\u2028there", "subject: must be a single"),
        (["ap@x.example.com"], [], "Hi\x85there", "subject: must be a single"),
        # needs SMTPUTF8, which the mailer does not speak
        (["jürgen@x.example.com"], [], "s", "to[0]: 'jürgen@x.example.com': an address with "),
    ],
)
def test_header_injection_and_bad_addresses_are_refused(to, cc, subject, error):
    with pytest.raises(InvalidMessage, match=error.replace("[", r"\[").replace("]", r"\]")):
        build_message(1, SENDER, to, cc, subject, "body")


def test_an_internationalised_domain_is_sent_in_its_ascii_form():
    message = build_message(7, SENDER, ["ap@müller.example"], [], "Reminder", "body")
    assert message["To"] == "ap@xn--mller-kva.example"
