"""A hand-built Alga PSA billing database: two tenants, on Alga's real constraints.

The DDL (``schema.sql`` beside this file) gives every Alga table the source reads the types, NOT
NULL constraints, defaults, keys and CHECK constraints of Alga's own migrations, so a row Alga
would reject is rejected here too. The rows are shaped the way Alga's own code writes them:

* date-only values (invoice and due dates, ``finalized_at``, a payment recorded by hand) are
  midnight UTC, because Alga writes ``YYYY-MM-DD`` strings on UTC sessions;
* a Stripe payment, a refund and an accounting-sync reversal are instants (``new Date()``);
* a refund is a separate negative ``invoice_payments`` row in status ``refunded``, a reversal
  one in status ``reversed``;
* credit lives in ``credit_tracking`` (issued when a prepayment or a negative invoice is
  finalized, with an expiry) and each application in ``credit_allocations`` with the invoice's
  ``credit_applied`` raised by as much; every such row has its ``transactions`` row.

Used by the tests (``ar_pipeline_tests``), by ``ar-pipeline bench --alga`` (the DDL only) and by
``python -m ar_pipeline.sources.alga_fixture URL`` to load it into an empty database. The
business time zone of the tests is America/New_York (UTC-5, UTC-4 from 2026-03-08) and the
as-of date 2026-03-31: a midnight-UTC date read in New York would fall a day early.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import sqlalchemy as sa

SCHEMA_SQL = Path(__file__).with_name("schema.sql")

TENANT = "11111111-1111-1111-1111-111111111111"
OTHER_TENANT = "22222222-2222-2222-2222-222222222222"
TIMEZONE = "America/New_York"
AS_OF = dt.date(2026, 3, 31)

# client ids (unique across tenants: Alga's clients.client_id is UNIQUE on its own)
ACME = "c0000000-0000-0000-0000-0000000000a1"
BETA = "c0000000-0000-0000-0000-0000000000b2"
GAMMA = "c0000000-0000-0000-0000-0000000000c3"
DELTA = "c0000000-0000-0000-0000-0000000000d5"
EPSILON = "c0000000-0000-0000-0000-0000000000e6"
OTHER = "c0000000-0000-0000-0000-0000000000d4"
REP = "a0000000-0000-0000-0000-000000000001"
OTHER_REP = "a0000000-0000-0000-0000-000000000002"
ADA = "b0000000-0000-0000-0000-000000000001"  # Acme's billing contact
BORIS = "b0000000-0000-0000-0000-000000000002"  # Beta's billing contact, inactive


def uid(prefix: int, n: int) -> str:
    return f"{prefix}0000000-0000-0000-0000-{n:012d}"


def invoice_uuid(n: int) -> str:
    return uid(1, n)


def payment_uuid(n: int) -> str:
    return uid(2, n)


def credit_uuid(n: int) -> str:
    return uid(4, n)


def allocation_uuid(n: int) -> str:
    return uid(5, n)


def transaction_uuid(n: int) -> str:
    return uid(6, n)


def create_alga_schema(engine: sa.Engine) -> None:
    """Create the Alga tables of ``schema.sql`` in an empty PostgreSQL database."""
    with engine.begin() as connection:
        connection.exec_driver_sql(SCHEMA_SQL.read_text())


def _day(text: str | None) -> str | None:
    """A date-only value as Alga stores it: midnight UTC."""
    return None if text is None else f"{text} 00:00:00+00"


def _at(text: str) -> str:
    """An instant, given in UTC."""
    return f"{text}:00+00"


# --- the ledger ------------------------------------------------------------------------------
# (n, client, number, invoice_date, due_date, total, status, finalized_at, credit_applied,
#  currency, invoice_type, is_prepayment, tenant); dates are midnight UTC unless they carry a
#  time (then an instant, UTC)
INVOICES = [
    # Acme: 5,000.00 due 2025-12-31; 2,000.00 paid, 300.00 of it refunded -> 3,300.00 open
    (1, ACME, "A-1001", "2025-12-01", "2025-12-31", 500000, "partially_applied", "2025-12-01",
     None, "EUR", "standard", False, TENANT),
    # Acme: 1,200.00 issued at 2026-01-31 23:30 UTC (an instant: 18:30 in New York, 00:30 on
    # 1 February in Berlin), due 2026-03-02; 200.00 of credit applied on 2026-02-20, 300.00 paid
    # by card and then reversed by the accounting sync -> 1,000.00 open
    (2, ACME, "A-1002", "2026-01-31 23:30", "2026-03-02", 120000, "sent", "2026-01-31", 20000,
     "EUR", "standard", False, TENANT),
    # Acme: a 200.00 credit note (stored negative); its credit is credit_tracking C1
    (3, ACME, "A-CN1", "2026-01-20", "2026-01-20", -20000, "sent", "2026-01-20", None, "EUR",
     "credit_note", False, TENANT),
    # Beta: 800.00, paid in full on 2026-03-20
    (4, BETA, "A-1003", "2026-02-10", "2026-03-12", 80000, "paid", "2026-02-10", None, "EUR",
     "standard", False, TENANT),
    # Beta: voided (cancelled): never a receivable; a period billed on it stays billed
    (5, BETA, "A-1004", "2026-01-05", "2026-02-04", 99900, "cancelled", "2026-01-05", 0, "EUR",
     "standard", False, TENANT),
    # Beta: a 400.00 prepayment, finalized and paid: credit C2, not a receivable
    (6, BETA, "A-P1", "2026-01-25", "2026-01-25", 40000, "paid", "2026-01-25", None, "EUR",
     "prepayment", True, TENANT),
    # Beta: 1,500.00 due 2026-03-16; 150.00 of credit applied on 2026-03-25 -> 1,350.00 open
    (7, BETA, "A-1005", "2026-03-01", "2026-03-16", 150000, "partially_applied", "2026-03-01",
     15000, "EUR", "standard", False, TENANT),
    # Gamma: 30,000.00 USD due 2025-10-31 -> 151 days overdue
    (8, GAMMA, "A-1006", "2025-10-01", "2025-10-31", 3000000, "overdue", "2025-10-01", None,
     "USD", "standard", False, TENANT),
    # Acme: a draft (not finalized)
    (9, ACME, "A-1007", "2026-02-01", "2026-03-01", 70000, "draft", None, None, "EUR",
     "standard", False, TENANT),
    # Acme: dated 2026-04-01 (midnight UTC, 20:00 on 31 March in New York): after the as-of date
    (10, ACME, "A-1008", "2026-04-01", "2026-05-01", 45000, "sent", "2026-04-01", None, "EUR",
     "standard", False, TENANT),
    # the other tenant: a big overdue invoice that must never appear
    (11, OTHER, "B-1", "2026-01-01", "2026-01-31", 999999, "sent", "2026-01-01", None, "EUR",
     "standard", False, OTHER_TENANT),
    # Beta: an old-style negative invoice (standard, -50.00): a credit note, its credit is C4
    (12, BETA, "A-1009", "2026-03-10", "2026-04-09", -5000, "sent", "2026-03-10", None, "EUR",
     "standard", False, TENANT),
    # Beta: a 250.00 prepayment, finalized and not paid: credit C3 all the same
    (13, BETA, "A-P2", "2026-03-05", "2026-03-05", 25000, "sent", "2026-03-05", None, "EUR",
     "prepayment", True, TENANT),
    # Acme: 'sent' but never finalized (finalized_at NULL): not a receivable for Alga's AR;
    # the source names it in its check and skips it
    (14, ACME, "A-1010", "2026-02-15", "2026-03-15", 12000, "sent", None, None, "EUR",
     "standard", False, TENANT),
    # Delta: 600.00 due 2026-03-03; 100.00 paid, its payment_date never set -> 500.00 open
    (15, DELTA, "D-1", "2026-02-01", "2026-03-03", 60000, "partially_applied", "2026-02-01",
     None, "EUR", "standard", False, TENANT),
]  # fmt: skip

# (n, invoice n, amount, payment_date (None: never set), created_at, status, method, tenant)
PAYMENTS = [
    (1, 1, 200000, _day("2026-01-15"), _at("2026-01-15 10:00"), "completed", "check", TENANT),
    # a partial refund of A-1001, written by InvoiceService.recordRefund (date-only, midnight)
    (9, 1, -30000, _day("2026-02-10"), _at("2026-02-10 09:12"), "refunded", "refund", TENANT),
    # Stripe, 2026-03-31 02:30 UTC = 30 March 22:30 in New York
    (2, 2, 30000, _at("2026-03-31 02:30"), _at("2026-03-31 02:30"), "completed", "stripe",
     TENANT),
    # the accounting sync reverses it at 2026-03-31 15:00 UTC (recordExternalPayment.ts)
    (10, 2, -30000, _at("2026-03-31 15:00"), _at("2026-03-31 15:00"), "reversed", "quickbooks",
     TENANT),
    # 2026-04-01 12:00 UTC: after the as-of date
    (3, 2, 10000, _at("2026-04-01 12:00"), _at("2026-04-01 12:00"), "completed", "stripe",
     TENANT),
    # a failed and a pending payment are no money movement
    (4, 2, 50000, _day("2026-03-02"), _at("2026-03-02 10:00"), "failed", "stripe", TENANT),
    (5, 1, 40000, _day("2026-03-02"), _at("2026-03-02 10:00"), "pending", "wire", TENANT),
    (6, 4, 80000, _day("2026-03-20"), _at("2026-03-20 10:00"), "completed", "wire", TENANT),
    # the prepayment A-P1 paid (status left NULL): its credit is C2, the payment adds nothing
    (7, 6, 40000, _day("2026-02-01"), _at("2026-02-01 10:00"), None, "wire", TENANT),
    # no payment_date: dated by created_at, 2026-03-15 16:00 UTC = 12:00 in New York
    (11, 15, 10000, None, _at("2026-03-15 16:00"), "completed", "check", TENANT),
    (8, 11, 5000, _day("2026-02-01"), _at("2026-02-01 10:00"), "completed", "wire",
     OTHER_TENANT),
]  # fmt: skip

# credit_tracking: (n, client, transaction n, source invoice n, amount, remaining, created_at,
#  expiration_date, is_expired, currency, tenant)
CREDITS = [
    # A-CN1's 200.00, drawn in full by A-1002
    (1, ACME, 1, 3, 20000, 0, _at("2026-01-20 14:05"), _day("2027-01-20"), False, "EUR", TENANT),
    # A-P1's 400.00 (its subtotal), 150.00 of it applied to A-1005
    (2, BETA, 2, 6, 40000, 25000, _at("2026-01-25 09:30"), _day("2027-01-25"), False, "EUR",
     TENANT),
    # A-P2's 250.00, issued on finalizing although unpaid
    (3, BETA, 3, 13, 25000, 25000, _at("2026-03-05 11:00"), _day("2027-03-05"), False, "EUR",
     TENANT),
    # A-1009's 50.00
    (4, BETA, 4, 12, 5000, 5000, _at("2026-03-10 08:00"), _day("2027-03-10"), False, "EUR",
     TENANT),
    # 100.00 issued 2025-06-01, expired on 2026-03-01 unused: Alga's expiry job set is_expired
    # and remaining_amount 0 and wrote a credit_expiration transaction (EXPIRATIONS)
    (5, BETA, 5, None, 10000, 0, _at("2025-06-01 12:00"), _day("2026-03-01"), True, "EUR",
     TENANT),
    # a legacy credit with no client (client_id is nullable since the company->client rename):
    # the source cannot say whose it is; it names it in its check and skips it
    (6, None, 6, None, 7700, 7700, _at("2025-05-01 12:00"), None, False, "EUR", TENANT),
    # the other tenant's credit
    (7, OTHER, 7, None, 12300, 12300, _at("2026-01-01 12:00"), None, False, "EUR",
     OTHER_TENANT),
]  # fmt: skip

# credit_expiration transactions, as Alga's expiry job writes them
# (packages/jobs/src/lib/handlers/expiredCreditsHandler.ts): (transaction n, credit n, amount,
# created_at = the job's run; the credit's updated_at is set to it too)
EXPIRATIONS = [(21, 5, -10000, _at("2026-03-01 06:00"))]

# credit_allocations: (n, transaction n, invoice n, amount, created_at, tenant)
ALLOCATIONS = [
    (1, 11, 2, 20000, _at("2026-02-20 15:00"), TENANT),  # C1 -> A-1002, 20 Feb
    (2, 12, 7, 15000, _at("2026-03-25 13:00"), TENANT),  # C2 -> A-1005, after its invoice date
]


def _users_and_clients(connection: sa.Connection) -> None:
    def user(tenant: str, user_id: str, email: str) -> dict:
        return {"t": tenant, "u": user_id, "name": email.split("@")[0], "e": email}

    connection.execute(
        sa.text(
            "INSERT INTO users (tenant, user_id, username, hashed_password, email) "
            "VALUES (:t, :u, :name, 'not-a-real-hash', :e)"
        ),
        [user(TENANT, REP, "rita.rep@vendor.example"),
         user(OTHER_TENANT, OTHER_REP, "other.rep@elsewhere.example")],
    )  # fmt: skip
    connection.execute(
        sa.text(
            "INSERT INTO clients (tenant, client_id, client_name, billing_email, "
            "billing_contact_id, is_inactive, account_manager_id) "
            "VALUES (:t, :c, :n, :e, :contact, :i, :m)"
        ),
        [
            # billing contact first: Ada's address wins over the billing e-mail
            {"t": TENANT, "c": ACME, "n": "Acme GmbH", "e": " ap@acme.example ",
             "contact": ADA, "i": False, "m": REP},
            # the billing contact is inactive: the billing e-mail
            {"t": TENANT, "c": BETA, "n": "Beta AG", "e": "billing@beta.example",
             "contact": BORIS, "i": False, "m": None},
            # nothing to write to: cannot contact
            {"t": TENANT, "c": GAMMA, "n": "Gamma Ltd", "e": None, "contact": None, "i": True,
             "m": None},
            # an invalid billing e-mail: the billing location
            {"t": TENANT, "c": DELTA, "n": "Delta SARL", "e": "n/a", "contact": None,
             "i": False, "m": None},
            # no billing e-mail, a billing location without one: the default location
            {"t": TENANT, "c": EPSILON, "n": "Epsilon Oy", "e": "", "contact": None,
             "i": False, "m": None},
            {"t": OTHER_TENANT, "c": OTHER, "n": "Other Tenant Co", "e": "ap@other.example",
             "contact": None, "i": False, "m": OTHER_REP},
        ],
    )  # fmt: skip
    connection.execute(
        sa.text(
            "INSERT INTO contacts (tenant, contact_name_id, full_name, email, client_id, "
            "is_inactive) VALUES (:t, :id, :n, :e, :c, :i)"
        ),
        [{"t": TENANT, "id": ADA, "n": "Ada Acme", "e": "ada@acme.example", "c": ACME,
          "i": False},
         {"t": TENANT, "id": BORIS, "n": "Boris Beta", "e": "boris@beta.example", "c": BETA,
          "i": True}],
    )  # fmt: skip
    location = (
        "INSERT INTO client_locations (location_id, tenant, client_id, location_name, "
        "address_line1, city, country_code, country_name, is_billing_address, is_default, "
        "email, is_active, created_at) VALUES (:id, :t, :c, :n, '1 Main St', 'Town', 'FR', "
        "'France', :billing, :default, :e, :active, :created)"
    )
    connection.execute(
        sa.text(location),
        [
            # Delta: an inactive billing location (skipped), then the active one
            {"id": uid(7, 1), "t": TENANT, "c": DELTA, "n": "Old office", "billing": True,
             "default": False, "e": "old@delta.example", "active": False,
             "created": _at("2024-01-01 09:00")},
            {"id": uid(7, 2), "t": TENANT, "c": DELTA, "n": "Accounts", "billing": True,
             "default": True, "e": "invoices@delta.example", "active": True,
             "created": _at("2024-06-01 09:00")},
            # Epsilon: a billing location without an e-mail, a default one with
            {"id": uid(7, 3), "t": TENANT, "c": EPSILON, "n": "Billing", "billing": True,
             "default": False, "e": None, "active": True, "created": _at("2024-01-01 09:00")},
            {"id": uid(7, 4), "t": TENANT, "c": EPSILON, "n": "Head office", "billing": False,
             "default": True, "e": "office@epsilon.example", "active": True,
             "created": _at("2024-01-01 09:00")},
        ],
    )  # fmt: skip


def _invoices_and_payments(connection: sa.Connection) -> None:
    rows = []
    for (n, client, number, issued, due, total, status, finalized, credit, currency, kind,
         prepayment, tenant) in INVOICES:  # fmt: skip
        rows.append({
            "t": tenant, "i": invoice_uuid(n), "c": client, "n": number,
            "d": _at(issued) if " " in issued else _day(issued), "due": _day(due), "a": total,
            "sub": total, "s": status, "f": _day(finalized), "ca": credit, "cur": currency,
            "k": kind, "p": prepayment,
            "exp": _day("2027-01-25") if prepayment else None,
        })  # fmt: skip
    connection.execute(
        sa.text(
            "INSERT INTO invoices (tenant, invoice_id, client_id, invoice_number, invoice_date, "
            "due_date, total_amount, subtotal, status, finalized_at, credit_applied, "
            "currency_code, invoice_type, is_prepayment, credit_expiration_date) "
            "VALUES (:t, :i, :c, :n, :d, :due, :a, :sub, :s, :f, :ca, :cur, :k, :p, :exp)"
        ),
        rows,
    )
    connection.execute(
        sa.text(
            "INSERT INTO invoice_payments (tenant, payment_id, invoice_id, amount, payment_date, "
            "created_at, status, payment_method) VALUES (:t, :p, :i, :a, :d, :created, :s, :m)"
        ),
        [
            {"t": tenant, "p": payment_uuid(n), "i": invoice_uuid(i), "a": amount, "d": date,
             "created": created, "s": status, "m": method}
            for n, i, amount, date, created, status, method, tenant in PAYMENTS
        ],
    )  # fmt: skip


def _credit_ledger(connection: sa.Connection) -> None:
    transactions = []
    for _n, client, txn, source, amount, _rest, created, expires, _exp, cur, tenant in CREDITS:
        kind = "credit_issuance_from_negative_invoice" if source in (3, 12) else "credit_issuance"
        transactions.append({
            "id": transaction_uuid(txn), "t": tenant, "i": None if source is None
            else invoice_uuid(source), "c": client, "type": kind, "a": amount, "cur": cur,
            "created": created, "exp": expires, "meta": None,
        })  # fmt: skip
    credit_of = {1: 1, 2: 2}  # allocation n -> credit n it drew from
    for n, txn, invoice, amount, created, tenant in ALLOCATIONS:
        client = next(row[1] for row in INVOICES if row[0] == invoice)
        meta = {"applied_credits": [{"creditId": credit_uuid(credit_of[n]), "amount": amount,
                                     "transactionId": transaction_uuid(credit_of[n])}]}
        transactions.append({
            "id": transaction_uuid(txn), "t": tenant, "i": invoice_uuid(invoice), "c": client,
            "type": "credit_application", "a": -amount, "cur": "EUR", "created": created,
            "exp": None, "meta": json.dumps(meta),
        })  # fmt: skip
    credits = {row[0]: row for row in CREDITS}
    for txn, credit, amount, created in EXPIRATIONS:
        _n, client, issued_by, _src, _a, _r, _c, _e, _x, cur, tenant = credits[credit]
        transactions.append({
            "id": transaction_uuid(txn), "t": tenant, "i": None, "c": client,
            "type": "credit_expiration", "a": amount, "cur": cur, "created": created,
            "exp": None, "meta": None, "related": transaction_uuid(issued_by),
        })  # fmt: skip
    connection.execute(
        sa.text(
            "INSERT INTO transactions (transaction_id, tenant, invoice_id, client_id, type, "
            "amount, currency_code, created_at, expiration_date, metadata, status, "
            "related_transaction_id) "
            "VALUES (:id, :t, :i, :c, :type, :a, :cur, :created, :exp, CAST(:meta AS jsonb), "
            "'completed', :related)"
        ),
        [{"related": None, **t} for t in transactions],
    )
    # a credit's updated_at as Alga leaves it: its last draw (applyCreditToInvoiceInternal), or
    # the expiry job's run
    updated = {credit_of[n]: created for n, _t, _i, _a, created, _tenant in ALLOCATIONS}
    updated |= {credit: created for _txn, credit, _a, created in EXPIRATIONS}
    connection.execute(
        sa.text(
            "INSERT INTO credit_tracking (credit_id, tenant, client_id, transaction_id, amount, "
            "remaining_amount, created_at, expiration_date, is_expired, updated_at, "
            "currency_code) VALUES (:id, :t, :c, :txn, :a, :r, :created, :exp, :expired, "
            ":updated, :cur)"
        ),
        [
            {"id": credit_uuid(n), "t": tenant, "c": client, "txn": transaction_uuid(txn),
             "a": amount, "r": rest, "created": created, "exp": expires, "expired": expired,
             "cur": cur, "updated": updated.get(n, created)}
            for n, client, txn, _src, amount, rest, created, expires, expired, cur, tenant
            in CREDITS
        ],
    )  # fmt: skip
    connection.execute(
        sa.text(
            "INSERT INTO credit_allocations (allocation_id, tenant, transaction_id, invoice_id, "
            "amount, created_at) VALUES (:id, :t, :txn, :i, :a, :created)"
        ),
        [
            {"id": allocation_uuid(n), "t": tenant, "txn": transaction_uuid(txn),
             "i": invoice_uuid(invoice), "a": amount, "created": created}
            for n, txn, invoice, amount, created, tenant in ALLOCATIONS
        ],
    )  # fmt: skip


def load_ledger(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        _users_and_clients(connection)
        _invoices_and_payments(connection)
        _credit_ledger(connection)


# --- contracts and recurring service periods -------------------------------------------------
# As of 2026-03-31: the target horizon (180 days) ends 2026-09-27 and the replenishment
# threshold (45 days) is 2026-05-15.
CONTRACT_EUR = "e0000000-0000-0000-0000-000000000001"  # Acme's contract, lines OK and LOW
CONTRACT_EUR2 = "e0000000-0000-0000-0000-000000000002"  # Acme's, line OVERLAP, priced by date
CONTRACT_BACKUP = "e0000000-0000-0000-0000-000000000003"  # active, no service periods at all
CONTRACT_OTHER = "e0000000-0000-0000-0000-000000000004"
LINE_OK = "f0000000-0000-0000-0000-000000000001"  # 250.00 a month
LINE_LOW = "f0000000-0000-0000-0000-000000000002"  # no rate on the line
LINE_OVERLAP = "f0000000-0000-0000-0000-000000000003"  # 100.00, 120.00 from 2026-02-01
LINE_OTHER = "f0000000-0000-0000-0000-000000000004"
LINE_BACKUP = "f0000000-0000-0000-0000-000000000005"  # 80.00 a month, never generated

SCHEDULE_OK = "schedule:ok"  # Jan-Oct 2026, contiguous: furthest end 2026-11-01
SCHEDULE_LOW = "schedule:low"  # Jan-Apr 2026: furthest end 2026-05-01 <= 2026-05-15
SCHEDULE_GAP = "schedule:gap"  # Jan, Feb, Apr-Dec 2026: March missing
SCHEDULE_OVERLAP = "schedule:overlap"  # March starts 2026-02-15, inside February
SCHEDULE_NONE = "schedule:none"  # Nov-Dec 2025 only: nothing in the future
RULE_VERSION = "contract-cadence:v1"


def _month(year: int, month: int) -> tuple[dt.date, dt.date]:
    start = dt.date(year, month, 1)
    return start, dt.date(year + month // 12, month % 12 + 1, 1)


def _months(first: tuple[int, int], last: tuple[int, int]) -> list[tuple[int, int]]:
    months, (year, month) = [], first
    while (year, month) <= last:
        months.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def service_period_rows() -> list[dict]:
    """Monthly periods billed in arrears: the invoice window is the week after the period.
    Everything up to February 2026 is billed (linked to an invoice charge) unless noted."""
    rows: list[dict] = []

    def add(schedule: str, line: str, start: dt.date, end: dt.date, state: str | None = None,
            revision: int = 1, window: tuple[dt.date, dt.date] | None = None,
            invoice: int | None = None, tenant: str = TENANT,
            key: str | None = None) -> None:  # fmt: skip
        billed = end <= dt.date(2026, 3, 1)  # February and earlier
        state = state or ("billed" if billed else "generated")
        if invoice is None and state == "billed":
            invoice = 1
        window = window or (end, end + dt.timedelta(days=7))
        n = len(rows) + 1
        linked = invoice is not None
        rows.append({
            "tenant": tenant, "record_id": uid(3, n), "schedule_key": schedule,
            "period_key": key or f"{start:%Y-%m}", "revision": revision, "obligation_id": line,
            "obligation_type": "contract_line", "charge_family": "fixed",
            "cadence_owner": "contract", "due_position": "arrears", "lifecycle_state": state,
            "service_period_start": start, "service_period_end": end,
            "invoice_window_start": window[0], "invoice_window_end": window[1],
            "provenance_kind": "generated" if revision == 1 else "regenerated",
            "source_rule_version": RULE_VERSION,
            "reason_code": "initial_materialization" if revision == 1 else "source_rule_changed",
            "source_run_key": "materialize:2025-12-15",
            "supersedes_record_id": None,
            "invoice_id": invoice_uuid(invoice) if linked else None,
            "invoice_charge_id": uid(8, n) if linked else None,
            "invoice_charge_detail_id": uid(9, n) if linked else None,
            "invoice_linked_at": _at(f"{window[0]} 06:00") if linked else None,
            "created_at": _at("2025-12-15 06:00"), "updated_at": _at("2025-12-15 06:00"),
        })  # fmt: skip

    for year, month in _months((2026, 1), (2026, 10)):
        start, end = _month(year, month)
        if (year, month) == (2026, 6):
            # a superseded first revision with other dates: not live, so no overlap
            add(SCHEDULE_OK, LINE_OK, dt.date(2026, 6, 10), dt.date(2026, 7, 10), "superseded")
            add(SCHEDULE_OK, LINE_OK, start, end, revision=2)
            rows[-1]["supersedes_record_id"] = rows[-2]["record_id"]
        elif (year, month) == (2026, 1):
            # January was billed on A-1004, which was then voided: the period stays billed and
            # linked to a cancelled invoice
            add(SCHEDULE_OK, LINE_OK, start, end, invoice=5)
        elif (year, month) == (2026, 2):
            # February: its window (2026-03-01 to 03-08) closed with no invoice: unbilled
            add(SCHEDULE_OK, LINE_OK, start, end, "generated")
        else:
            add(SCHEDULE_OK, LINE_OK, start, end)
    # an archived row overlapping January: history only
    add(SCHEDULE_OK, LINE_OK, dt.date(2026, 1, 15), dt.date(2026, 2, 15), "archived", revision=3)

    for year, month in _months((2026, 1), (2026, 4)):
        start, end = _month(year, month)
        # January is locked and was never invoiced (window closed 2026-02-08): unbilled, and
        # its contract line gives no amount
        add(SCHEDULE_LOW, LINE_LOW, start, end, "locked" if month == 1 else None)

    for year, month in _months((2026, 1), (2026, 12)):
        if month == 3:
            continue  # the gap: 2026-03-01 to 2026-04-01
        start, end = _month(year, month)
        # February was skipped on purpose: not unbilled work
        add(SCHEDULE_GAP, LINE_OK, start, end, "skipped" if month == 2 else None)

    for year, month in _months((2026, 1), (2026, 12)):
        start, end = _month(year, month)
        if month == 2:
            # edited, its window ends on the as-of date itself: closed (half-open), unbilled
            add(SCHEDULE_OVERLAP, LINE_OVERLAP, start, end, "edited",
                window=(dt.date(2026, 3, 24), AS_OF))  # fmt: skip
        elif month == 3:
            # edited to start on 2026-02-15: overlaps February by 14 days
            add(SCHEDULE_OVERLAP, LINE_OVERLAP, dt.date(2026, 2, 15), end, "edited",
                key="2026-03")  # fmt: skip
        else:
            add(SCHEDULE_OVERLAP, LINE_OVERLAP, start, end)

    for year, month in _months((2025, 11), (2025, 12)):
        start, end = _month(year, month)
        add(SCHEDULE_NONE, LINE_OK, start, end)
    # January: billed on A-1001 (closed window, linked): not unbilled
    add(SCHEDULE_NONE, LINE_OK, dt.date(2026, 1, 1), dt.date(2026, 2, 1), "billed", invoice=1)

    # the other tenant: a gap, nothing in the future, unbilled work: none of it may show
    add("schedule:other", LINE_OTHER, dt.date(2026, 1, 1), dt.date(2026, 2, 1), "generated",
        tenant=OTHER_TENANT)  # fmt: skip
    add("schedule:other", LINE_OTHER, dt.date(2026, 3, 1), dt.date(2026, 4, 1), "generated",
        tenant=OTHER_TENANT)  # fmt: skip
    return rows


def load_service_periods(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO contracts (tenant, contract_id, contract_name, billing_frequency, "
                "status, is_template, currency_code, owner_client_id) "
                "VALUES (:t, :k, :n, 'monthly', 'active', false, :c, :owner)"
            ),
            [{"t": TENANT, "k": CONTRACT_EUR, "n": "Managed IT", "c": "EUR", "owner": ACME},
             {"t": TENANT, "k": CONTRACT_EUR2, "n": "Monitoring", "c": "EUR", "owner": ACME},
             {"t": TENANT, "k": CONTRACT_BACKUP, "n": "Backup", "c": "EUR", "owner": ACME},
             {"t": OTHER_TENANT, "k": CONTRACT_OTHER, "n": "Other", "c": "EUR",
              "owner": OTHER}],
        )  # fmt: skip
        connection.execute(
            sa.text(
                "INSERT INTO contract_lines (tenant, contract_line_id, contract_line_name, "
                "contract_id, contract_line_type, billing_frequency, cadence_owner, "
                "custom_rate, is_template) VALUES (:t, :l, :n, :k, 'Fixed', 'monthly', "
                "'contract', :r, false)"
            ),
            [{"t": TENANT, "l": LINE_OK, "n": "Managed workstations", "k": CONTRACT_EUR,
              "r": 25000},
             {"t": TENANT, "l": LINE_LOW, "n": "Managed servers", "k": CONTRACT_EUR,
              "r": None},
             {"t": TENANT, "l": LINE_OVERLAP, "n": "Monitoring", "k": CONTRACT_EUR2,
              "r": 10000},
             {"t": TENANT, "l": LINE_BACKUP, "n": "Backup", "k": CONTRACT_BACKUP, "r": 8000},
             {"t": OTHER_TENANT, "l": LINE_OTHER, "n": "Other", "k": CONTRACT_OTHER,
              "r": 77700}],
        )  # fmt: skip
        connection.execute(
            sa.text(
                "INSERT INTO contract_pricing_schedules (tenant, schedule_id, contract_id, "
                "effective_date, end_date, custom_rate) VALUES (:t, :s, :k, :start, :end, :r)"
            ),
            # Monitoring costs 120.00 a month from February 2026 on
            [{"t": TENANT, "s": uid(6, 900), "k": CONTRACT_EUR2, "start": dt.date(2026, 2, 1),
              "end": None, "r": 12000}],
        )  # fmt: skip
        connection.execute(
            sa.text(
                "INSERT INTO client_contracts (tenant, client_contract_id, client_id, "
                "contract_id, start_date, end_date, is_active, status) "
                "VALUES (:t, :cc, :c, :k, :start, :end, :active, 'pending')"
            ),
            [{"t": TENANT, "cc": uid(6, 901), "c": ACME, "k": CONTRACT_EUR,
              "start": dt.date(2025, 11, 1), "end": None, "active": True},
             {"t": TENANT, "cc": uid(6, 902), "c": ACME, "k": CONTRACT_EUR2,
              "start": dt.date(2026, 1, 1), "end": None, "active": True},
             {"t": TENANT, "cc": uid(6, 903), "c": ACME, "k": CONTRACT_BACKUP,
              "start": dt.date(2026, 1, 1), "end": None, "active": True},
             {"t": OTHER_TENANT, "cc": uid(6, 904), "c": OTHER, "k": CONTRACT_OTHER,
              "start": dt.date(2026, 1, 1), "end": None, "active": True}],
        )  # fmt: skip
        rows = service_period_rows()
        columns = list(rows[0])
        periods = sa.table("recurring_service_periods", *[sa.column(c) for c in columns])
        connection.execute(periods.insert(), rows)


def load_all(engine: sa.Engine) -> None:
    create_alga_schema(engine)
    load_ledger(engine)
    load_service_periods(engine)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m ar_pipeline.sources.alga_fixture <URL of an empty database>")
        return 2
    engine = sa.create_engine(argv[0])
    load_all(engine)
    engine.dispose()
    print(f"Loaded the Alga PSA fixture (tenant {TENANT}); run as of {AS_OF} in {TIMEZONE}.")
    return 0
