"""The collector's worklist (docs/design.md, Today's calls): whom to call first, per currency,
ranked by the amount a contact today is expected to recover.

The rule, as of a date D, for each customer and currency with dunnable debt on D:

    expected recovery = min(dunnable, sum over overdue buckets b of overdue_b x rate_b)
                        x payer x contact

* ``overdue_b``: the customer's undisputed open cents in bucket ``b`` (1-30 days overdue, 31-60,
  61-90, 91-120, over 120) on D, from the one aging definition (:mod:`ar_pipeline.rules.aging`);
* ``rate_b``: the share of overdue cents in bucket ``b`` that was settled (paid or credited)
  within the next :data:`RECOVERY_DAYS` days, measured on this ledger at the *reference dates*
  D-30, D-60, ... D-360 (each one's 30 days have passed by D), per currency. A bucket never seen
  takes the currency's overall share; a currency without history takes 1 (rank by amount);
* ``payer``: how this customer settles compared with the others: its own settled-within-30-days
  share over the same reference dates, shrunk towards the currency's share by
  :data:`PRIOR_OBSERVATIONS` observations (an invoice on a reference date is one observation),
  divided by the currency's share. A customer without history is 1;
* ``contact``: :data:`RECENT_CONTACT_FACTOR` when a letter went out to the customer in the last
  :data:`RECENT_CONTACT_DAYS` days (it needs time to work), else 1.

Amounts of different currencies are never added or compared: each currency has its own list,
and its own rates. Nothing after D is read: balances come from the ledger's events as of each
date, letters from those applied by the end of D.

**Backtest.** The same rule is evaluated on earlier mornings E = D-30, D-60, ... (each with rates
from the reference dates before it, so it sees no more than it would have then, capped at that
morning's dunnable amount as today's list is) and its top
:data:`BACKTEST_TOP` customers per currency are compared with the top by overdue amount alone:
how much of their overdue cents on E was settled within the following 30 days
(:func:`backtest`). Letters of the past are not used in the backtest (the contact factor is 1
there), because the mornings before the product ran have none.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import FromClause, Select

from ar_pipeline.rules.aging import (
    BUCKETS,
    DEFAULT_THRESHOLD_DAYS,
    AgingSource,
    SnapshotSource,
    aging_by_customer,
    as_of_dates,
    source_for,
)
from ar_pipeline.rules.levers import held_invoice_ids, promise_outcomes
from ar_pipeline.rules.money import format_amount, format_money
from ar_pipeline.rules.tiering import day_start_utc, latest_applied_actions
from ar_pipeline.store.database import bulk_insert
from ar_pipeline.store.schema import (
    collection_worklist,
    invoice_holds,
    payments,
    promises_to_pay,
)
from ar_pipeline.store.sql_functions import bound_date, days_between

RECOVERY_DAYS = 30  # "recovered" means settled within this many days after the morning
REFERENCE_DATES = 12  # reference dates D-30 ... D-360 calibrate the rates
PRIOR_OBSERVATIONS = 5  # a customer's own share counts this much less than the currency's
RECENT_CONTACT_DAYS = 7
RECENT_CONTACT_FACTOR = 0.5
PROMISE_PRIOR = 2  # a customer starts as if it had kept this many promises
BACKTEST_MORNINGS = 6  # D-30 ... D-180
BACKTEST_TOP = 10
OVERDUE_BUCKETS = tuple(name for name, low, _ in BUCKETS if low is not None)
BUCKET_WORDS = {
    "1_30": "1-30 days", "31_60": "31-60 days", "61_90": "61-90 days",
    "91_120": "91-120 days", "over_120": "over 120 days",
}  # fmt: skip


def _day(as_of: dt.date, days_back: int) -> dt.date:
    return as_of - dt.timedelta(days=days_back)


def _pairs(as_of: dt.date, count: int) -> FromClause:
    """(ref, later) for each reference date: ref = D-30k, later = ref + 30, k = 1..count."""
    rows = [
        sa.select(
            bound_date(_day(as_of, RECOVERY_DAYS * k)).label("ref"),
            bound_date(_day(as_of, RECOVERY_DAYS * (k - 1))).label("later"),
        )
        for k in range(1, count + 1)
    ]
    return sa.union_all(*rows).subquery("reference_pairs")


def _mornings(dates: Sequence[dt.date]) -> FromClause:
    """(morning, since): each morning with the start of its calibration window; a reference
    date counts on a morning when its 30 days ended after ``since`` and by the morning."""
    rows = [
        sa.select(
            bound_date(d).label("morning"),
            bound_date(_day(d, RECOVERY_DAYS * REFERENCE_DATES)).label("since"),
        )
        for d in dates
    ]
    return (rows[0] if len(rows) == 1 else sa.union_all(*rows)).subquery("mornings")


class Calibration:
    """The overdue items on D and on each reference date, with what each settled within 30
    days, and the rates and payer factors they give on each morning (all SQL, shared CTEs)."""

    def __init__(self, as_of: dt.date, references: int = REFERENCE_DATES) -> None:
        dates = [_day(as_of, RECOVERY_DAYS * k) for k in range(references + 1)]
        on_dates = as_of_dates(dates)
        self.source = AgingSource(on_dates)
        items = self.source.open_items().cte("worklist_items")
        held = held_invoice_ids(on_dates).subquery("worklist_held")
        # overdue, undisputed items not held that day: what a call can be about
        self.overdue = (
            sa.select(
                items.c.as_of, items.c.customer_id, items.c.currency, items.c.invoice_id,
                items.c.bucket, items.c.open_cents,
            )
            .select_from(
                items.outerjoin(
                    held,
                    sa.and_(held.c.as_of == items.c.as_of, held.c.invoice_id == items.c.invoice_id),
                )
            )
            .where(
                items.c.days_overdue >= 1, sa.not_(items.c.disputed),
                held.c.invoice_id.is_(None),
            )
            .cte("worklist_overdue")
        )  # fmt: skip
        pairs = _pairs(as_of, references)
        later = items.alias("later_items")
        ov = self.overdue
        left = sa.func.coalesce(later.c.open_cents, 0)
        settled = ov.c.open_cents - sa.case((left > ov.c.open_cents, ov.c.open_cents), else_=left)
        self.observations = (
            sa.select(
                ov.c.as_of.label("ref"), pairs.c.later, ov.c.customer_id, ov.c.currency,
                ov.c.bucket, ov.c.open_cents, settled.label("settled_cents"),
            )
            .select_from(
                ov.join(pairs, pairs.c.ref == ov.c.as_of).outerjoin(
                    later,
                    sa.and_(later.c.invoice_id == ov.c.invoice_id, later.c.as_of == pairs.c.later),
                )
            )
            .cte("recovery_observations")
        )  # fmt: skip

    def rates(self, mornings: FromClause) -> tuple[FromClause, FromClause, FromClause]:
        """Per morning, from the observations whose 30 days ended by it: the share settled per
        (currency, bucket), per currency, and per (customer, currency) with its count."""
        ob, m = self.observations, mornings.c.morning
        seen = self.observations.join(
            mornings, sa.and_(ob.c.later <= m, ob.c.later > mornings.c.since)
        )

        def share(*keys: sa.ColumnElement, name: str) -> FromClause:
            return (
                sa.select(
                    m, *keys,
                    (sa.cast(sa.func.sum(ob.c.settled_cents), sa.Float)
                     / sa.func.sum(ob.c.open_cents)).label("share"),
                    sa.func.count().label("observations"),
                )
                .select_from(seen)
                .group_by(m, *keys)
                .having(sa.func.sum(ob.c.open_cents) > 0)
                .subquery(name)
            )  # fmt: skip

        return (
            share(ob.c.currency, ob.c.bucket, name="bucket_rates"),
            share(ob.c.currency, name="currency_rates"),
            share(ob.c.customer_id, ob.c.currency, name="customer_rates"),
        )

    def scores(self, mornings: FromClause) -> Select:
        """Per morning, customer and currency with overdue items that morning: the overdue
        cents (all buckets and per bucket), the payer factor and the uncapped expected recovery
        (sum of overdue_b x rate_b x payer, before the contact factor)."""
        bucket_rates, currency_rates, customer_rates = self.rates(mornings)
        ov, m = self.overdue, mornings.c.morning
        overall = currency_rates.c.share
        rate = sa.func.coalesce(bucket_rates.c.share, overall, 1.0)
        shrunk = (
            customer_rates.c.observations * customer_rates.c.share + PRIOR_OBSERVATIONS * overall
        ) / (customer_rates.c.observations + PRIOR_OBSERVATIONS)
        payer = sa.case(
            (sa.and_(customer_rates.c.share.is_not(None), overall > 0), shrunk / overall),
            else_=1.0,
        )
        per_bucket = (
            sa.select(
                m, ov.c.customer_id, ov.c.currency, ov.c.bucket,
                sa.func.sum(ov.c.open_cents).label("overdue_cents"),
            )
            .select_from(ov.join(mornings, ov.c.as_of == m))
            .group_by(m, ov.c.customer_id, ov.c.currency, ov.c.bucket)
            .subquery("overdue_per_bucket")
        )  # fmt: skip
        pb = per_bucket.c
        joined = (
            per_bucket.outerjoin(
                bucket_rates,
                sa.and_(bucket_rates.c.morning == pb.morning,
                        bucket_rates.c.currency == pb.currency,
                        bucket_rates.c.bucket == pb.bucket),
            )
            .outerjoin(
                currency_rates,
                sa.and_(currency_rates.c.morning == pb.morning,
                        currency_rates.c.currency == pb.currency),
            )
            .outerjoin(
                customer_rates,
                sa.and_(customer_rates.c.morning == pb.morning,
                        customer_rates.c.customer_id == pb.customer_id,
                        customer_rates.c.currency == pb.currency),
            )
        )  # fmt: skip

        def in_bucket(name: str) -> sa.ColumnElement:
            return sa.func.sum(sa.case((pb.bucket == name, pb.overdue_cents), else_=0))

        return (
            sa.select(
                pb.morning, pb.customer_id, pb.currency,
                sa.func.sum(pb.overdue_cents).label("overdue_cents"),
                *[in_bucket(name).label(f"overdue_{name}") for name in OVERDUE_BUCKETS],
                *[sa.func.max(sa.case((pb.bucket == name, rate))).label(f"rate_{name}")
                  for name in OVERDUE_BUCKETS],
                sa.func.max(payer).label("payer_factor"),
                sa.func.sum(pb.overdue_cents * rate * payer).label("expected_raw"),
            )
            .select_from(joined)
            .group_by(pb.morning, pb.customer_id, pb.currency)
        )  # fmt: skip


# --- today's list ----------------------------------------------------------------------------


def _average_days_late(as_of: dt.date) -> Select:
    """Per customer and currency: the average days between due date and payment of payments
    that name an invoice, received in the year up to ``as_of`` (for the reason only)."""
    from ar_pipeline.store.schema import invoices

    late = days_between(payments.c.received_date, invoices.c.due_date)
    return (
        sa.select(
            payments.c.customer_id,
            payments.c.currency,
            sa.func.avg(sa.cast(late, sa.Float)).label("average_days_late"),
        )
        .select_from(payments.join(invoices, invoices.c.invoice_id == payments.c.invoice_id))
        .where(
            payments.c.received_date <= as_of,
            payments.c.received_date > _day(as_of, 365),
            payments.c.amount_cents > 0,
            invoices.c.customer_id == payments.c.customer_id,
        )
        .group_by(payments.c.customer_id, payments.c.currency)
    )


def _last_contacts(as_of: dt.date, timezone: ZoneInfo) -> Select:
    """Per customer, the latest contact as of ``as_of``: a letter applied (by the end of the
    day), or a promise or a hold recorded (on or before the day), as they come from a call.
    Columns: customer_id, contact_at, contact_kind, letter_tier."""
    letters = latest_applied_actions(as_of, timezone).subquery("letters")
    p, h = promises_to_pay.c, invoice_holds.c
    contacts = sa.union_all(
        sa.select(letters.c.customer_id, letters.c.applied_at.label("contact_at"),
                  sa.literal("letter").label("contact_kind"), letters.c.tier.label("letter_tier")),
        sa.select(p.customer_id, p.recorded_at, sa.literal("promise"), sa.null())
        .where(p.recorded_on <= as_of),
        sa.select(h.customer_id, h.recorded_at, sa.literal("hold"), sa.null())
        .where(h.recorded_on <= as_of),
    ).subquery("contacts")  # fmt: skip
    latest = sa.func.row_number().over(
        partition_by=contacts.c.customer_id, order_by=contacts.c.contact_at.desc()
    )
    ranked = sa.select(*contacts.c, latest.label("recency")).subquery("ranked_contacts")
    return sa.select(
        ranked.c.customer_id, ranked.c.contact_at, ranked.c.contact_kind, ranked.c.letter_tier
    ).where(ranked.c.recency == 1)


def _promise_records(as_of: dt.date) -> Select:
    """Per customer and currency, its promises judged by ``as_of``: kept, partly kept, broken."""
    outcomes = promise_outcomes(as_of).subquery("promise_outcomes")
    o = outcomes.c

    def counted(outcome: str) -> sa.ColumnElement:
        return sa.func.sum(sa.case((o.outcome == outcome, 1), else_=0))

    return sa.select(
        o.customer_id, o.currency, counted("kept").label("promises_kept"),
        counted("partly_kept").label("promises_partly_kept"),
        counted("broken").label("promises_broken"),
    ).group_by(o.customer_id, o.currency)  # fmt: skip


def worklist_query(
    as_of: dt.date,
    timezone: ZoneInfo,
    threshold_days: int = DEFAULT_THRESHOLD_DAYS,
    snapshot: SnapshotSource | None = None,
) -> Select:
    """Every customer and currency with dunnable debt on ``as_of``, with the parts of the rule,
    the expected recovery and its rank in the currency (1 = call first; ties: the larger
    dunnable amount, then the customer id). ``snapshot``: the day's stored balances, if the
    daily run wrote them (the same figures as the ledger's events, read faster)."""
    calibration = Calibration(as_of)
    scores = calibration.scores(_mornings([as_of])).subquery("scores")
    # the day's aging from the stored snapshot when there is one, else from the calibration's
    # own balances (which include D): one set of CTEs per statement
    aging = aging_by_customer(
        as_of_dates([as_of]), threshold_days, source=snapshot or calibration.source
    ).subquery("aging")
    contacts = _last_contacts(as_of, timezone).subquery("last_contacts")
    promises = _promise_records(as_of).subquery("promise_records")
    lateness = _average_days_late(as_of).subquery("lateness")
    s = scores.c
    contacted = contacts.c.contact_at >= day_start_utc(
        _day(as_of, RECENT_CONTACT_DAYS - 1), timezone
    )
    contact = sa.case((contacted, RECENT_CONTACT_FACTOR), else_=1.0)
    kept = sa.func.coalesce(promises.c.promises_kept, 0)
    partly = sa.func.coalesce(promises.c.promises_partly_kept, 0)
    broken = sa.func.coalesce(promises.c.promises_broken, 0)
    promise = (kept + 0.5 * partly + PROMISE_PRIOR) / (kept + partly + broken + PROMISE_PRIOR)
    raw = s.expected_raw * promise
    capped = sa.case((raw > aging.c.dunnable_cents, aging.c.dunnable_cents), else_=raw)
    expected = sa.cast(sa.func.round(capped * contact), sa.BigInteger)
    ranked = (
        sa.select(
            aging.c.as_of, aging.c.customer_id, aging.c.customer_name, aging.c.currency,
            expected.label("expected_recovery_cents"),
            aging.c.dunnable_cents, s.overdue_cents,
            *[s[f"overdue_{name}"] for name in OVERDUE_BUCKETS],
            *[s[f"rate_{name}"] for name in OVERDUE_BUCKETS],
            s.payer_factor, promise.label("promise_factor"), kept.label("promises_kept"),
            partly.label("promises_partly_kept"), broken.label("promises_broken"),
            contacts.c.contact_at.label("last_contact_at"), contacts.c.contact_kind,
            contacts.c.letter_tier, lateness.c.average_days_late,
        )
        .select_from(
            aging.join(
                scores,
                sa.and_(s.customer_id == aging.c.customer_id, s.currency == aging.c.currency),
            )
            .outerjoin(contacts, contacts.c.customer_id == aging.c.customer_id)
            .outerjoin(
                promises,
                sa.and_(promises.c.customer_id == aging.c.customer_id,
                        promises.c.currency == aging.c.currency),
            )
            .outerjoin(
                lateness,
                sa.and_(lateness.c.customer_id == aging.c.customer_id,
                        lateness.c.currency == aging.c.currency),
            )
        )
        .where(aging.c.dunnable_cents > 0, aging.c.as_of == as_of)
        .subquery("ranked")
    )  # fmt: skip
    rank = sa.func.rank().over(
        partition_by=ranked.c.currency,
        order_by=(ranked.c.expected_recovery_cents.desc(), ranked.c.dunnable_cents.desc(),
                  ranked.c.customer_id),
    )  # fmt: skip
    return sa.select(*ranked.c, rank.label("rank"))


def reason(row: sa.RowMapping, as_of: dt.date, timezone: ZoneInfo) -> str:
    """The rank in words: what is overdue where and how much of it the rule expects back, how
    this customer pays, and when it last had a letter."""
    currency = row["currency"]
    parts = [
        f"{format_amount(row[f'overdue_{name}'], currency)} at {BUCKET_WORDS[name]} "
        f"({_percent(row[f'rate_{name}'])} usually settled within {RECOVERY_DAYS} days)"
        for name in reversed(OVERDUE_BUCKETS)
        if row[f"overdue_{name}"]
    ]
    text = (
        f"expect {format_money(row['expected_recovery_cents'], currency)} of "
        f"{format_money(row['dunnable_cents'], currency)} dunnable; overdue: " + ", ".join(parts)
    )
    payer = row["payer_factor"]
    if abs(payer - 1.0) < 0.05:
        text += "; settles like the average customer"
    else:
        text += f"; settles {payer:.1f}x as well as the average customer"
    if row["average_days_late"] is not None:
        text += f" (pays {round(row['average_days_late'])} days after the due date on average)"
    judged = {
        "kept": row["promises_kept"], "partly kept": row["promises_partly_kept"],
        "broken": row["promises_broken"],
    }  # fmt: skip
    if any(judged.values()):
        text += "; promises: " + ", ".join(f"{n} {word}" for word, n in judged.items() if n)
        if row["promise_factor"] < 1:
            text += f" (expectation x {row['promise_factor']:.2f})"
    days = days_since(row["last_contact_at"], as_of, timezone)
    if days is None:
        text += "; no contact yet"
    else:
        kind = row["contact_kind"]
        what = {"letter": f"letter (tier {row['letter_tier']})", "promise": "promise recorded",
                "hold": "hold recorded"}[kind]  # fmt: skip
        text += f"; last contact: {what} {days} day(s) ago"
        if days < RECENT_CONTACT_DAYS:
            text += ", so the expectation is halved to give it time"
    return text


def _percent(share: float | None) -> str:
    return "no history" if share is None else f"{round(share * 100)} %"


def days_since(moment: dt.datetime | None, as_of: dt.date, timezone: ZoneInfo) -> int | None:
    if moment is None:
        return None
    return (as_of - moment.astimezone(timezone).date()).days


WORKLIST_COLUMNS = (
    "as_of", "currency", "rank", "customer_id", "customer_name", "expected_recovery_cents",
    "dunnable_cents", "overdue_cents", "payer_factor", "promise_factor", "last_contact_at",
    "reason",
)  # fmt: skip


def worklist_rows(
    connection: sa.Connection,
    as_of: dt.date,
    timezone: ZoneInfo,
    threshold_days: int = DEFAULT_THRESHOLD_DAYS,
    snapshot: SnapshotSource | None = None,
    chunk: int = 5_000,
) -> Iterator[list[tuple]]:
    """The ranked list as ``collection_worklist`` rows (tuples in :data:`WORKLIST_COLUMNS`
    order), streamed ``chunk`` at a time (the reason is written in Python, everything else in
    SQL)."""
    query = worklist_query(as_of, timezone, threshold_days, snapshot)
    # per statement: Connection.execution_options would make every later statement stream too
    result = connection.execute(query, execution_options={"yield_per": chunk})
    for part in result.mappings().partitions():
        yield [
            (
                as_of, row["currency"], int(row["rank"]), row["customer_id"],
                row["customer_name"], int(row["expected_recovery_cents"]),
                int(row["dunnable_cents"]), int(row["overdue_cents"]),
                round(float(row["payer_factor"]), 3), round(float(row["promise_factor"]), 3),
                row["last_contact_at"], reason(row, as_of, timezone),
            )
            for row in part
        ]  # fmt: skip


def write_worklist(connection: sa.Connection, as_of: dt.date, timezone: ZoneInfo) -> int:
    """Replace the ``collection_worklist`` rows of ``as_of`` inside the caller's transaction
    (bulk inserts: COPY on PostgreSQL); the dunnable amounts are those of ``ar_aging`` (its
    default threshold). Returns the number of rows written."""
    connection.execute(collection_worklist.delete().where(collection_worklist.c.as_of == as_of))
    source = source_for(connection, as_of)
    snapshot = source if isinstance(source, SnapshotSource) else None
    written = 0
    for chunk in worklist_rows(connection, as_of, timezone, snapshot=snapshot):
        bulk_insert(connection, collection_worklist, WORKLIST_COLUMNS, chunk)
        written += len(chunk)
    return written


def top_of_list(connection: sa.Connection, as_of: dt.date, limit: int) -> list[sa.Row]:
    """The first ``limit`` rows of each currency's list on ``as_of``, by currency and rank."""
    w = collection_worklist.c
    return list(
        connection.execute(
            sa.select(collection_worklist)
            .where(w.as_of == as_of, w.rank <= limit)
            .order_by(w.currency, w.rank, w.customer_id)
        )
    )


def latest_day(connection: sa.Connection) -> dt.date | None:
    """The latest day with a worklist."""
    return connection.execute(sa.select(sa.func.max(collection_worklist.c.as_of))).scalar()


WORKLIST_VIEW = "v_todays_calls"


def create_views_sql(dialect: Dialect) -> list[str]:
    """The analyst view: the latest day's worklist (``ORDER BY currency, rank`` to read it)."""
    w = collection_worklist.c
    latest = sa.select(sa.func.max(w.as_of)).scalar_subquery()
    compiled = sa.select(collection_worklist).where(w.as_of == latest).compile(dialect=dialect)
    return [f"CREATE VIEW {WORKLIST_VIEW} AS {compiled}"]


def drop_views_sql() -> list[str]:
    return [f"DROP VIEW IF EXISTS {WORKLIST_VIEW}"]


# --- the backtest ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BacktestResult:
    """One currency: over ``mornings`` past mornings, the overdue cents of the top ``top``
    customers each morning, by the rule and by overdue amount alone, and how much of it was
    settled within the following 30 days."""

    currency: str
    mornings: int
    top: int
    rule_overdue_cents: int
    rule_recovered_cents: int
    amount_overdue_cents: int
    amount_recovered_cents: int

    def summary(self) -> str:
        def share(part: int, whole: int) -> str:
            return f"{round(100 * part / whole)} %" if whole else "-"

        return (
            f"{self.currency}: over {self.mornings} mornings, the rule's top {self.top} recovered "
            f"{format_money(self.rule_recovered_cents, self.currency)} within {RECOVERY_DAYS} "
            f"days ({share(self.rule_recovered_cents, self.rule_overdue_cents)} of their "
            f"overdue), the top {self.top} by amount alone "
            f"{format_money(self.amount_recovered_cents, self.currency)} "
            f"({share(self.amount_recovered_cents, self.amount_overdue_cents)})"
        )


def backtest(
    connection: sa.Connection,
    as_of: dt.date,
    mornings: int = BACKTEST_MORNINGS,
    top: int = BACKTEST_TOP,
) -> list[BacktestResult]:
    """Evaluate the rule on the mornings D-30, D-60, ... (``mornings`` of them), each with what
    was known then, against ranking by overdue amount alone (module docstring)."""
    dates = [_day(as_of, RECOVERY_DAYS * j) for j in range(1, mornings + 1)]
    calibration = Calibration(as_of, references=REFERENCE_DATES + mornings)
    scores = calibration.scores(_mornings(dates)).subquery("scores")
    ob = calibration.observations
    outcome = (
        sa.select(
            ob.c.ref, ob.c.customer_id, ob.c.currency,
            sa.func.sum(ob.c.settled_cents).label("settled_cents"),
        )
        .group_by(ob.c.ref, ob.c.customer_id, ob.c.currency)
        .subquery("outcome")
    )  # fmt: skip
    # each morning's dunnable amount caps the rule's score, as on today's list: a customer
    # whose overdue debt is all offset by credit is not worth a call, however large the debt
    aging = aging_by_customer(
        as_of_dates(dates), DEFAULT_THRESHOLD_DAYS, source=calibration.source
    ).subquery("morning_aging")
    s = scores.c
    dunnable = sa.func.coalesce(aging.c.dunnable_cents, 0)
    score = sa.case((s.expected_raw > dunnable, dunnable), else_=s.expected_raw)
    by_rule = sa.func.row_number().over(
        partition_by=(s.morning, s.currency),
        order_by=(score.desc(), s.overdue_cents.desc(), s.customer_id),
    )
    by_amount = sa.func.row_number().over(
        partition_by=(s.morning, s.currency), order_by=(s.overdue_cents.desc(), s.customer_id)
    )
    ranked = (
        sa.select(
            s.morning, s.currency, s.overdue_cents, outcome.c.settled_cents,
            by_rule.label("rule_rank"), by_amount.label("amount_rank"),
        )
        .select_from(
            scores.join(
                outcome,
                sa.and_(outcome.c.ref == s.morning, outcome.c.customer_id == s.customer_id,
                        outcome.c.currency == s.currency),
            ).outerjoin(
                aging,
                sa.and_(aging.c.as_of == s.morning, aging.c.customer_id == s.customer_id,
                        aging.c.currency == s.currency),
            )
        )
        .subquery("ranked")
    )  # fmt: skip
    r = ranked.c

    def top_sum(rank: sa.ColumnElement, value: sa.ColumnElement) -> sa.ColumnElement:
        return sa.func.coalesce(sa.func.sum(sa.case((rank <= top, value), else_=0)), 0)

    query = (
        sa.select(
            r.currency,
            sa.func.count(sa.distinct(r.morning)).label("mornings"),
            top_sum(r.rule_rank, r.overdue_cents).label("rule_overdue"),
            top_sum(r.rule_rank, r.settled_cents).label("rule_recovered"),
            top_sum(r.amount_rank, r.overdue_cents).label("amount_overdue"),
            top_sum(r.amount_rank, r.settled_cents).label("amount_recovered"),
        )
        .group_by(r.currency)
        .order_by(r.currency)
    )
    return [
        BacktestResult(
            row.currency, int(row.mornings), top, int(row.rule_overdue),
            int(row.rule_recovered), int(row.amount_overdue), int(row.amount_recovered),
        )
        for row in connection.execute(query)
    ]  # fmt: skip
