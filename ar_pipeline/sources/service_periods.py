"""Health of Alga PSA's recurring service periods: the rules and their bookkeeping.

A recurring service period that never reaches an invoice is receivable no aging report shows.
The rules, as of a run date D, over the tenant's *live* rows (not ``superseded``, not
``archived``: ``live_service_periods.sql``; periods are half-open ``[start, end)``), are the SQL
in ``sql/alga_psa/``:

* **coverage** (``service_period_coverage.sql``), per active schedule: the furthest end of its
  future rows (those ending after D) against a target horizon (D + ``horizon_days``, 180) and a
  replenishment threshold (D + ``replenish_days``, 45). ``meets_target_horizon`` when the
  furthest end reaches the horizon; ``needs_replenishment`` when it has no future row or its
  furthest end is no later than the threshold;
* **continuity** (``service_period_continuity.sql``): a *gap* where a schedule covers nothing
  between two periods, an *overlap* where a period starts before the earlier ones end;
* **unbilled due work** (``unbilled_service_periods.sql``): generated, edited or locked periods
  whose invoice window closed on or before D and that no invoice, charge or charge detail
  links; with the contract line's amount when it has one.

The service periods are read as Alga holds them at run time (it keeps no history of their
states) and judged against the run's date. Results are stored per run date in the pipeline's
database, never in Alga's. A schedule that needs replenishment or has a continuity issue gets a
**repair plan**: a ``service_period_repair`` proposal for a human, staged like a dunning
action and never applied by the pipeline (approving it records the decision; the repair is
done in Alga PSA).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ar_pipeline.settings import DEFAULT_HORIZON_DAYS, DEFAULT_REPLENISH_DAYS
from ar_pipeline.sources.alga_psa import load_sql, snapshot, stream
from ar_pipeline.store.database import bulk_insert
from ar_pipeline.store.schema import (
    proposed_actions,
    service_period_continuity,
    service_period_coverage,
    unbilled_service_periods,
)

REPAIR_ACTION = "service_period_repair"


@dataclass(frozen=True)
class CoveragePolicy:
    """How far ahead every schedule must be generated (days after the run date)."""

    horizon_days: int = DEFAULT_HORIZON_DAYS
    replenish_days: int = DEFAULT_REPLENISH_DAYS


@dataclass(frozen=True)
class HealthCounts:
    schedules: int
    continuity_issues: int
    unbilled_periods: int


LIVE = "live_service_periods"
_RESULTS = (  # (query, CTEs it reads, table it fills)
    ("service_period_coverage", (LIVE,), service_period_coverage),
    # active recurring obligations with no live period at all: coverage rows with nothing
    ("obligations_without_service_periods", (), service_period_coverage),
    ("service_period_continuity", (LIVE,), service_period_continuity),
    ("unbilled_service_periods", (), unbilled_service_periods),
)


def write_service_period_health(
    source: Engine, connection: Connection, tenant: str, as_of: dt.date, policy: CoveragePolicy
) -> HealthCounts:
    """Assess the tenant's service periods as of ``as_of`` on Alga (one read-only snapshot)
    and replace that date's rows of the three result tables, inside the caller's
    transaction."""
    params = {
        "tenant": tenant,
        "as_of": as_of,
        "horizon_days": policy.horizon_days,
        "replenish_days": policy.replenish_days,
    }
    counts: dict[str, int] = {}
    for table in {table.name: table for _, _, table in _RESULTS}.values():
        connection.execute(table.delete().where(table.c.as_of == as_of))
    with snapshot(source) as alga, alga.begin():
        for name, ctes, table in _RESULTS:
            query = load_sql(name, *ctes)
            wanted = {p: params[p] for p in query.compile().params}
            counts[name] = 0
            for columns, chunk in stream(alga, query, wanted):
                rows = [(as_of, *row) for row in chunk]
                bulk_insert(connection, table, ["as_of", *columns], rows)
                counts[name] += len(chunk)
    return HealthCounts(
        counts["service_period_coverage"] + counts["obligations_without_service_periods"],
        counts["service_period_continuity"],
        counts["unbilled_service_periods"],
    )


def schedules_needing_replenishment(connection: Connection, as_of: dt.date) -> list[sa.Row]:
    c = service_period_coverage.c
    return list(
        connection.execute(
            sa.select(
                c.schedule_key, c.live_periods, c.future_periods, c.furthest_end,
                c.replenish_before,
            )
            .where(c.as_of == as_of, c.needs_replenishment)
            .order_by(c.schedule_key)
        )
    )


def continuity_issues(connection: Connection, as_of: dt.date) -> list[sa.Row]:
    c = service_period_continuity.c
    return list(
        connection.execute(
            sa.select(
                c.schedule_key, c.issue, c.previous_period_key, c.covered_until,
                c.period_key, c.service_period_start, c.days,
            )
            .where(c.as_of == as_of)
            .order_by(c.schedule_key, c.service_period_start, c.record_id)
        )
    )  # fmt: skip


@dataclass(frozen=True)
class UnbilledTotal:
    currency: str | None  # None: periods whose amount is unknown
    periods: int
    cents: int | None


VOIDED_STATE = "billed"  # an unbilled_service_periods row billed on a voided invoice


def unbilled_totals(
    connection: Connection, as_of: dt.date, voided: bool = False
) -> list[UnbilledTotal]:
    """Unbilled due work of ``as_of`` per currency (``voided``: the periods billed on a
    voided invoice instead), the periods without an amount last. Amounts are base fees."""
    u = unbilled_service_periods.c
    kind = u.lifecycle_state == VOIDED_STATE if voided else u.lifecycle_state != VOIDED_STATE
    rows = connection.execute(
        sa.select(u.currency, sa.func.count(), sa.func.sum(u.amount_cents))
        .where(u.as_of == as_of, kind)
        .group_by(u.currency)
    )
    totals = [UnbilledTotal(r[0], int(r[1]), None if r[2] is None else int(r[2])) for r in rows]
    return sorted(totals, key=lambda t: (t.currency is None, t.currency or ""))


def describe_issue(issue: Any) -> str:
    """One line a billing operator can act on."""
    if issue.issue == "gap":
        return (
            f"gap of {issue.days} days: nothing covers {issue.covered_until} to "
            f"{issue.service_period_start} (before period {issue.period_key})"
        )
    return (
        f"overlap of {issue.days} days: period {issue.period_key} starts "
        f"{issue.service_period_start}, before the earlier periods end on {issue.covered_until}"
    )


def describe_replenishment(row: Any) -> str:
    if row.live_periods == 0:
        return (
            "an active recurring obligation with no service periods at all: backfill it "
            "(the cutover runbook's backfill case)"
        )
    if row.furthest_end is None:
        return "no service periods after the run date: generate the next periods"
    return (
        f"generated only until {row.furthest_end} (needed beyond {row.replenish_before}): "
        "generate further periods"
    )


def periods_on_voided_invoices(connection: Connection, as_of: dt.date) -> list[sa.Row]:
    """Periods still billed and linked to an invoice that was voided (as of ``as_of``)."""
    u = unbilled_service_periods.c
    return list(
        connection.execute(
            sa.select(
                u.schedule_key, u.record_id, u.period_key, u.service_period_start,
                u.service_period_end, u.currency, u.amount_cents,
            )
            .where(u.as_of == as_of, u.lifecycle_state == VOIDED_STATE)
            .order_by(u.schedule_key, u.service_period_start, u.record_id)
        )
    )  # fmt: skip


def describe_voided(row: Any) -> str:
    return (
        f"period {row.period_key} ({row.service_period_start} to {row.service_period_end}) is "
        "billed and linked to an invoice that was voided: its service is invoiced nowhere. "
        "Release the linkage as deleting the invoice does (the period goes back to locked), "
        "then invoice it again"
    )


# --- the repair plan's JSON, in the shape of Alga's IRecurringServicePeriodRecord ------------
# (packages/types/src/interfaces/recurringTiming.interfaces.ts; Alga maps its rows the same
# way in recurringServicePeriodActions.ts: dates as YYYY-MM-DD, timestamps as ISO 8601 in UTC
# with milliseconds, half-open ranges, timingMetadata left out when the row has none)
RANGE_SEMANTICS = "half_open"


def _timestamp(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _range(start: dt.date, end: dt.date) -> dict[str, str]:
    return {"start": start.isoformat(), "end": end.isoformat(), "semantics": RANGE_SEMANTICS}


def service_period_record(row: Any) -> dict[str, Any]:
    """One ``recurring_service_periods`` row (``service_period_records.sql``) as Alga's
    ``IRecurringServicePeriodRecord``."""
    record: dict[str, Any] = {
        "kind": "persisted_service_period_record",
        "recordId": row.record_id,
        "scheduleKey": row.schedule_key,
        "periodKey": row.period_key,
        "revision": int(row.revision),
        "sourceObligation": {
            "tenant": row.tenant,
            "obligationId": row.obligation_id,
            "obligationType": row.obligation_type,
            "chargeFamily": row.charge_family,
        },
        "cadenceOwner": row.cadence_owner,
        "duePosition": row.due_position,
        "lifecycleState": row.lifecycle_state,
        "servicePeriod": _range(row.service_period_start, row.service_period_end),
        "invoiceWindow": _range(row.invoice_window_start, row.invoice_window_end),
        "activityWindow": (
            _range(row.activity_window_start, row.activity_window_end)
            if row.activity_window_start and row.activity_window_end
            else None
        ),
        "provenance": {
            "kind": row.provenance_kind,
            "sourceRuleVersion": row.source_rule_version,
            "reasonCode": row.reason_code,
            "sourceRunKey": row.source_run_key,
            "supersedesRecordId": row.supersedes_record_id,
        },
        "invoiceLinkage": (
            {
                "invoiceId": row.invoice_id,
                "invoiceChargeId": row.invoice_charge_id,
                "invoiceChargeDetailId": row.invoice_charge_detail_id,
                "linkedAt": _timestamp(row.invoice_linked_at),
            }
            if row.invoice_id and row.invoice_charge_id and row.invoice_charge_detail_id
            and row.invoice_linked_at
            else None
        ),
        "createdAt": _timestamp(row.created_at),
        "updatedAt": _timestamp(row.updated_at),
    }
    if row.timing_metadata is not None:
        record["timingMetadata"] = row.timing_metadata
    return record


def _from_alga(source: Engine, tenant: str, keys: list[str]) -> tuple[dict, dict, dict]:
    """The live records, the voided invoices' numbers and the obligations behind ``keys``."""
    records: dict[str, list[dict]] = {key: [] for key in keys}
    invoices: dict[str, str] = {}
    obligations: dict[str, dict] = {}
    params = {"tenant": tenant, "schedule_keys": keys}
    with snapshot(source) as alga, alga.begin():
        result = alga.execute(load_sql("service_period_records"), params)
        for row in result:
            records[row.schedule_key].append(service_period_record(row))
            if row.invoice_status == "cancelled":
                invoices[row.record_id] = row.invoice_number
        for row in alga.execute(load_sql("obligation_details"), params).mappings():
            obligations[row["schedule_key"]] = {
                k: (v.isoformat() if isinstance(v, dt.date) else v)
                for k, v in row.items()
                if k != "schedule_key"
            }
    return records, invoices, obligations


def repair_plans(
    connection: Connection,
    as_of: dt.date,
    horizon_end: dt.date,
    source: Engine | None = None,
    tenant: str | None = None,
) -> list[dict]:
    """One plan per schedule with a problem: what is wrong and what to do in Alga PSA. With
    ``source`` (Alga, read-only) each plan carries the schedule's live rows as Alga's
    ``IRecurringServicePeriodRecord`` (``existing_records``), the file the cutover runbook's
    helpers read, and a backfill plan the obligation to generate periods for."""
    problems: dict[str, list[str]] = {}
    kinds: dict[str, set[str]] = {}
    for row in schedules_needing_replenishment(connection, as_of):
        problems.setdefault(row.schedule_key, []).append(describe_replenishment(row))
        kinds.setdefault(row.schedule_key, set()).add(
            "backfill" if row.live_periods == 0 else "replenish"
        )
    for issue in continuity_issues(connection, as_of):
        problems.setdefault(issue.schedule_key, []).append(describe_issue(issue))
        kinds.setdefault(issue.schedule_key, set()).add("continuity")
    voided = periods_on_voided_invoices(connection, as_of)
    for period in voided:
        problems.setdefault(period.schedule_key, []).append(describe_voided(period))
        kinds.setdefault(period.schedule_key, set()).add("voided_invoice")
    keys = sorted(problems)
    records, voided_numbers, obligations = (
        _from_alga(source, tenant, keys) if source is not None and keys else ({}, {}, {})
    )
    plans = []
    for schedule_key in keys:
        found = problems[schedule_key]
        helper = _runbook_helper(kinds[schedule_key])
        steps = [
            f"Review the schedule {schedule_key} in Alga PSA.",
            *[f"Fix: {p}" for p in found],
            f"Make sure periods are generated through at least {horizon_end}.",
            "Do not edit billed, edited or locked periods in place: regenerate or repair them.",
            f"Runbook helper: {helper} (the plan's existing_records are its existing rows; "
            "`ar-pipeline alga repair-plans` writes them to a file).",
        ]
        plan: dict[str, Any] = {
            "schedule_key": schedule_key,
            "subject": f"Repair recurring service periods of {schedule_key}",
            "problems": found,
            "kinds": sorted(kinds[schedule_key]),
            "runbook_helper": helper,
            "body": "\n".join(f"- {s}" for s in steps),
        }
        voided_here = [v for v in voided if v.schedule_key == schedule_key]
        if voided_here:
            plan["voided_invoice_periods"] = [
                {"record_id": v.record_id, "period_key": v.period_key,
                 "invoice_number": voided_numbers.get(v.record_id)}
                for v in voided_here
            ]  # fmt: skip
        if source is not None:
            plan["existing_records"] = records.get(schedule_key, [])
            if schedule_key in obligations:
                plan["obligation"] = obligations[schedule_key]
        plans.append(plan)
    return plans


# A repair plan's files for Alga's cutover runbook: part of the file name -> payload key.
RUNBOOK_FILES = {"existing": "existing_records", "obligation": "obligation"}


def runbook_file(action_id: int, plan: Mapping[str, Any], part: str) -> tuple[str, str] | None:
    """The name and JSON text of one of a repair plan's runbook files
    (``<id>-<schedule>.existing.json``: the schedule's rows; ``.obligation.json``: what a
    backfill generates for), or None when the plan has no such part. The CLI writes them and
    the page offers them for download."""
    key = RUNBOOK_FILES.get(part)
    if key is None or key not in plan:
        return None
    schedule = re.sub(r"[^A-Za-z0-9._-]+", "_", str(plan.get("schedule_key", "plan")))[:120]
    return f"{action_id}-{schedule}.{part}.json", json.dumps(plan[key], indent=2) + "\n"


def _runbook_helper(kinds: set[str]) -> str:
    """Which of the cutover runbook's helpers fits the problems found."""
    if "backfill" in kinds:
        return "backfillRecurringServicePeriods"
    if "continuity" in kinds or "voided_invoice" in kinds:
        return "regenerateRecurringServicePeriods"
    return "assessRecurringServicePeriodGenerationCoverage"


def stage_repair_plans(
    connection: Connection,
    as_of: dt.date,
    run_id: str,
    horizon_end: dt.date,
    now: dt.datetime,
    source: Engine | None = None,
    tenant: str | None = None,
) -> int:
    """Stage the repair plans of ``as_of`` as ``proposed`` actions (a rerun of the day stages
    nothing twice) and supersede the still pending plans of earlier days: each day's
    assessment replaces them. Returns the number of plans of the day. With ``source`` and
    ``tenant`` the plans carry the schedules' rows (see :func:`repair_plans`)."""
    plans = repair_plans(connection, as_of, horizon_end, source, tenant)
    pa = proposed_actions.c
    connection.execute(
        proposed_actions.update()
        .where(pa.action_type == REPAIR_ACTION, pa.status == "proposed", pa.as_of < as_of)
        .values(status="superseded", superseded_reason=f"replaced by the assessment of {as_of}")
    )
    keys = [f"{REPAIR_ACTION}:{as_of.isoformat()}:{p['schedule_key']}" for p in plans]
    known = set(
        connection.execute(sa.select(pa.idempotency_key).where(pa.idempotency_key.in_(keys)))
        .scalars()
        .all()
    )
    rows = [
        (key, run_id, as_of, REPAIR_ACTION, "proposed", now, plan)
        for key, plan in zip(keys, plans, strict=True)
        if key not in known
    ]
    columns = ("idempotency_key", "run_id", "as_of", "action_type", "status", "proposed_at",
               "payload_json")  # fmt: skip
    bulk_insert(connection, proposed_actions, columns, rows)
    return len(plans)
