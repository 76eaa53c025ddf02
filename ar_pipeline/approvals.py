"""Deciding proposals (DESIGN.md section 5): only names in ``AR_APPROVERS`` decide.

Every change of status is one conditional UPDATE (``WHERE status = <expected>``), so when two
people decide the same row at once exactly one of them wins. A refused decider changes nothing.
Approving or rejecting an envelope does the same to its children that are still ``proposed``.
A ``failed`` action can be approved again, which retries it. A decision naming an ID that does
not exist changes nothing at all, not even the IDs that do exist.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from ar_pipeline.schema import ACTION_STATUSES, proposed_actions

PENDING_STATUSES = ("proposed", "approved", "applying", "failed")


class DecisionRefused(PermissionError):
    """The decider may not decide, or the decision is malformed; nothing was changed."""


@dataclass(frozen=True)
class Decision:
    action_id: int
    outcome: str  # approved, rejected, or why not
    children: int = 0


def _check_decider(decided_by: str, approvers: Collection[str]) -> str:
    name = (decided_by or "").strip()
    if not name or name not in approvers:
        raise DecisionRefused(
            f"{decided_by!r} is not in AR_APPROVERS and may not decide; nothing was changed"
        )
    return name


def require_known(connection: sa.Connection, action_ids: Iterable[int]) -> None:
    """Refuse, naming them, IDs that are no proposal; call it before changing anything."""
    wanted = sorted(set(action_ids))
    found = set(
        connection.execute(
            sa.select(proposed_actions.c.action_id).where(proposed_actions.c.action_id.in_(wanted))
        ).scalars()
    )
    unknown = [str(i) for i in wanted if i not in found]
    if unknown:
        noun = "proposal" if len(unknown) == 1 else "proposals"
        raise DecisionRefused(f"ID: no {noun} {', '.join(unknown)}; nothing was changed")


def _transition(
    connection: sa.Connection, where: sa.ColumnElement[bool], expected: str, values: dict
) -> int:
    return connection.execute(
        proposed_actions.update()
        .where(where, proposed_actions.c.status == expected)
        .values(**values)
    ).rowcount


def _current_status(connection: sa.Connection, action_id: int) -> tuple[str, str] | None:
    row = connection.execute(
        sa.select(proposed_actions.c.status, proposed_actions.c.action_type).where(
            proposed_actions.c.action_id == action_id
        )
    ).first()
    return (row.status, row.action_type) if row else None


def approve(
    connection: sa.Connection,
    action_ids: Iterable[int],
    decided_by: str,
    approvers: Collection[str],
    now: dt.datetime,
    reason: str | None = None,
) -> list[Decision]:
    """Approve ``proposed`` (or, to retry, ``failed``) actions, inside the caller's
    transaction. An unknown ID refuses them all (:class:`DecisionRefused`)."""
    name = _check_decider(decided_by, approvers)
    action_ids = list(action_ids)
    require_known(connection, action_ids)
    values = {"status": "approved", "decided_by": name, "decided_at": now,
              "decision_reason": reason}  # fmt: skip
    decisions = []
    for action_id in action_ids:
        this = proposed_actions.c.action_id == action_id
        changed = _transition(connection, this, "proposed", values) or _transition(
            connection, this, "failed", values
        )
        decisions.append(_decided(connection, action_id, changed, "approved", values))
    return decisions


def reject(
    connection: sa.Connection,
    action_ids: Iterable[int],
    decided_by: str,
    reason: str,
    approvers: Collection[str],
    now: dt.datetime,
) -> list[Decision]:
    """Reject ``proposed`` actions; a reason is required. An unknown ID refuses them all."""
    name = _check_decider(decided_by, approvers)
    if not (reason or "").strip():
        raise DecisionRefused("reason: a reason is required to reject; nothing was changed")
    action_ids = list(action_ids)
    require_known(connection, action_ids)
    values = {"status": "rejected", "decided_by": name, "decided_at": now,
              "decision_reason": reason.strip()}  # fmt: skip
    decisions = []
    for action_id in action_ids:
        changed = _transition(
            connection, proposed_actions.c.action_id == action_id, "proposed", values
        )
        decisions.append(_decided(connection, action_id, changed, "rejected", values))
    return decisions


def _decided(
    connection: sa.Connection, action_id: int, changed: int, outcome: str, values: dict
) -> Decision:
    current = _current_status(connection, action_id)
    if current is None:
        return Decision(action_id, "not found")
    if not changed:
        return Decision(action_id, f"not changed: it is {current[0]}")
    children = 0
    if current[1] == "workflow_envelope":
        children = _transition(
            connection, proposed_actions.c.envelope_id == action_id, "proposed", values
        )
    return Decision(action_id, outcome, children)


def list_actions(
    connection: sa.Connection, status: str | None = None, limit: int = 200, offset: int = 0
) -> list[sa.Row]:
    """Actions with the given status (default: everything still pending), newest first."""
    if status is not None and status not in ACTION_STATUSES:
        raise DecisionRefused(
            f"--status: unknown status {status!r}; one of {', '.join(ACTION_STATUSES)}"
        )
    statuses = (status,) if status else PENDING_STATUSES
    pa = proposed_actions.c
    return list(
        connection.execute(
            sa.select(
                pa.action_id,
                pa.status,
                pa.action_type,
                pa.as_of,
                pa.customer_id,
                pa.tier,
                pa.program_type,
                pa.payload_json,
                pa.edited_payload_json,
                pa.decided_by,
                pa.decided_at,
                pa.decision_reason,
                pa.applied_at,
                pa.attempts,
                pa.last_error,
                pa.superseded_reason,
                pa.envelope_id,
            )  # fmt: skip
            .where(pa.status.in_(statuses))
            .order_by(pa.as_of.desc(), pa.action_id.desc())
            .limit(limit)
            .offset(offset)
        )
    )
