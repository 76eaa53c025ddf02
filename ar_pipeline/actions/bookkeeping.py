"""Run bookkeeping of the daily job (docs/design.md, Statuses): ``workflow_run_log``,
``reflexion_log`` (a narrative written from the run's data) and ``workflow_events``.

``record_run`` is idempotent per run id: the run-status sensors call it, and so does
``ar-pipeline run`` right after its in-process run, whichever comes first writes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ar_pipeline.actions.approvals import stranded
from ar_pipeline.rules.proposals import WORKFLOW_TYPE
from ar_pipeline.store.schema import (
    customers,
    proposed_actions,
    reflexion_log,
    tier_assignments,
    workflow_events,
    workflow_run_log,
)


@dataclass(frozen=True)
class RunFacts:
    run_id: str
    succeeded: bool
    as_of: dt.date | None
    started_at: dt.datetime | None
    completed_at: dt.datetime | None
    error: str | None = None


def _counts(connection: sa.Connection, run_id: str, as_of: dt.date | None) -> dict[str, Any]:
    pa = proposed_actions.c
    staged: dict[str, dict[str, int]] = {}
    for r in connection.execute(
        sa.select(pa.action_type, pa.tier, sa.func.count().label("n"))
        .where(pa.run_id == run_id, pa.action_type != "workflow_envelope")
        .group_by(pa.action_type, pa.tier)
        .order_by(pa.action_type, pa.tier)
    ):
        staged.setdefault(r.action_type, {})["all" if r.tier is None else f"tier_{r.tier}"] = int(
            r.n
        )
    tiers: dict[str, int] = {}
    if as_of is not None:
        ta = tier_assignments.c
        outcome = sa.case(
            (
                ta.proposed_tier.is_not(None),
                sa.literal("tier_") + sa.cast(ta.proposed_tier, sa.Text),
            ),
            else_=ta.skip_reason,
        )
        for r in connection.execute(
            sa.select(outcome.label("k"), sa.func.count().label("n"))
            .where(ta.as_of == as_of)
            .group_by(outcome)
            .order_by(outcome)
        ):
            tiers[r.k] = int(r.n)
    return {"staged": staged, "tier_assignments": tiers}


def _names(connection: sa.Connection, ids: list[str], limit: int = 5) -> str:
    if not ids:
        return ""
    rows = connection.execute(
        sa.select(customers.c.customer_name)
        .where(customers.c.customer_id.in_(ids[:limit]))
        .order_by(customers.c.customer_name)
    ).scalars()
    shown = ", ".join(rows)
    return f"{shown} and {len(ids) - limit} more" if len(ids) > limit else shown


def narrative(connection: sa.Connection, facts: RunFacts, now: dt.datetime) -> str:
    """What changed, in sentences a collections lead can read."""
    if not facts.succeeded:
        return f"The daily run {facts.run_id} failed: {facts.error or 'see the run in Dagster'}."
    as_of = facts.as_of
    ta = tier_assignments.c
    lines = [f"Daily AR action plan as of {as_of} (run {facts.run_id})."]
    today = dict(
        connection.execute(sa.select(ta.customer_id, ta.target_tier).where(ta.as_of == as_of)).all()
    )
    previous_date = connection.execute(
        sa.select(sa.func.max(ta.as_of)).where(ta.as_of < as_of)
    ).scalar_one_or_none()
    if previous_date is not None:
        before = dict(
            connection.execute(
                sa.select(ta.customer_id, ta.target_tier).where(ta.as_of == previous_date)
            ).all()
        )
        entered = sorted(set(today) - set(before))
        left = sorted(set(before) - set(today))
        moved_up = sorted(c for c in set(today) & set(before) if (today[c] or 0) > (before[c] or 0))
        lines.append(
            f"Since {previous_date}: {len(entered)} customers entered dunning"
            + (f" ({_names(connection, entered)})" if entered else "")
            + f", {len(left)} left it (paid, credited or no longer overdue)"
            + (f" ({_names(connection, left)})" if left else "")
            + f", {len(moved_up)} moved to a higher tier"
            + (f" ({_names(connection, moved_up)})" if moved_up else "")
            + "."
        )
    else:
        lines.append(f"{len(today)} customers have a dunnable balance; no earlier run to compare.")
    escalations = sorted(
        connection.execute(
            sa.select(ta.customer_id).where(
                ta.as_of == as_of, ta.last_applied_tier.is_not(None), ta.proposed_tier.is_not(None)
            )
        ).scalars()
    )
    if escalations:
        lines.append(
            f"{len(escalations)} escalations beyond an applied step: "
            f"{_names(connection, escalations)}."
        )
    pa = proposed_actions.c
    holds = sorted(
        connection.execute(
            sa.select(pa.customer_id).where(
                pa.run_id == facts.run_id, pa.action_type == "customer_program"
            )
        ).scalars()
    )
    if holds:
        lines.append(f"Service holds proposed: {len(holds)} ({_names(connection, holds)}).")
    waiting = connection.execute(
        sa.select(sa.func.count(), sa.func.min(pa.proposed_at)).where(
            pa.status == "proposed", pa.action_type != "workflow_envelope"
        )
    ).one()
    if waiting[0]:
        age = now - waiting[1]
        lines.append(
            f"{waiting[0]} proposals wait for approval; the oldest for "
            f"{age.days} days {age.seconds // 3600} hours."
        )
    else:
        lines.append("Nothing waits for approval.")
    stuck = connection.execute(
        sa.select(sa.func.count()).where(stranded(now))
    ).scalar_one()
    unconfirmed = connection.execute(
        sa.select(sa.func.count()).where(pa.status == "unconfirmed")
    ).scalar_one()
    if unconfirmed:
        lines.append(
            f"ATTENTION: {unconfirmed} letters are unconfirmed (the mail server never answered "
            "the message data); find out whether they arrived and record it with `ar-pipeline "
            "approvals resolve` or on the page - they are never resent blindly."
        )
    if stuck:
        lines.append(
            f"ATTENTION: {stuck} actions are stuck in 'applying' (a crash mid-send?); check "
            "whether they went out and record it with `ar-pipeline approvals resolve` - they "
            "are never resent blindly."
        )
    return "\n".join(lines)


def record_run(engine: Engine, facts: RunFacts, now: dt.datetime) -> bool:
    """Write the run's log, narrative and event once; returns False when already recorded."""
    try:
        return _record_run(engine, facts, now)
    except sa.exc.IntegrityError:  # another process recorded the same run a moment earlier
        return False


def _record_run(engine: Engine, facts: RunFacts, now: dt.datetime) -> bool:
    with engine.begin() as connection:
        exists = connection.execute(
            sa.select(workflow_run_log.c.run_id).where(workflow_run_log.c.run_id == facts.run_id)
        ).first()
        if exists:
            return False
        summary = _counts(connection, facts.run_id, facts.as_of if facts.succeeded else None)
        if facts.error:
            summary["error"] = facts.error[:2000]
        connection.execute(
            workflow_run_log.insert().values(
                run_id=facts.run_id,
                workflow_type=WORKFLOW_TYPE,
                as_of=facts.as_of,
                status="succeeded" if facts.succeeded else "failed",
                started_at=facts.started_at,
                completed_at=facts.completed_at,
                summary_json=summary,
            )
        )
        connection.execute(
            reflexion_log.insert().values(
                run_id=facts.run_id,
                tags=WORKFLOW_TYPE,
                narrative=narrative(connection, facts, now),
                created_at=now,
            )
        )
        connection.execute(
            workflow_events.insert().values(
                event_type="workflow.completed" if facts.succeeded else "workflow.failed",
                run_id=facts.run_id,
                payload_json={
                    "as_of": facts.as_of.isoformat() if facts.as_of else None,
                    "workflow_type": WORKFLOW_TYPE,
                    **summary,
                },
                created_at=now,
            )
        )
    return True
