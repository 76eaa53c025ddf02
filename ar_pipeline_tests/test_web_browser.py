"""End to end in a real browser: Debian's Chromium, driven by Playwright, works through a day's
proposals the way a clerk does; the sensor and the apply job then deliver to a real SMTP server
on loopback, and each test ends with what arrived there.

The staged day is build_dunning_ledger's (test_proposals.py): letters to Alpha GmbH (tier 3,
with an e-mail on the rep's behalf), Delta on hold and Heavy Industries (tier 1), and a service
hold for Heavy Industries. Set ``AR_TEST_SCREENSHOTS`` to a folder to keep a full-page
screenshot of every step (1366x768, a laptop's screen)."""

import datetime as dt
import os
import re
import shutil
import threading
import time
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
import uvicorn

from ar_pipeline.definitions import build_definitions
from ar_pipeline.defs.resources import ArDatabase
from ar_pipeline.settings import load_settings
from ar_pipeline.store.schema import customers, proposed_actions
from ar_pipeline_tests.conftest import free_port
from ar_pipeline_tests.ledger_builder import build_dunning_ledger
from ar_pipeline_tests.test_proposals import actions, run_job
from ar_pipeline_tests.web_client import PASSWORDS, Clock, make_app

CHROMIUM = os.environ.get("AR_TEST_CHROMIUM", "/usr/bin/chromium")
AS_OF = dt.date(2026, 3, 31)
PAGE_TIME = Clock().now  # the page's clock: 2026-03-31 09:00 UTC


def _require_browser() -> None:
    if shutil.which(CHROMIUM) is None and not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"CI requires a browser at {CHROMIUM} (Debian package chromium)")
        pytest.skip(f"no browser at {CHROMIUM}: apt-get install chromium")


class Server:
    def __init__(self, app) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the web server did not start")
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class Browser:
    """The page in Chromium at a laptop's size, signed in as alice."""

    def __init__(self, engine, name: str) -> None:
        self.engine, self.name, self.step = engine, name, 0

    def __enter__(self):
        from playwright.sync_api import sync_playwright

        self.server = Server(make_app(self.engine))
        self.base = self.server.__enter__()
        self.playwright = sync_playwright().start()
        try:
            self.browser = self.playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                      "--disable-component-update", "--disable-sync", "--no-first-run"],
            )  # fmt: skip
            self.page = self.browser.new_page(viewport={"width": 1366, "height": 768})
            # generous: signing in runs the password KDF in the test's own process, which a
            # busy 2-core machine once took more than 10 s to answer
            self.page.set_default_timeout(30_000)
            self.page.goto(f"{self.base}/proposals")
            self.page.get_by_label("User name").fill("alice")
            self.page.get_by_label("Password").fill(PASSWORDS["alice"])
            self.page.get_by_role("button", name="Sign in").click()
            self.page.wait_for_url(f"{self.base}/proposals")
        except BaseException:
            # a failed start must not leave Playwright's loop running into the next test
            self.playwright.stop()
            self.server.__exit__(None, None, None)
            raise
        return self

    def shot(self, what: str) -> None:
        folder = os.environ.get("AR_TEST_SCREENSHOTS")
        if folder:
            self.step += 1
            path = Path(folder) / f"{self.name}-{self.step:02d}-{what}.png"
            self.page.screenshot(path=str(path), full_page=True)

    def flash(self) -> str:
        return " ".join(self.page.locator(".flash").inner_text().split())

    def __exit__(self, *exc) -> None:
        self.browser.close()
        self.playwright.stop()
        self.server.__exit__(*exc)


def stage_the_day(engine, database_url, tmp_path) -> dict:
    with engine.begin() as connection:
        build_dunning_ledger(connection)
    run_job(database_url, tmp_path)
    return {(r["action_type"], r["customer_id"]): r["action_id"]
            for r in actions(engine, as_of=AS_OF)}  # fmt: skip


def apply_what_was_approved(database_url, tmp_path, smtp_server) -> dict:
    """One tick of the approval sensor and the apply run it requests (as the daemon would)."""
    settings = load_settings(
        {"AR_DATABASE_URL": database_url, "AR_DATA_DIR": str(tmp_path), "AR_APPROVERS": "alice",
         "AR_MAIL_FROM": "ar@example.com", "AR_SMTP_HOST": "127.0.0.1",
         "AR_SMTP_PORT": str(smtp_server.port)}
    )  # fmt: skip
    defs = build_definitions(settings)
    sensor = defs.resolve_sensor_def("approved_actions_sensor")
    with dg.build_sensor_context(
        resources={"ar_db": ArDatabase.from_settings(settings)}
    ) as context:
        (request,) = sensor.evaluate_tick(context).run_requests
    run_config = request.run_config
    run_config["ops"]["apply_approved"]["config"]["as_of"] = AS_OF.isoformat()
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("apply_approved_actions").execute_in_process(
            run_config=run_config, instance=instance
        )
    return result.output_for_node("apply_approved")


def arrived(smtp_server) -> list[tuple]:
    """(recipients, Message-ID, subject) of every message the SMTP server took, sorted."""
    return sorted(
        (tuple(m["rcpt_tos"]), m["message"]["Message-ID"], m["message"]["Subject"])
        for m in smtp_server.handler.messages
    )


def test_edit_approve_one_reject_one_and_a_confirmed_bulk_on_a_filtered_list(
    engine, database_url, tmp_path, smtp_server
):
    _require_browser()
    ids = stage_the_day(engine, database_url, tmp_path)
    heavy, delta = ids[("collection_action", "H")], ids[("collection_action", "D")]
    alpha, alpha_rep = ids[("collection_action", "A")], ids[("email_to_customer", "A")]
    edited_subject = "Payment of invoice N-H1, please"
    edited_body = "Dear Heavy Industries,\n\nplease pay invoice N-H1 (30,000.00 EUR) this week.\n"

    with Browser(engine, f"day-{engine.dialect.name}") as b:
        page = b.page
        b.shot("to-decide")
        # the letter is folded: open it, edit it, then approve that one proposal
        letter = page.locator(f"#action-{heavy} details.letter")
        letter.locator("summary").click()
        letter.get_by_label("Subject").fill(edited_subject)
        letter.get_by_label("Letter").fill(edited_body)
        letter.get_by_role("button", name="Save edit").click()
        page.wait_for_selector(".flash")
        assert b.flash() == (
            "Draft for Heavy Industries saved; the edited text is what will be sent.")
        page.get_by_role("button", name="Approve Heavy Industries (letter, tier 1 reminder)",
                         exact=True).click()  # fmt: skip
        page.wait_for_selector(".flash")
        assert b.flash().startswith("Approved: Heavy Industries (letter, tier 1 reminder).")
        # reject one, with its reason
        page.get_by_label("Reason to reject Delta on hold (letter, tier 1 reminder)").fill(
            "paid by phone this morning")
        page.get_by_role("button", name="Reject Delta on hold (letter, tier 1 reminder)").click()
        page.wait_for_selector(".flash")
        assert b.flash() == "Rejected: Delta on hold (letter, tier 1 reminder)."
        b.shot("after-approve-and-reject")
        # the bulk action on the list filtered to tier 3: exactly the 2 shown, confirmed first
        page.get_by_label("Tier", exact=True).select_option("3")
        page.get_by_role("button", name="Filter").click()
        page.wait_for_url(re.compile(r"tier=3"))
        assert "Filtered to tier 3: 2 proposals." in page.locator(".summary").inner_text()
        page.get_by_role("button", name="Approve all 2 shown…").click()
        page.get_by_role("heading", name="Approve 2 proposals?").wait_for()
        assert page.locator("tbody tr").count() == 2
        b.shot("confirm")
        page.get_by_role("button", name="Approve these 2 proposals").click()
        page.wait_for_selector(".flash")
        assert b.flash().startswith(
            "Approved: Alpha GmbH (letter, tier 3 final notice), Alpha GmbH (rep's e-mail, "
            "tier 3).")  # fmt: skip
        assert "Nothing matches this filter." in page.locator("main").inner_text()
        # what waits to be sent now
        page.get_by_role("link", name=re.compile("^Waiting to be sent")).click()
        page.wait_for_url(re.compile(r"view=waiting"))
        waiting = page.locator("li.line .who").all_inner_texts()
        assert sorted(waiting) == ["Alpha GmbH", "Alpha GmbH", "Heavy Industries"]
        b.shot("waiting")

    statuses = {r["action_id"]: (r["status"], r["decided_by"]) for r in actions(engine)}
    assert statuses[delta] == ("rejected", "alice")
    assert statuses[ids[("customer_program", "H")]] == ("proposed", None)  # not in the filter
    assert apply_what_was_approved(database_url, tmp_path, smtp_server) == {"applied": 3}
    assert arrived(smtp_server) == [
        (("ap@alpha.example.com",), f"<ar-action-{alpha}@example.com>",
         "Final notice before further action"),
        (("ap@alpha.example.com", "rep@sales.example.com"), f"<ar-action-{alpha_rep}@example.com>",
         "Alpha GmbH: your overdue invoices with us"),
        (("ap@heavy.example.com",), f"<ar-action-{heavy}@example.com>", edited_subject),
    ]  # fmt: skip
    (to_heavy,) = [m for m in smtp_server.handler.messages
                   if m["rcpt_tos"] == ["ap@heavy.example.com"]]  # fmt: skip
    assert to_heavy["body"] == edited_body
    with engine.connect() as connection:
        on_hold = connection.execute(
            sa.select(customers.c.service_hold).where(customers.c.customer_id == "H")
        ).scalar_one()
    assert on_hold is False


def test_needs_attention_settled_in_the_browser(engine, database_url, tmp_path, smtp_server):
    """Heavy's letter is unconfirmed (no answer after the data), Alpha's rep e-mail failed
    (550), and Delta's letter was left applying by a crash 20 minutes ago."""
    _require_browser()
    ids = stage_the_day(engine, database_url, tmp_path)
    heavy, delta = ids[("collection_action", "H")], ids[("collection_action", "D")]
    alpha_rep = ids[("email_to_customer", "A")]
    pa = proposed_actions.c
    earlier = PAGE_TIME - dt.timedelta(minutes=20)
    with engine.begin() as connection:
        for action_id, values in {
            heavy: {"status": "unconfirmed", "claimed_at": earlier, "attempts": 1,
                    "last_error": "no answer after the message data was sent"},
            alpha_rep: {"status": "failed", "attempts": 1,
                        "last_error": "550 5.1.1 mailbox unavailable"},
            delta: {"status": "applying", "claimed_at": earlier, "attempts": 1},
        }.items():  # fmt: skip
            connection.execute(proposed_actions.update().where(pa.action_id == action_id).values(
                decided_by="alice", decided_at=earlier - dt.timedelta(hours=1), **values))

    with Browser(engine, f"attention-{engine.dialect.name}") as b:
        page = b.page
        page.get_by_role("link", name=re.compile("^Needs attention")).click()
        page.wait_for_url(re.compile(r"view=attention"))
        assert page.locator("li.line").count() == 3
        b.shot("needs-attention")
        page.locator(f"#action-{heavy}").get_by_label("Note (optional)").fill("not in the mail log")
        page.get_by_role("button", name="Send it again: Heavy Industries (letter, tier 1 reminder)"
                         ).click()  # fmt: skip
        page.wait_for_selector(".flash")
        assert b.flash().startswith("Sent again: Heavy Industries (letter, tier 1 reminder).")
        page.get_by_role("button", name="Approve again Alpha GmbH (rep's e-mail, tier 3)").click()
        page.wait_for_selector(".flash")
        assert b.flash().startswith("Approved: Alpha GmbH (rep's e-mail, tier 3).")
        page.locator(f"#action-{delta}").get_by_label("Note (optional)").fill("the customer has it")
        page.get_by_role("button", name="It was delivered: Delta on hold (letter, tier 1 reminder)"
                         ).click()  # fmt: skip
        page.wait_for_selector(".flash")
        assert b.flash() == "Recorded as delivered: Delta on hold (letter, tier 1 reminder)."
        assert "Nothing needs attention." in page.locator("main").inner_text()
        b.shot("settled")
        page.get_by_role("link", name=re.compile("^Waiting to be sent")).click()
        page.wait_for_url(re.compile(r"view=waiting"))
        assert sorted(page.locator("li.line .who").all_inner_texts()) == [
            "Alpha GmbH", "Heavy Industries"]

    rows = {r["action_id"]: r for r in actions(engine)}
    assert (rows[delta]["status"], rows[delta]["resolution"], rows[delta]["decision_reason"]) == (
        "applied", "delivered", "the customer has it")
    assert apply_what_was_approved(database_url, tmp_path, smtp_server) == {"applied": 2}
    assert arrived(smtp_server) == [
        (("ap@alpha.example.com", "rep@sales.example.com"), f"<ar-action-{alpha_rep}@example.com>",
         "Alpha GmbH: your overdue invoices with us"),
        (("ap@heavy.example.com",), f"<ar-action-{heavy}@example.com>",
         "Friendly reminder: 1 overdue invoice"),
    ]  # fmt: skip
