"""The approver's page (``ar-pipeline web``): review, edit, approve and reject proposals.

A small Starlette app on the business database. Rules, the same as the CLI's: only a signed-in
account decides, the decision is stamped with the signed-in name (never one sent by the
browser), and only names in ``AR_APPROVERS`` may decide at all. Sessions are signed cookies
(``AR_WEB_SECRET``) that expire after ``SESSION_HOURS``; every change is a POST carrying the
session's CSRF token; nothing changes on GET. Lists are paged in SQL, so a few thousand pending
rows cost one page at a time.
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from ar_pipeline import approvals
from ar_pipeline.schema import ACTION_TYPES, customers, proposed_actions
from ar_pipeline.tiering import format_money

PAGE_SIZE = 50
SESSION_HOURS = 8
HISTORY_STATUSES = ("applied", "failed", "superseded", "rejected")
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parent / "web_templates"))
TEMPLATES.env.filters["money"] = lambda cents, currency: format_money(int(cents), currency)

Clock = Callable[[], dt.datetime]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def dunnable_by_currency(payload: dict[str, Any]) -> dict[str, int]:
    """Listed overdue amount net of unapplied credit, per currency (as the letter shows it)."""
    credit = payload.get("unapplied_credit_cents") or {}
    return {
        currency: max(0, cents - int(credit.get(currency, 0)))
        for currency, cents in (payload.get("totals_cents") or {}).items()
    }


def _page_number(request: Request) -> int:
    raw = request.query_params.get("page") or "1"
    return max(1, int(raw)) if raw.isdigit() else 1


def _page_of_actions(
    connection: sa.Connection, where: list[Any], order_by: tuple[Any, ...], page: int
) -> tuple[int, list[Any]]:
    """How many actions match, and one page of them with the customer's name (paged in SQL)."""
    pa = proposed_actions.c
    total = connection.execute(
        sa.select(sa.func.count()).select_from(proposed_actions).where(*where)
    ).scalar_one()
    rows = (
        connection.execute(
            sa.select(proposed_actions, customers.c.customer_name)
            .outerjoin(customers, customers.c.customer_id == pa.customer_id)
            .where(*where)
            .order_by(*order_by)
            .limit(PAGE_SIZE)
            .offset((page - 1) * PAGE_SIZE)
        )
        .mappings()
        .all()
    )
    return total, list(rows)


def create_app(
    engine: Engine,
    accounts: dict[str, str],
    approvers: frozenset[str] | set[str],
    secret: str,
    clock: Clock = _utcnow,
    chart_rows: Callable[[], list[dict[str, Any]]] | None = None,
) -> Starlette:
    """The app; ``clock`` is injectable so that session expiry can be tested."""
    from ar_pipeline.accounts import verify_password

    def render(request: Request, name: str, http_status: int = 200, **context: Any) -> Response:
        context.update(user=request.session.get("user"), csrf=_csrf(request))
        return TEMPLATES.TemplateResponse(request, name, context, status_code=http_status)

    def _csrf(request: Request) -> str:
        token = request.session.get("csrf")
        if not token:
            token = secrets.token_urlsafe(32)
            request.session["csrf"] = token
        return token

    def signed_in(request: Request) -> str | None:
        user = request.session.get("user")
        issued = request.session.get("issued_at")
        if not user or issued is None:
            return None
        if clock().timestamp() - float(issued) > SESSION_HOURS * 3600:
            request.session.clear()
            return None
        return user if user in accounts else None

    async def checked_form(request: Request) -> Any:
        """The POSTed form, after the session's CSRF token matched."""
        form = await request.form()
        expected = request.session.get("csrf") or ""
        sent = str(form.get("csrf") or "")
        if not expected or not hmac.compare_digest(expected, sent):
            raise Refused(403, "The form has expired or did not come from this page; reload it.")
        return form

    async def login_page(request: Request) -> Response:
        return render(request, "login.html", next=request.query_params.get("next", "/proposals"))

    async def login(request: Request) -> Response:
        try:
            form = await checked_form(request)
        except Refused as refusal:
            return render(request, "login.html", http_status=refusal.status, error=str(refusal))
        name = str(form.get("username") or "").strip()
        password = str(form.get("password") or "")
        encoded = accounts.get(name)
        if encoded is None or not verify_password(password, encoded):
            return render(
                request, "login.html", http_status=401, error="Wrong user name or password."
            )
        request.session.clear()
        request.session.update(
            user=name, issued_at=clock().timestamp(), csrf=secrets.token_urlsafe(32)
        )
        target = str(form.get("next") or "/proposals")
        return RedirectResponse(target if target.startswith("/") else "/proposals", 303)

    async def logout(request: Request) -> Response:
        try:
            await checked_form(request)
        except Refused as refusal:
            return HTMLResponse(str(refusal), refusal.status)
        request.session.clear()
        return RedirectResponse("/login", 303)

    def require_user(request: Request) -> str | Response:
        user = signed_in(request)
        if user is None:
            query = urlencode({"next": request.url.path})
            return RedirectResponse(f"/login?{query}", 303)
        return user

    async def proposals_page(request: Request) -> Response:
        user = require_user(request)
        if isinstance(user, Response):
            return user
        q = request.query_params
        status = q.get("status") or "proposed"
        tier = q.get("tier") or ""
        action_type = q.get("type") or ""
        page = _page_number(request)
        pa = proposed_actions.c
        where = [pa.action_type != "workflow_envelope"]
        if status != "all":
            where.append(pa.status == status)
        if tier.isdigit():
            where.append(pa.tier == int(tier))
        if action_type in ACTION_TYPES:
            where.append(pa.action_type == action_type)
        with engine.connect() as connection:
            counts = dict(
                connection.execute(
                    sa.select(pa.status, sa.func.count())
                    .where(pa.action_type != "workflow_envelope")
                    .group_by(pa.status)
                ).all()
            )
            total, rows = _page_of_actions(
                connection,
                where,
                (pa.as_of.desc(), pa.envelope_id.desc(), pa.customer_id, pa.action_id),
                page,
            )
            envelope_ids = sorted(
                {r["envelope_id"] for r in rows if r["envelope_id"]}, reverse=True
            )
            envelopes = {
                r["action_id"]: r
                for r in connection.execute(
                    sa.select(proposed_actions).where(pa.action_id.in_(envelope_ids))
                ).mappings()
            }
            holds = set(
                connection.execute(
                    sa.select(pa.customer_id).where(
                        pa.action_type == "customer_program",
                        pa.status == "proposed",
                        pa.customer_id.in_({r["customer_id"] for r in rows}),
                    )
                ).scalars()
            )
        grouped: dict[int | None, list[Any]] = {}
        for r in rows:  # rows come newest run first
            grouped.setdefault(r["envelope_id"], []).append(r)
        groups = [(envelopes.get(key), group) for key, group in grouped.items()]
        return render(
            request, "proposals.html", groups=groups, counts=counts, total=total, page=page,
            pages=max(1, -(-total // PAGE_SIZE)), status=status, tier=tier,
            action_type=action_type, holds=holds, action_types=ACTION_TYPES,
            dunnable=dunnable_by_currency, message=request.query_params.get("message"),
            may_decide=user in approvers,
        )  # fmt: skip

    async def decide(request: Request) -> Response:
        user = require_user(request)
        if isinstance(user, Response):
            return user
        try:
            form = await checked_form(request)
            ids = [int(i) for i in form.getlist("ids") if str(i).isdigit()]
            if not ids:
                raise Refused(400, "Select at least one proposal.")
            decision = str(form.get("decision") or "")
            now = clock()
            with engine.begin() as connection:
                if decision == "approve":
                    results = approvals.approve(connection, ids, user, approvers, now)
                elif decision == "reject":
                    reason = str(form.get("reason") or "")
                    results = approvals.reject(connection, ids, user, reason, approvers, now)
                elif decision in approvals.RESOLUTIONS:  # an unconfirmed or stranded send
                    note = str(form.get("reason") or "")
                    results = approvals.resolve(
                        connection, ids, decision, user, approvers, now, note
                    )
                else:
                    raise Refused(400, "Unknown decision.")
        except approvals.DecisionRefused as error:
            return render(request, "message.html", http_status=403, message=str(error))
        except Refused as refusal:
            return render(request, "message.html", http_status=refusal.status, message=str(refusal))
        summary = "; ".join(
            f"{r.action_id}: {r.outcome}" + (f" (+{r.children} in envelope)" if r.children else "")
            for r in results
        )
        back = str(form.get("back") or "/proposals")
        back = back if back.startswith("/") else "/proposals"
        separator = "&" if "?" in back else "?"
        return RedirectResponse(f"{back}{separator}{urlencode({'message': summary})}", 303)

    async def edit(request: Request) -> Response:
        user = require_user(request)
        if isinstance(user, Response):
            return user
        action_id = int(request.path_params["action_id"])
        try:
            form = await checked_form(request)
            if user not in approvers:
                raise Refused(403, f"{user!r} is not in AR_APPROVERS and may not edit drafts.")
            subject = str(form.get("subject") or "").strip()
            body = str(form.get("body") or "").replace("\r\n", "\n")
            if not subject or "\n" in subject or "\r" in subject:
                raise Refused(400, "subject: one line of text is required.")
            if not body.strip():
                raise Refused(400, "body: the letter may not be empty.")
            pa = proposed_actions.c
            with engine.begin() as connection:
                row = connection.execute(
                    sa.select(pa.payload_json, pa.status).where(pa.action_id == action_id)
                ).first()
                if (
                    row is None
                    or row.status != "proposed"
                    or "subject" not in (row.payload_json or {})
                ):
                    raise Refused(409, "Only a pending draft can be edited.")
                edited = {**row.payload_json, "subject": subject, "body": body,
                          "edited_by": user, "edited_at": clock().isoformat()}  # fmt: skip
                changed = connection.execute(
                    proposed_actions.update()
                    .where(pa.action_id == action_id, pa.status == "proposed")
                    .values(edited_payload_json=edited)
                ).rowcount
                if not changed:
                    raise Refused(409, "The draft was decided meanwhile; nothing was saved.")
        except Refused as refusal:
            return render(request, "message.html", http_status=refusal.status, message=str(refusal))
        query = urlencode({"message": f"{action_id}: draft saved; the edited text will be sent"})
        return RedirectResponse(f"/proposals?{query}#action-{action_id}", 303)

    async def history_page(request: Request) -> Response:
        user = require_user(request)
        if isinstance(user, Response):
            return user
        page = _page_number(request)
        pa = proposed_actions.c
        where = [pa.status.in_(HISTORY_STATUSES), pa.action_type != "workflow_envelope"]
        with engine.connect() as connection:
            total, rows = _page_of_actions(
                connection,
                where,
                (sa.func.coalesce(pa.applied_at, pa.decided_at).desc(), pa.action_id.desc()),
                page,
            )
        return render(
            request, "history.html", rows=rows, page=page, total=total,
            pages=max(1, -(-total // PAGE_SIZE)), may_decide=user in approvers,
            message=request.query_params.get("message"),
        )  # fmt: skip

    async def trend_page(request: Request) -> Response:
        user = require_user(request)
        if isinstance(user, Response):
            return user
        from ar_pipeline.charts import trend_png

        rows = chart_rows() if chart_rows else []
        chart = base64.b64encode(trend_png(rows)).decode() if rows else None
        latest_day = max((r["as_of"] for r in rows), default=None)
        latest = [r for r in rows if r["as_of"] == latest_day]
        return render(request, "trend.html", chart=chart, latest=latest, day=latest_day)

    async def home(request: Request) -> Response:
        return RedirectResponse("/proposals", 303)

    routes = [
        Route("/", home),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/proposals", proposals_page, methods=["GET"]),
        Route("/proposals/decide", decide, methods=["POST"]),
        Route("/proposals/{action_id:int}/edit", edit, methods=["POST"]),
        Route("/history", history_page, methods=["GET"]),
        Route("/trend", trend_page, methods=["GET"]),
    ]
    middleware = [
        Middleware(
            SessionMiddleware,
            secret_key=secret,
            session_cookie="ar_session",
            max_age=SESSION_HOURS * 3600,
            same_site="strict",
        )
    ]
    return Starlette(routes=routes, middleware=middleware)


def session_secret(settings: Any) -> str:
    """``AR_WEB_SECRET``, or a random one kept (owner-only) in ``AR_DATA_DIR``."""
    if settings.web_secret:
        return settings.web_secret
    path = Path(settings.data_dir) / "web_secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()
