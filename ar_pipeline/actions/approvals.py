"""Deciding proposals (docs/design.md): only names in ``AR_APPROVERS`` decide.

Every change of status is one conditional UPDATE (``WHERE status = <expected>``), so when two
people decide the same row at once exactly one of them wins. A refused decider changes nothing.
Approving or rejecting an envelope does the same to its children that are still ``proposed``.
A ``failed`` action can be approved again, which retries it. A decision naming an ID that does
not exist changes nothing at all, not even the IDs that do exist.

**An approval binds to what the approver saw.** The page sends, with each ID it decides, the
:func:`proposal_version` it showed: the status and the exact text that would be sent (an edit
by another approver, or a send that failed meanwhile, changes it). :func:`approve` given those
versions approves only rows still at them, under a row lock, and answers "not changed" for the
others, so a click on a stale page never approves a text nobody saw, nor retries a failed send
that the page showed as a fresh proposal.

**Resolving** is the human answer to a send whose outcome is unknown: an ``unconfirmed`` action
(the mail server never answered the message data), or one left ``applying`` by a crash for more
than :data:`STRANDED_AFTER` (the apply job takes at most a few minutes). "It was delivered"
makes it ``applied`` (as of the attempt); "send it again" makes it ``approved`` again, so the
apply job sends it once more with the same Message-ID. Who and when are recorded.

**One list of approvers.** The page, the CLI and the apply job may run in processes with
different environments. The apply side (``approved_actions_sensor``, in the Dagster code
location) publishes its ``AR_APPROVERS`` to ``published_settings``; a decision by a name that
list lacks is refused when it is made, instead of failing later in the apply job.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

import sqlalchemy as sa

from ar_pipeline.store.schema import ACTION_STATUSES, proposed_actions, published_settings

PENDING_STATUSES = ("proposed", "approved", "applying", "failed", "unconfirmed")
RESOLUTIONS = ("delivered", "send_again")
STRANDED_AFTER = dt.timedelta(minutes=15)
APPROVERS_SETTING = "AR_APPROVERS"


class DecisionRefused(PermissionError):
    """The decider may not decide, or the decision is malformed; nothing was changed."""


@dataclass(frozen=True)
class Decision:
    action_id: int
    outcome: str  # approved, rejected, or why not
    children: int = 0


def check_decider(
    connection: sa.Connection, decided_by: str, approvers: Collection[str]
) -> str:
    name = (decided_by or "").strip()
    if not name or name not in approvers:
        raise DecisionRefused(
            f"{decided_by!r} is not in AR_APPROVERS and may not decide; nothing was changed"
        )
    published = connection.execute(
        sa.select(published_settings.c.value_json, published_settings.c.published_at).where(
            published_settings.c.name == APPROVERS_SETTING
        )
    ).first()
    if published is not None and name not in published.value_json:
        raise DecisionRefused(
            f"{name!r} is not in the apply job's AR_APPROVERS (published by the Dagster code "
            f"location at {published.published_at:%Y-%m-%d %H:%M} UTC), so it would refuse "
            "this decision; set the same AR_APPROVERS for every process. Nothing was changed"
        )
    return name


def proposal_version(status: str, payload: dict | None, edited_payload: dict | None) -> str:
    """A short digest of what an approver sees of a proposal and would approve: its status and
    the payload the apply job would act on (the edited one when there is one). Any edit, or any
    change of status, gives another version."""
    effective = edited_payload if edited_payload is not None else payload
    canonical = json.dumps([status, effective], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:20]


def current_versions(connection: sa.Connection, action_ids: Iterable[int]) -> dict[int, str]:
    """:func:`proposal_version` of these actions as stored now, their rows locked until the end
    of the caller's transaction (PostgreSQL; SQLite has one writer at a time anyway)."""
    pa = proposed_actions.c
    rows = connection.execute(
        sa.select(pa.action_id, pa.status, pa.payload_json, pa.edited_payload_json)
        .where(pa.action_id.in_(sorted(set(action_ids))))
        .with_for_update()
    )
    return {
        r.action_id: proposal_version(r.status, r.payload_json, r.edited_payload_json)
        for r in rows
    }


CHANGED_SINCE_SEEN = (
    "not changed: it changed since you looked (edited, or decided or sent meanwhile); "
    "read it again before deciding"
)


def stranded(now: dt.datetime) -> sa.ColumnElement[bool]:
    """An ``applying`` row whose claim is more than :data:`STRANDED_AFTER` old, or was never
    stamped (claimed before ``claimed_at`` existed): the apply job crashed while sending it.
    The one definition the page, the CLI, the run narrative and :func:`resolve` share."""
    pa = proposed_actions.c
    return sa.and_(
        pa.status == "applying",
        sa.or_(pa.claimed_at.is_(None), pa.claimed_at < now - STRANDED_AFTER),
    )


def is_stranded(status: str, claimed_at: dt.datetime | None, now: dt.datetime) -> bool:
    """:func:`stranded` for a row already read."""
    return status == "applying" and (claimed_at is None or claimed_at < now - STRANDED_AFTER)


def publish_approvers(
    connection: sa.Connection, approvers: Collection[str], published_by: str, now: dt.datetime
) -> bool:
    """Record the apply side's ``AR_APPROVERS`` (sorted names); True when it changed."""
    names = sorted(approvers)
    current = connection.execute(
        sa.select(published_settings.c.value_json).where(
            published_settings.c.name == APPROVERS_SETTING
        )
    ).scalar_one_or_none()
    if current == names:
        return False
    values = {"value_json": names, "published_by": published_by, "published_at": now}
    if current is None:
        connection.execute(published_settings.insert().values(name=APPROVERS_SETTING, **values))
    else:
        connection.execute(
            published_settings.update()
            .where(published_settings.c.name == APPROVERS_SETTING)
            .values(**values)
        )
    return True


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
    seen: Mapping[int, str] | None = None,
) -> list[Decision]:
    """Approve ``proposed`` (or, to retry, ``failed``) actions, inside the caller's
    transaction. An unknown ID refuses them all (:class:`DecisionRefused`).

    ``seen``: the :func:`proposal_version` the approver was shown for each ID (the page always
    gives it; an ID without one is refused). A row whose version moved on is not approved."""
    name = check_decider(connection, decided_by, approvers)
    action_ids = list(action_ids)
    require_known(connection, action_ids)
    if seen is not None and (unseen := [str(i) for i in action_ids if i not in seen]):
        raise DecisionRefused(
            f"seen: no version shown for {', '.join(unseen)}; reload the page. "
            "Nothing was changed"
        )
    versions = current_versions(connection, action_ids) if seen is not None else {}
    values = {"status": "approved", "decided_by": name, "decided_at": now,
              "decision_reason": reason}  # fmt: skip
    decisions = []
    for action_id in action_ids:
        if seen is not None and versions.get(action_id) != seen[action_id]:
            decisions.append(Decision(action_id, CHANGED_SINCE_SEEN))
            continue
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
    name = check_decider(connection, decided_by, approvers)
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


def resolve(
    connection: sa.Connection,
    action_ids: Iterable[int],
    resolution: str,
    decided_by: str,
    approvers: Collection[str],
    now: dt.datetime,
    note: str | None = None,
) -> list[Decision]:
    """Settle ``unconfirmed`` actions, or ``applying`` ones claimed more than
    :data:`STRANDED_AFTER` ago: ``delivered`` -> ``applied``; ``send_again`` -> ``approved``
    (the apply job sends it again). Inside the caller's transaction; an unknown ID refuses
    them all."""
    name = check_decider(connection, decided_by, approvers)
    if resolution not in RESOLUTIONS:
        raise DecisionRefused(
            f"resolution: must be one of {', '.join(RESOLUTIONS)}, got {resolution!r}; "
            "nothing was changed"
        )
    action_ids = list(action_ids)
    require_known(connection, action_ids)
    pa = proposed_actions.c
    recorded = {"resolution": resolution, "resolved_by": name, "resolved_at": now}
    if note and note.strip():
        recorded["decision_reason"] = note.strip()
    if resolution == "delivered":
        values = {**recorded, "status": "applied",
                  "applied_at": sa.func.coalesce(pa.claimed_at, now)}  # fmt: skip
    else:
        values = {**recorded, "status": "approved", "decided_by": name, "decided_at": now}
    decisions = []
    for action_id in action_ids:
        this = pa.action_id == action_id
        changed = _transition(connection, this, "unconfirmed", values) or _transition(
            connection, sa.and_(this, stranded(now)), "applying", values
        )
        current = _current_status(connection, action_id)
        if current is None:
            decisions.append(Decision(action_id, "not found"))
        elif not changed:
            why = (
                f"it was claimed less than {STRANDED_AFTER.seconds // 60} minutes ago and may "
                "still be sending"
                if current[0] == "applying"
                else f"it is {current[0]}; only unconfirmed or stranded applying actions are "
                "resolved"
            )
            decisions.append(Decision(action_id, f"not changed: {why}"))
        else:
            decisions.append(Decision(action_id, "applied" if resolution == "delivered"
                                      else "approved"))  # fmt: skip
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
                pa.claimed_at,
                pa.delivery_detail,
                pa.resolution,
                pa.resolved_by,
                pa.resolved_at,
            )  # fmt: skip
            .where(pa.status.in_(statuses))
            .order_by(pa.as_of.desc(), pa.action_id.desc())
            .limit(limit)
            .offset(offset)
        )
    )
