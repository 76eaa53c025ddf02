"""A hand-built Alga PSA billing database for the source adapter's tests.

Only the tables and columns the adapter reads, with the types Alga PSA's migrations give them
(uuid keys, timestamptz invoice and payment dates, integer cents, ``date`` service periods). Two
tenants: everything of ``OTHER_TENANT`` is bait that must never show up.

The business time zone of the tests is Europe/Berlin (UTC+1 in winter, UTC+2 from 2026-03-29),
and the as-of date is 2026-03-31. Several timestamps sit near midnight so that a date taken in
UTC would land on the wrong day.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

TENANT = "11111111-1111-1111-1111-111111111111"
OTHER_TENANT = "22222222-2222-2222-2222-222222222222"
TIMEZONE = "Europe/Berlin"
AS_OF = dt.date(2026, 3, 31)

# client ids
ACME = "c0000000-0000-0000-0000-0000000000a1"
BETA = "c0000000-0000-0000-0000-0000000000b2"
GAMMA = "c0000000-0000-0000-0000-0000000000c3"
OTHER = "c0000000-0000-0000-0000-0000000000d4"
REP = "a0000000-0000-0000-0000-000000000001"


def invoice_uuid(n: int) -> str:
    return f"10000000-0000-0000-0000-{n:012d}"


DDL = """
CREATE TABLE users (
    tenant uuid NOT NULL, user_id uuid NOT NULL, email text NOT NULL,
    PRIMARY KEY (tenant, user_id));
CREATE TABLE clients (
    tenant uuid NOT NULL, client_id uuid NOT NULL, client_name text NOT NULL,
    billing_email text, is_inactive boolean NOT NULL DEFAULT false, account_manager_id uuid,
    PRIMARY KEY (tenant, client_id));
CREATE TABLE invoices (
    tenant uuid NOT NULL, invoice_id uuid NOT NULL, client_id uuid NOT NULL,
    invoice_number text, invoice_date timestamptz NOT NULL, due_date timestamptz,
    total_amount bigint NOT NULL, credit_applied bigint NOT NULL DEFAULT 0,
    currency_code varchar(3) NOT NULL DEFAULT 'USD', status text NOT NULL,
    invoice_type varchar(20) NOT NULL DEFAULT 'standard',
    PRIMARY KEY (tenant, invoice_id),
    FOREIGN KEY (tenant, client_id) REFERENCES clients (tenant, client_id));
CREATE TABLE invoice_payments (
    tenant uuid NOT NULL, payment_id uuid NOT NULL, invoice_id uuid NOT NULL,
    amount bigint NOT NULL, payment_date timestamptz NOT NULL DEFAULT now(),
    status varchar(50) DEFAULT 'completed',
    PRIMARY KEY (tenant, payment_id),
    FOREIGN KEY (tenant, invoice_id) REFERENCES invoices (tenant, invoice_id));
CREATE TABLE contracts (
    tenant uuid NOT NULL, contract_id uuid NOT NULL, currency_code varchar(3),
    PRIMARY KEY (tenant, contract_id));
CREATE TABLE contract_lines (
    tenant uuid NOT NULL, contract_line_id uuid NOT NULL, contract_id uuid NOT NULL,
    custom_rate numeric(10, 2),
    PRIMARY KEY (tenant, contract_line_id));
CREATE TABLE recurring_service_periods (
    tenant uuid NOT NULL, record_id uuid NOT NULL, schedule_key varchar(255) NOT NULL,
    period_key varchar(255) NOT NULL, revision integer NOT NULL DEFAULT 1,
    obligation_id uuid NOT NULL, obligation_type varchar(40) NOT NULL,
    charge_family varchar(20) NOT NULL, cadence_owner varchar(20) NOT NULL,
    due_position varchar(20) NOT NULL, lifecycle_state varchar(20) NOT NULL,
    service_period_start date NOT NULL, service_period_end date NOT NULL,
    invoice_window_start date NOT NULL, invoice_window_end date NOT NULL,
    activity_window_start date, activity_window_end date,
    provenance_kind varchar(20) NOT NULL DEFAULT 'generated',
    invoice_id uuid, invoice_charge_id uuid, invoice_charge_detail_id uuid,
    PRIMARY KEY (tenant, record_id),
    UNIQUE (tenant, schedule_key, period_key, revision),
    CHECK (service_period_start < service_period_end),
    CHECK (invoice_window_start < invoice_window_end));
"""


def create_alga_schema(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        for statement in DDL.split(";"):
            if statement.strip():
                connection.execute(sa.text(statement))


# --- the ledger ------------------------------------------------------------------------------
# (invoice n, client, number, invoice_date UTC, due_date UTC, total, credit_applied, currency,
#  status, invoice_type, tenant)
INVOICES = [
    # Acme: 5,000.00 issued 2025-12-01, due 2025-12-31; 2,000.00 paid -> 3,000.00 open, 90 days
    (1, ACME, "A-1001", "2025-12-01 10:00", "2025-12-31 10:00", 500000, 0, "EUR", "sent",
     "standard", TENANT),
    # Acme: 1,200.00 issued 2026-01-31 23:30 UTC = 2026-02-01 in Berlin, due 2026-02-28 23:30 UTC
    # = 2026-03-01 in Berlin; 200.00 of credit applied (from A-CN1), 300.00 paid in time -> 700.00
    # open, 30 days overdue (31 if the due date were read in UTC)
    (2, ACME, "A-1002", "2026-01-31 23:30", "2026-02-28 23:30", 120000, 20000, "EUR",
     "partially_applied", "standard", TENANT),
    # Acme: a 200.00 credit note (Alga stores it negative), drawn in full by A-1002
    (3, ACME, "A-CN1", "2026-01-20 09:00", None, -20000, 0, "EUR", "sent", "credit_note", TENANT),
    # Beta: 800.00, paid in full on 2026-03-20
    (4, BETA, "A-1003", "2026-02-10 09:00", "2026-03-12 09:00", 80000, 0, "EUR", "sent",
     "standard", TENANT),
    # Beta: cancelled, never a receivable
    (5, BETA, "A-1004", "2026-01-05 09:00", "2026-02-04 09:00", 99900, 0, "EUR", "cancelled",
     "standard", TENANT),
    # Beta: a 400.00 prepayment invoice, paid: not a receivable, the payment is cash on account
    (6, BETA, "A-P1", "2026-01-25 09:00", "2026-01-25 09:00", 40000, 0, "EUR", "paid",
     "prepayment", TENANT),
    # Beta: 1,500.00 due 2026-03-16 -> 15 days overdue
    (7, BETA, "A-1005", "2026-03-01 09:00", "2026-03-16 09:00", 150000, 0, "EUR", "sent",
     "standard", TENANT),
    # Gamma (inactive, no billing e-mail): 30,000.00 USD due 2025-10-31 -> 151 days overdue
    (8, GAMMA, "A-1006", "2025-10-01 12:00", "2025-10-31 12:00", 3000000, 0, "USD", "overdue",
     "standard", TENANT),
    # Acme: a draft
    (9, ACME, "A-1007", "2026-02-01 09:00", "2026-03-01 09:00", 70000, 0, "EUR", "draft",
     "standard", TENANT),
    # Acme: issued 2026-03-31 22:15 UTC = 2026-04-01 in Berlin: after the as-of date
    (10, ACME, "A-1008", "2026-03-31 22:15", "2026-04-30 22:15", 45000, 0, "EUR", "sent",
     "standard", TENANT),
    # Beta: an old-style negative invoice (standard, -50.00): a credit note all the same
    (12, BETA, "A-1009", "2026-03-10 09:00", "2026-04-09 09:00", -5000, 0, "EUR", "sent",
     "standard", TENANT),
    # the other tenant: a big overdue invoice that must not appear
    (11, OTHER, "B-1", "2026-01-01 09:00", "2026-01-31 09:00", 999999, 0, "EUR", "sent",
     "standard", OTHER_TENANT),
]  # fmt: skip

# (payment n, invoice n, amount, payment_date UTC, status, tenant)
PAYMENTS = [
    (1, 1, 200000, "2026-01-15 10:00", "completed", TENANT),
    # 2026-03-30 22:30 UTC is 2026-03-31 00:30 in Berlin: counts
    (2, 2, 30000, "2026-03-30 22:30", "completed", TENANT),
    # 2026-03-31 22:30 UTC is 2026-04-01 00:30 in Berlin: after the as-of date
    (3, 2, 10000, "2026-03-31 22:30", "completed", TENANT),
    # a failed payment and a pending one never count
    (4, 2, 50000, "2026-03-02 10:00", "failed", TENANT),
    (5, 1, 40000, "2026-03-02 10:00", "pending", TENANT),
    (6, 4, 80000, "2026-03-20 10:00", "completed", TENANT),
    (7, 6, 40000, "2026-02-01 10:00", None, TENANT),  # status left NULL: Alga's default, paid
    (8, 11, 5000, "2026-02-01 10:00", "completed", OTHER_TENANT),
]


def _ts(text: str | None) -> str | None:
    return None if text is None else f"{text}:00+00"


def load_ledger(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO users (tenant, user_id, email) VALUES (:t, :u, :e)"),
            [{"t": TENANT, "u": REP, "e": "rita.rep@vendor.example"},
             {"t": OTHER_TENANT, "u": REP, "e": "other.rep@elsewhere.example"}],
        )  # fmt: skip
        connection.execute(
            sa.text(
                "INSERT INTO clients (tenant, client_id, client_name, billing_email, "
                "is_inactive, account_manager_id) VALUES (:t, :c, :n, :e, :i, :m)"
            ),
            [
                {"t": TENANT, "c": ACME, "n": "Acme GmbH", "e": " ap@acme.example ", "i": False,
                 "m": REP},
                {"t": TENANT, "c": BETA, "n": "Beta AG", "e": "billing@beta.example", "i": False,
                 "m": None},
                {"t": TENANT, "c": GAMMA, "n": "Gamma Ltd", "e": None, "i": True, "m": None},
                {"t": OTHER_TENANT, "c": OTHER, "n": "Other Tenant Co",
                 "e": "ap@other.example", "i": False, "m": REP},
            ],
        )  # fmt: skip
        connection.execute(
            sa.text(
                "INSERT INTO invoices (tenant, invoice_id, client_id, invoice_number, "
                "invoice_date, due_date, total_amount, credit_applied, currency_code, status, "
                "invoice_type) VALUES (:t, :i, :c, :n, :d, :due, :a, :ca, :cur, :s, :k)"
            ),
            [
                {"i": invoice_uuid(n), "c": c, "n": number, "d": _ts(d), "due": _ts(due),
                 "a": total, "ca": credit, "cur": cur, "s": status, "k": kind, "t": tenant}
                for n, c, number, d, due, total, credit, cur, status, kind, tenant in INVOICES
            ],
        )  # fmt: skip
        connection.execute(
            sa.text(
                "INSERT INTO invoice_payments (tenant, payment_id, invoice_id, amount, "
                "payment_date, status) VALUES (:t, :p, :i, :a, :d, :s)"
            ),
            [
                {"t": tenant, "p": f"20000000-0000-0000-0000-{n:012d}", "i": invoice_uuid(i),
                 "a": amount, "d": _ts(d), "s": status}
                for n, i, amount, d, status, tenant in PAYMENTS
            ],
        )  # fmt: skip


# --- the recurring service periods ----------------------------------------------------------
# As of 2026-03-31: the target horizon (180 days) ends 2026-09-27 and the replenishment
# threshold (45 days) is 2026-05-15.
CONTRACT_EUR = "e0000000-0000-0000-0000-000000000001"
LINE_OK = "f0000000-0000-0000-0000-000000000001"  # 250.00 a month
LINE_LOW = "f0000000-0000-0000-0000-000000000002"  # no rate on the line
LINE_OVERLAP = "f0000000-0000-0000-0000-000000000003"  # 100.00 a month
LINE_OTHER = "f0000000-0000-0000-0000-000000000004"

SCHEDULE_OK = "schedule:ok"  # Jan-Oct 2026, contiguous: furthest end 2026-11-01
SCHEDULE_LOW = "schedule:low"  # Jan-Apr 2026: furthest end 2026-05-01 <= 2026-05-15
SCHEDULE_GAP = "schedule:gap"  # Jan, Feb, Apr-Dec 2026: March missing
SCHEDULE_OVERLAP = "schedule:overlap"  # March starts 2026-02-15, inside February
SCHEDULE_NONE = "schedule:none"  # Nov-Dec 2025 only: nothing in the future


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
    Everything up to February 2026 is billed (linked to an invoice) unless noted."""
    rows: list[dict] = []

    def add(schedule: str, line: str, start: dt.date, end: dt.date, state: str | None = None,
            revision: int = 1, window: tuple[dt.date, dt.date] | None = None,
            linked: bool | None = None, tenant: str = TENANT,
            key: str | None = None) -> None:  # fmt: skip
        billed = end <= dt.date(2026, 3, 1)  # February and earlier
        state = state or ("billed" if billed else "generated")
        linked = (state == "billed") if linked is None else linked
        window = window or (end, end + dt.timedelta(days=7))
        n = len(rows) + 1
        rows.append({
            "tenant": tenant, "record_id": f"30000000-0000-0000-0000-{n:012d}",
            "schedule_key": schedule, "period_key": key or f"{start:%Y-%m}", "revision": revision,
            "obligation_id": line, "obligation_type": "contract_line", "charge_family": "fixed",
            "cadence_owner": "contract", "due_position": "arrears", "lifecycle_state": state,
            "service_period_start": start, "service_period_end": end,
            "invoice_window_start": window[0], "invoice_window_end": window[1],
            "invoice_id": invoice_uuid(1) if linked else None,
        })  # fmt: skip

    for year, month in _months((2026, 1), (2026, 10)):
        start, end = _month(year, month)
        if (year, month) == (2026, 6):
            # a superseded first revision with other dates: not live, so no overlap
            add(SCHEDULE_OK, LINE_OK, dt.date(2026, 6, 10), dt.date(2026, 7, 10), "superseded")
            add(SCHEDULE_OK, LINE_OK, start, end, revision=2)
        elif (year, month) == (2026, 2):
            # February: its window (2026-03-01 to 03-08) closed with no invoice: unbilled
            add(SCHEDULE_OK, LINE_OK, start, end, "generated")
        elif (year, month) == (2026, 3):
            # March: window 2026-04-01 to 04-08 still open: due later, not unbilled
            add(SCHEDULE_OK, LINE_OK, start, end)
        else:
            add(SCHEDULE_OK, LINE_OK, start, end)
    # an archived row overlapping January: history only
    add(SCHEDULE_OK, LINE_OK, dt.date(2026, 1, 15), dt.date(2026, 2, 15), "archived", revision=2)

    for year, month in _months((2026, 1), (2026, 4)):
        start, end = _month(year, month)
        # January is locked and was never invoiced (window closed 2026-02-08): unbilled, and
        # its contract line gives no amount
        add(SCHEDULE_LOW, LINE_LOW, start, end, "locked" if month == 1 else None, linked=False)

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
    # generated with a closed window but already linked to an invoice: not unbilled
    add(SCHEDULE_NONE, LINE_OK, dt.date(2026, 1, 1), dt.date(2026, 2, 1), "generated", linked=True)

    # the other tenant: a gap, nothing in the future, unbilled work: none of it may show
    add("schedule:other", LINE_OTHER, dt.date(2026, 1, 1), dt.date(2026, 2, 1), "generated",
        linked=False, tenant=OTHER_TENANT)  # fmt: skip
    add("schedule:other", LINE_OTHER, dt.date(2026, 3, 1), dt.date(2026, 4, 1), "generated",
        linked=False, tenant=OTHER_TENANT)  # fmt: skip
    return rows


def load_service_periods(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO contracts VALUES (:t, :k, :c)"),
            [{"t": TENANT, "k": CONTRACT_EUR, "c": "EUR"},
             {"t": OTHER_TENANT, "k": CONTRACT_EUR, "c": "EUR"}],
        )  # fmt: skip
        connection.execute(
            sa.text("INSERT INTO contract_lines VALUES (:t, :l, :k, :r)"),
            [{"t": TENANT, "l": LINE_OK, "k": CONTRACT_EUR, "r": 25000},
             {"t": TENANT, "l": LINE_LOW, "k": CONTRACT_EUR, "r": None},
             {"t": TENANT, "l": LINE_OVERLAP, "k": CONTRACT_EUR, "r": 10000},
             {"t": OTHER_TENANT, "l": LINE_OTHER, "k": CONTRACT_EUR, "r": 77700}],
        )  # fmt: skip
        rows = service_period_rows()
        columns = list(rows[0])
        periods = sa.table("recurring_service_periods", *[sa.column(c) for c in columns])
        connection.execute(periods.insert(), rows)


def load_all(engine: sa.Engine) -> None:
    create_alga_schema(engine)
    load_ledger(engine)
    load_service_periods(engine)


if __name__ == "__main__":
    # python -m ar_pipeline_tests.alga_fixture postgresql+psycopg://.../an_empty_database
    import sys

    if len(sys.argv) != 2:
        sys.exit("usage: python -m ar_pipeline_tests.alga_fixture <URL of an empty database>")
    load_all(sa.create_engine(sys.argv[1]))
    print(f"Loaded the Alga PSA fixture (tenant {TENANT}); run as of {AS_OF} in {TIMEZONE}.")
