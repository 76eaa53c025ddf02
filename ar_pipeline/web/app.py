"""The approver's page (``ar-pipeline web``): review, edit, approve and reject proposals, and
settle sends whose outcome is unknown; a customer screen (``/customers/{customer_id}``) where a
collector records promises to pay and invoice holds (``ar_pipeline.actions.levers``).

A small Starlette app on the business database. Rules, the same as the CLI's: only a signed-in
account decides, the decision is stamped with the signed-in name (never one sent by the
browser), and only names in ``AR_APPROVERS`` may decide at all. Sessions, the sign-in
throttle, same-site redirects and the security headers are in ``ar_pipeline.web.sessions``;
what the lists hold and how a proposal reads, in ``ar_pipeline.web.lists``.

Every change is a POST carrying the session's CSRF token; nothing changes on GET. Deciding more
than one proposal at once (a selection, or everything the filter shows) first shows the exact
proposals and their number and asks for confirmation; the confirmed form carries those IDs, so
nothing that arrives meanwhile is decided with them. A refused decision shows the list again
with the error and the selection kept.

Promises and holds may be recorded by any signed-in account (they send nothing; the row keeps
the signed-in name), on the day that ``clock`` gives in ``timezone`` (``AR_TIMEZONE``). A
refused form shows the customer screen again with the error, the field named and what was
typed kept; nothing is written.
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
import secrets
from collections.abc import Callable, Sequence
from itertools import groupby
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit
from zoneinfo import ZoneInfo

import anyio
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from ar_pipeline.actions import approvals
from ar_pipeline.actions import levers as lever_actions
from ar_pipeline.actions.mail import InvalidMessage, single_line
from ar_pipeline.rules.money import format_money
from ar_pipeline.sources.service_periods import runbook_file
from ar_pipeline.store.schema import proposed_actions
from ar_pipeline.web import accounts as accounts_module
from ar_pipeline.web.customer import customer_screen
from ar_pipeline.web.lists import (
    ACTION_TYPE_CHOICES,
    PAGE_SIZE,
    VIEWS,
    Filters,
    Line,
    customers_with_hold_proposed,
    envelopes,
    lines_by_id,
    outcome_in_words,
    page_of_lines,
    view_counts,
)
from ar_pipeline.web.sessions import (
    SESSION_LIFETIME,
    SecurityHeaders,
    Session,
    SessionStore,
    SignInLimits,
    credential_of,
    safe_path,
    sign_in_token,
    sign_in_token_matches,
    wait_in_words,
)

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
TEMPLATES = Jinja2Templates(directory=str(TEMPLATES_DIR))
TEMPLATES.env.filters["money"] = lambda cents, currency: format_money(int(cents), currency)
TEMPLATES.env.globals["outcome_in_words"] = outcome_in_words
STYLESHEET = (TEMPLATES_DIR / "page.css").read_text()
# PBKDF2 runs in worker threads, at most this many at once, so that sign-ins (honest or not)
# never stall the pages of the people already signed in
HASHING_THREADS = 4
CALLS_LISTED = 50  # rows per currency on "Today's calls"; the table holds them all
DECISIONS = ("approve", "reject", *approvals.RESOLUTIONS)
DONE = {"approve": "Approved", "reject": "Rejected", "delivered": "Recorded as delivered",
        "send_again": "Sent again"}  # fmt: skip

Clock = Callable[[], dt.datetime]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Starlette(Starlette):
    """Starlette with the security headers outside everything, its own error pages too."""

    def build_middleware_stack(self) -> Any:
        return SecurityHeaders(super().build_middleware_stack())


def dummy_hash(accounts: dict[str, str]) -> str:
    """A hash no password matches, as costly to check as the accounts' own (the most
    iterations among them): an unknown user name costs the same work as a known one."""
    iterations = []
    for encoded in accounts.values():
        try:
            iterations.append(int(encoded.split("$")[1]))
        except (IndexError, ValueError):
            continue
    rounds = max(iterations, default=accounts_module.ITERATIONS)
    salt, digest = (base64.b64encode(secrets.token_bytes(n)).decode() for n in (16, 32))
    return f"{accounts_module.ALGORITHM}${rounds}${salt}${digest}"


def _row_id(text: str) -> int | None:
    """A row id as a form gives it: 1 to 18 ASCII digits (it fits a BIGINT), else None."""
    return int(text) if text.isascii() and text.isdigit() and len(text) < 19 else None


def _ids(values: Sequence[Any]) -> list[int]:
    """Action IDs from a form, each once, in order."""
    found: dict[int, None] = {}
    for value in values:
        if (action_id := _row_id(str(value))) is not None:
            found.setdefault(action_id, None)
    return list(found)


class RowIdConvertor(Convertor):
    """A row id in a path: 1 to 18 digits, so that it always fits the databases' BIGINT (a
    longer number is no route: 404, not a driver's overflow error)."""

    regex = "[0-9]{1,18}"

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        return str(value)


register_url_convertor("row_id", RowIdConvertor())


def _seen(values: Sequence[Any]) -> dict[int, str]:
    """The versions a page showed (``seen`` fields: ``<id>:<version>``), by action ID."""
    versions: dict[int, str] = {}
    for value in values:
        text, _, version = str(value).partition(":")
        if (action_id := _row_id(text)) is not None and version:
            versions.setdefault(action_id, version)
    return versions


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def create_app(
    engine: Engine,
    accounts: dict[str, str],
    approvers: frozenset[str] | set[str],
    secret: str,
    clock: Clock = _utcnow,
    chart_rows: Callable[[], list[dict[str, Any]]] | None = None,
    secure_cookie: bool = False,
    limits: SignInLimits | None = None,
    timezone: ZoneInfo | None = None,
) -> Starlette:
    """The app. ``clock`` gives the time of sessions and throttling (tests pass their own), and
    with ``timezone`` (``AR_TIMEZONE``, UTC if not given) the day promises and holds are
    recorded on;
    ``secure_cookie`` marks the cookies ``Secure`` (the page is served over HTTPS);
    ``secret`` signs the sign-in form's token."""
    store = SessionStore(engine)
    limits = limits or SignInLimits.default()
    unknown_user_hash = dummy_hash(accounts)
    prefix = "__Host-" if secure_cookie else ""  # __Host-: Secure, path /, this host only
    session_cookie, sign_in_cookie = f"{prefix}ar_session", f"{prefix}ar_sign_in"
    hashing: list[anyio.CapacityLimiter] = []  # made on first use, inside the event loop

    def cookie(response: Response, name: str, value: str, max_age: int | None = None) -> None:
        response.set_cookie(name, value, max_age=max_age, path="/", httponly=True,
                            samesite="strict", secure=secure_cookie)  # fmt: skip

    def session_of(request: Request) -> Session | None:
        if not hasattr(request.state, "session"):
            request.state.session = store.load(request.cookies.get(session_cookie), clock())
        return request.state.session

    def render(
        request: Request, name: str, http_status: int = 200, **context: Any
    ) -> Response:
        session = session_of(request)
        if session is not None and "user" not in context:
            context.update(user=session.user, csrf=session.csrf)
            with engine.connect() as connection:
                context["counts"] = view_counts(connection, clock())
            if session.flash:
                context["flash"] = session.flash
                store.set_flash(session, None)
        context.setdefault("views", VIEWS)
        return TEMPLATES.TemplateResponse(request, name, context, status_code=http_status)

    def message_page(request: Request, http_status: int, message: str) -> Response:
        return render(request, "message.html", http_status=http_status, error=message)

    def require_session(request: Request) -> Session | Response:
        session = session_of(request)
        if session is not None and (
            session.user not in accounts
            or session.credential is None
            or not hmac.compare_digest(
                session.credential, credential_of(secret, accounts[session.user])
            )
        ):  # the account is gone, or its password changed since this session was opened
            store.end(session)
            session = request.state.session = None
        if session is None:
            target = request.url.path if request.method == "GET" else "/proposals"
            if request.method == "GET" and request.url.query:
                target += f"?{request.url.query}"
            return RedirectResponse(f"/login?{urlencode({'next': target})}", 303)
        return session

    async def checked_form(request: Request, session: Session) -> Any:
        """The POSTed form, after the session's CSRF token matched."""
        form = await request.form()
        if not hmac.compare_digest(session.csrf, str(form.get("csrf") or "")):
            raise Refused(403, "The form has expired or did not come from this page; reload it.")
        return form

    # --- signing in and out -------------------------------------------------------------------

    def login_form(
        request: Request, next_path: str, http_status: int = 200, error: str | None = None,
        retry_after: int | None = None, username: str = "",
    ) -> Response:  # fmt: skip
        nonce = request.cookies.get(sign_in_cookie) or ""
        if not (20 <= len(nonce) <= 100 and nonce.replace("-", "").replace("_", "").isalnum()):
            nonce = secrets.token_urlsafe(32)
        response = render(
            request, "login.html", http_status=http_status, user=None,
            csrf=sign_in_token(secret, nonce), next=next_path, error=error, username=username,
        )  # fmt: skip
        cookie(response, sign_in_cookie, nonce)
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        return response

    async def login_page(request: Request) -> Response:
        return login_form(request, safe_path(request.query_params.get("next"), "/proposals"))

    async def verify(password: str, encoded: str) -> bool:
        if not hashing:
            hashing.append(anyio.CapacityLimiter(HASHING_THREADS))
        return await anyio.to_thread.run_sync(
            accounts_module.verify_password, password, encoded, limiter=hashing[0]
        )

    async def login(request: Request) -> Response:
        form = await request.form()
        next_path = safe_path(form.get("next"), "/proposals")
        if not sign_in_token_matches(
            secret, request.cookies.get(sign_in_cookie), str(form.get("csrf") or "")
        ):
            return login_form(
                request, next_path, 403,
                "The sign-in form has expired or did not come from this page; sign in again.",
            )  # fmt: skip
        name = str(form.get("username") or "").strip()[:200]
        password = str(form.get("password") or "")[:1024]
        address = request.client.host if request.client else "unknown"
        now = clock()
        wait = limits.wait(name, address, now)
        if wait is not None:
            return login_form(
                request, next_path, 429,
                f"Too many failed sign-ins for this user name or from this computer. Wait "
                f"{wait_in_words(wait)}, then try again. Nothing was checked this time.",
                retry_after=int(-(-wait.total_seconds() // 1)), username=name,
            )  # fmt: skip
        limits.begin(name, address, now)
        failed = True
        try:
            encoded = accounts.get(name)
            # an unknown name is checked against a dummy hash: the same work, the same answer
            matches = await verify(password, encoded or unknown_user_hash)
            failed = encoded is None or not matches
        finally:
            limits.finish(name, address, now, failed)
        if failed:
            return login_form(request, next_path, 401, "Wrong user name or password.",
                              username=name)  # fmt: skip
        previous = session_of(request)
        if previous is not None:
            store.end(previous)
        token, _ = store.create(name, now, credential_of(secret, accounts[name]))
        response = RedirectResponse(next_path, 303)
        cookie(response, session_cookie, token, max_age=int(SESSION_LIFETIME.total_seconds()))
        response.delete_cookie(sign_in_cookie, path="/", secure=secure_cookie)
        return response

    async def logout(request: Request) -> Response:
        session = session_of(request)
        if session is not None:
            try:
                await checked_form(request, session)
            except Refused as refusal:
                return message_page(request, refusal.status, str(refusal))
            store.end(session)
        response = RedirectResponse("/login", 303)
        response.delete_cookie(session_cookie, path="/", secure=secure_cookie)
        return response

    # --- the lists ----------------------------------------------------------------------------

    def list_page(
        request: Request, session: Session, filters: Filters, http_status: int = 200,
        error: str | None = None, selected: Sequence[int] = (), reason: str = "",
    ) -> Response:  # fmt: skip
        now = clock()
        with engine.connect() as connection:
            total, lines = page_of_lines(connection, filters, now)
            runs = envelopes(connection, {line.envelope_id for line in lines if line.envelope_id})
            holds = customers_with_hold_proposed(
                connection, {line.customer_id for line in lines if line.customer_id}
            )
        groups = []
        for as_of, group in groupby(lines, key=lambda line: line.as_of):
            members = list(group)
            envelope = next((runs[m.envelope_id] for m in members if m.envelope_id in runs), None)
            groups.append((as_of, envelope, members))
        decidable = [(line.action_id, line.version) for line in lines if line.status == "proposed"]
        return render(
            request, "proposals.html", http_status=http_status, filters=filters, total=total,
            current=filters.view,
            groups=groups if filters.view == "pending" else [(None, None, lines)] if lines else [],
            lines=lines, pages=max(1, -(-total // PAGE_SIZE)), holds=holds,
            decidable=decidable, action_types=ACTION_TYPE_CHOICES,
            back=f"/proposals?{filters.query()}", error=error, selected=set(selected),
            reason=reason, may_decide=session.user in approvers, page_size=PAGE_SIZE,
        )  # fmt: skip

    async def proposals_page(request: Request) -> Response:
        session = require_session(request)
        if isinstance(session, Response):
            return session
        return list_page(request, session, Filters.from_query(request.query_params))

    def history_page_for(
        request: Request, session: Session, page: int, http_status: int = 200,
        error: str | None = None,
    ) -> Response:  # fmt: skip
        filters = Filters(page=page)
        with engine.connect() as connection:
            total, lines = page_of_lines(connection, filters, clock(), view="history")
        return render(
            request, "history.html", http_status=http_status, lines=lines, page=page,
            current="history",
            total=total, pages=max(1, -(-total // PAGE_SIZE)), error=error,
            may_decide=session.user in approvers,
        )  # fmt: skip

    async def repair_plan_file(request: Request) -> Response:
        """A repair plan's rows as the JSON file Alga's cutover runbook asks for: ``existing``
        (the schedule's rows as IRecurringServicePeriodRecord) or ``obligation`` (backfill)."""
        session = require_session(request)
        if isinstance(session, Response):
            return session
        action_id, part = request.path_params["action_id"], request.path_params["part"]
        with engine.connect() as connection:
            payload = connection.execute(
                sa.select(proposed_actions.c.payload_json).where(
                    proposed_actions.c.action_id == action_id,
                    proposed_actions.c.action_type == "service_period_repair",
                )
            ).scalar_one_or_none()
        found = runbook_file(action_id, payload, part) if payload is not None else None
        if found is None:
            return Response("No such file.", status_code=404, media_type="text/plain")
        name, text = found
        return Response(
            text,
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    async def history_page(request: Request) -> Response:
        session = require_session(request)
        if isinstance(session, Response):
            return session
        return history_page_for(request, session, Filters.from_query(request.query_params).page)

    def back_to(
        request: Request, session: Session, back: str, http_status: int, error: str,
        selected: Sequence[int] = (), reason: str = "",
    ) -> Response:  # fmt: skip
        """The page the form came from, again, with the error and the selection kept."""
        parts = urlsplit(back)
        query = QueryParams(parts.query)
        if parts.path == "/proposals":
            return list_page(request, session, Filters.from_query(query), http_status, error,
                             selected, reason)  # fmt: skip
        if parts.path == "/history":
            return history_page_for(request, session, Filters.from_query(query).page,
                                    http_status, error)  # fmt: skip
        return message_page(request, http_status, error)

    # --- deciding -----------------------------------------------------------------------------

    async def decide(request: Request) -> Response:
        session = require_session(request)
        if isinstance(session, Response):
            return session
        try:
            form = await checked_form(request, session)
        except Refused as refusal:
            return message_page(request, refusal.status, str(refusal))
        back = safe_path(form.get("back"), "/proposals")
        decision, _, scope = str(form.get("decision") or "").partition(":")
        selected = _ids(form.getlist("ids"))
        ids = _ids(form.getlist("shown")) if scope == "shown" else selected
        reason = str(form.get("reason") or "").strip()
        bulk = form.get("bulk") == "1" or len(ids) > 1

        def refuse(http_status: int, message: str) -> Response:
            return back_to(request, session, back, http_status, message, selected, reason)

        if session.user not in approvers:
            return refuse(403, f"{session.user!r} is not in AR_APPROVERS and may not decide; "
                               "nothing was changed.")  # fmt: skip
        if decision not in DECISIONS:
            return refuse(400, "Unknown decision; nothing was changed.")
        if not ids:
            return refuse(400, "Select at least one proposal (tick its box), then choose "
                               "Approve or Reject. Nothing was changed.")  # fmt: skip
        now = clock()
        with engine.connect() as connection:
            lines = lines_by_id(connection, ids, now)
        found = {line.action_id for line in lines}
        if missing := [str(i) for i in ids if i not in found]:
            return refuse(400, f"No proposal {', '.join(missing)}; nothing was changed.")
        if any(line.action_type == "workflow_envelope" for line in lines):
            return refuse(400, "The page decides proposals, not whole runs: filter the list "
                               "and use the buttons for what it shows. Nothing was changed.")
        if decision == "reject" and not reason:
            who = lines[0].label if len(lines) == 1 else _plural(len(lines), "proposal")
            return refuse(400, f"Give a reason to reject {who}: it is recorded and shown in "
                               "History. Nothing was changed.")  # fmt: skip
        # an approval binds to the versions the page showed; the confirmation carries them on
        seen = _seen(form.getlist("seen"))
        if decision == "approve" and (unseen := [line.label for line in lines
                                                 if line.action_id not in seen]):  # fmt: skip
            return refuse(400, f"The page did not say which version of {', '.join(unseen)} you "
                               "saw; reload it and decide again. Nothing was changed.")  # fmt: skip
        if bulk and form.get("confirmed") != str(len(ids)):
            return render(
                request, "confirm.html", lines=lines, decision=decision, reason=reason,
                back=back, done=DONE[decision], scope=scope, seen=seen,
            )  # fmt: skip
        try:
            with engine.begin() as connection:
                if decision == "approve":
                    results = approvals.approve(connection, ids, session.user, approvers, now,
                                                seen=seen)  # fmt: skip
                elif decision == "reject":
                    results = approvals.reject(connection, ids, session.user, reason, approvers,
                                               now)  # fmt: skip
                else:  # an unconfirmed or stranded send
                    results = approvals.resolve(connection, ids, decision, session.user,
                                                approvers, now, reason)  # fmt: skip
        except approvals.DecisionRefused as error:
            return refuse(403, str(error))
        by_id = {line.action_id: line for line in lines}
        store.set_flash(session, _flash(decision, results, by_id))
        return RedirectResponse(back, 303)

    async def edit(request: Request) -> Response:
        session = require_session(request)
        if isinstance(session, Response):
            return session
        action_id = int(request.path_params["action_id"])
        try:
            form = await checked_form(request, session)
        except Refused as refusal:
            return message_page(request, refusal.status, str(refusal))
        back = safe_path(form.get("back"), "/proposals")
        try:
            if session.user not in approvers:
                raise Refused(403, f"{session.user!r} is not in AR_APPROVERS and may not edit "
                                   "drafts.")  # fmt: skip
            subject = str(form.get("subject") or "").strip()
            body = str(form.get("body") or "").replace("\r\n", "\n")
            try:  # the mailer's own rule: a subject it would refuse at send time is refused now
                single_line("subject", subject)
            except InvalidMessage:
                subject = ""
            if not subject:
                raise Refused(400, "Subject: one line of text is required (no line breaks or "
                                   "control characters); nothing was saved.")  # fmt: skip
            if not body.strip():
                raise Refused(400, "Letter: it may not be empty; nothing was saved.")
            pa = proposed_actions.c
            with engine.begin() as connection:
                try:  # the apply side's list too, as deciding does: an edit is what gets sent
                    approvals.check_decider(connection, session.user, approvers)
                except approvals.DecisionRefused as error:
                    raise Refused(403, f"{error}; nothing was saved.") from None
                row = connection.execute(
                    sa.select(pa.payload_json, pa.edited_payload_json, pa.status)
                    .where(pa.action_id == action_id)
                    .with_for_update()
                ).first()
                if (
                    row is None
                    or row.status != "proposed"
                    or "subject" not in (row.payload_json or {})
                ):
                    raise Refused(409, "Only a pending draft can be edited; nothing was saved.")
                shown = _seen(form.getlist("seen")).get(action_id)
                if shown != approvals.proposal_version(
                    row.status, row.payload_json, row.edited_payload_json
                ):
                    raise Refused(409, "The draft changed since you opened it (someone else "
                                       "edited it); read it again. Nothing was saved.")  # fmt: skip
                edited = {**row.payload_json, "subject": subject, "body": body,
                          "edited_by": session.user, "edited_at": clock().isoformat()}  # fmt: skip
                changed = connection.execute(
                    proposed_actions.update()
                    .where(pa.action_id == action_id, pa.status == "proposed")
                    .values(edited_payload_json=edited)
                ).rowcount
                if not changed:
                    raise Refused(409, "The draft was decided meanwhile; nothing was saved.")
                name = row.payload_json.get("customer_name") or "the customer"
        except Refused as refusal:
            return back_to(request, session, back, refusal.status, str(refusal))
        store.set_flash(session, {
            "kind": "ok", "focus": action_id,
            "lines": [f"Draft for {name} saved; the edited text is what will be sent."],
        })  # fmt: skip
        return RedirectResponse(f"{back}#action-{action_id}", 303)

    # --- a customer: promises to pay and invoice holds ------------------------------------------

    zone = timezone or ZoneInfo("UTC")

    def today() -> dt.date:
        return clock().astimezone(zone).date()

    def customer_page(
        request: Request, customer_id: str, http_status: int = 200, error: str | None = None,
        form: Any = None, form_name: str = "",
    ) -> Response:  # fmt: skip
        with engine.connect() as connection:
            screen = customer_screen(connection, customer_id, today())
        if screen is None:
            return message_page(request, 404, f"No customer {customer_id!r}.")
        return render(request, "customer.html", http_status=http_status, error=error,
                      screen=screen, form=form or {}, form_name=form_name,
                      current="customer")  # fmt: skip

    async def customer_view(request: Request) -> Response:
        session = require_session(request)
        if isinstance(session, Response):
            return session
        return customer_page(request, request.path_params["customer_id"])

    def _form_date(form: Any, name: str, field: str, required: bool = True) -> dt.date | None:
        from ar_pipeline.settings import parse_date

        raw = str(form.get(name) or "").strip()
        if not raw:
            if required:
                raise lever_actions.LeverRefused(f"{field}: required (YYYY-MM-DD)")
            return None
        try:
            return parse_date(raw)
        except ValueError as error:
            raise lever_actions.LeverRefused(f"{field}: {error}") from None

    async def customer_lever(request: Request) -> Response:
        """POST /customers/{id}/{promise|hold} (record) and
        /customers/{id}/{promise|hold}s/{n}/{cancel|release}."""
        session = require_session(request)
        if isinstance(session, Response):
            return session
        customer_id = request.path_params["customer_id"]
        try:
            form = await checked_form(request, session)
        except Refused as refusal:
            return message_page(request, refusal.status, str(refusal))
        what = request.path_params["what"]
        number = request.path_params.get("number")
        verb = request.path_params.get("verb")
        if (what, verb) not in (("promise", None), ("hold", None), ("promises", "cancel"),
                                ("holds", "release")):  # fmt: skip
            return message_page(request, 404, "No such form.")
        now = clock()
        try:
            with engine.begin() as connection:
                if what == "promise":
                    promise_id = lever_actions.record_promise(
                        connection, customer_id=customer_id,
                        amount=str(form.get("amount") or ""),
                        currency=str(form.get("currency") or ""),
                        promised_date=_form_date(form, "promised_date", "promised_date"),
                        recorded_by=session.user, today=today(), now=now,
                        invoice_ids=[str(i) for i in form.getlist("invoice")],
                        all_overdue=form.get("all_overdue") == "1",
                        note=str(form.get("note") or ""),
                    )  # fmt: skip
                    done = f"Promise {promise_id} recorded: its invoices are not dunned " \
                        "until the promised date; the morning after, it is judged."
                elif what == "hold":
                    hold_id = lever_actions.record_hold(
                        connection, invoice_id=str(form.get("invoice") or ""),
                        reason=str(form.get("reason") or ""),
                        held_until=_form_date(form, "held_until", "held_until"),
                        held_from=_form_date(form, "held_from", "held_from", required=False),
                        recorded_by=session.user, today=today(), now=now,
                        note=str(form.get("note") or ""), customer_id=customer_id,
                    )  # fmt: skip
                    done = f"Hold {hold_id} recorded: the invoice stays in the aging, out of " \
                        "the letters until the hold ends."
                elif what == "promises":
                    lever_actions.cancel_promise(
                        connection, int(number), cancelled_by=session.user, today=today(),
                        now=now, customer_id=customer_id,
                    )  # fmt: skip
                    done = f"Promise {number} cancelled: its invoices are dunnable again."
                else:
                    lever_actions.release_hold(
                        connection, int(number), released_by=session.user, today=today(),
                        now=now, note=str(form.get("note") or ""), customer_id=customer_id,
                    )  # fmt: skip
                    done = f"Hold {number} released: the invoice is dunnable again."
        except lever_actions.LeverRefused as refusal:
            return customer_page(
                request, customer_id, 400, f"{refusal} Nothing was recorded.", form, what
            )
        store.set_flash(session, {"kind": "ok", "lines": [done]})
        return RedirectResponse(f"/customers/{quote(customer_id, safe='')}", 303)

    async def trend_page(request: Request) -> Response:
        session = require_session(request)
        if isinstance(session, Response):
            return session
        from ar_pipeline.rules.charts import trend_png

        rows = chart_rows() if chart_rows else []
        chart = base64.b64encode(trend_png(rows)).decode() if rows else None
        latest_day = max((r["as_of"] for r in rows), default=None)
        latest = [r for r in rows if r["as_of"] == latest_day]
        return render(request, "trend.html", chart=chart, latest=latest, day=latest_day,
                      current="trend")

    async def calls_page(request: Request) -> Response:
        """Today's calls: the latest worklist (or ``?day=``), one ranked list per currency."""
        session = require_session(request)
        if isinstance(session, Response):
            return session
        from ar_pipeline.rules import worklist

        asked = request.query_params.get("day")
        try:
            day = dt.date.fromisoformat(asked) if asked else None
        except ValueError:
            return message_page(request, 400, f"day: not a date like 2026-03-31: {asked!r}")
        with engine.connect() as connection:
            day = day or worklist.latest_day(connection)
            rows = worklist.top_of_list(connection, day, CALLS_LISTED) if day else []
        by_currency: dict[str, list[Any]] = {}
        for row in rows:
            by_currency.setdefault(row.currency, []).append(row)
        return render(request, "calls.html", day=day, lists=by_currency, listed=CALLS_LISTED,
                      current="calls")  # fmt: skip

    async def stylesheet(request: Request) -> Response:
        return Response(STYLESHEET, media_type="text/css",
                        headers={"cache-control": "max-age=600"})  # fmt: skip

    async def home(request: Request) -> Response:
        return RedirectResponse("/proposals", 303)

    routes = [
        Route("/", home),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/proposals", proposals_page, methods=["GET"]),
        Route("/proposals/decide", decide, methods=["POST"]),
        Route("/proposals/{action_id:row_id}/edit", edit, methods=["POST"]),
        Route("/history", history_page, methods=["GET"]),
        Route("/proposals/{action_id:row_id}/{part:str}.json", repair_plan_file, methods=["GET"]),
        Route("/trend", trend_page, methods=["GET"]),
        Route("/customers/{customer_id:str}", customer_view, methods=["GET"]),
        Route("/customers/{customer_id:str}/{what:str}", customer_lever, methods=["POST"]),
        Route("/customers/{customer_id:str}/{what:str}/{number:row_id}/{verb:str}", customer_lever,
              methods=["POST"]),  # fmt: skip
        Route("/calls", calls_page, methods=["GET"]),
        Route("/static/page.css", stylesheet, methods=["GET"]),
    ]
    return _Starlette(routes=routes)


def _flash(decision: str, results: list[approvals.Decision], lines: dict[int, Line]) -> dict:
    """What the next page says about a decision: what changed, and what did not and why."""
    done = [r for r in results if not r.outcome.startswith("not ")]
    lines_out = []
    if done:
        labels = ", ".join(lines[r.action_id].label for r in done)
        text = f"{DONE[decision]}: {labels}."
        if decision in ("approve", "send_again"):
            text += " The apply job sends approved letters within a minute or two; until then "
            text += "they are under “Waiting to be sent”."
        lines_out.append(text)
    for r in results:
        if r.outcome.startswith("not "):
            why = r.outcome.removeprefix("not changed: ")
            lines_out.append(f"Not changed: {lines[r.action_id].label}: {why}.")
    return {"kind": "ok" if len(done) == len(results) else "warn", "lines": lines_out}


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
