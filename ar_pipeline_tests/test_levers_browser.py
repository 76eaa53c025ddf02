"""In a real browser (Debian's Chromium through Playwright, as test_web_browser.py): a collector
follows a customer's name from the proposals to the customer screen, records the promise heard
on the phone, and the next morning's run holds the letter that customer would have got.

The day is build_dunning_ledger's 2026-03-31 (the page's clock: 09:00 UTC, AR_TIMEZONE UTC).
Without the promise, 04-01 proposes Alpha GmbH's tier 3 (A1 800.00, 71 days; tier 2 applied
03-01, cooldown over); with 800.00 promised by 04-10 for all overdue, A1 is held: no letter for
Alpha, while Heavy Industries, not covered, still gets its letter."""

import datetime as dt

import sqlalchemy as sa

from ar_pipeline.store.schema import tier_assignments
from ar_pipeline_tests.test_proposals import actions, run_job
from ar_pipeline_tests.test_web_browser import AS_OF, Browser, _require_browser, stage_the_day

NEXT_MORNING = AS_OF + dt.timedelta(days=1)


def test_a_promise_recorded_on_the_page_holds_the_next_morning_letter(
    engine, database_url, tmp_path
):
    _require_browser()
    stage_the_day(engine, database_url, tmp_path)
    with Browser(engine, "promise") as b:
        page = b.page
        page.get_by_role("link", name="Alpha GmbH").first.click()
        page.wait_for_url(f"{b.base}/customers/A")
        assert page.get_by_role("heading", name="Alpha GmbH").is_visible()
        b.shot("customer")
        form = page.get_by_role("form", name="Record a promise")
        form.get_by_label("Amount").fill("800.00")
        form.get_by_label("Currency").select_option("EUR")
        form.get_by_label("Promised date").fill("2026-04-10")
        form.get_by_label("all overdue").check()
        form.get_by_label("Note").fill("pays on the 10th, said Ms Alpha")
        form.get_by_role("button", name="Record promise").click()
        page.wait_for_url(f"{b.base}/customers/A")
        assert "Promise 1 recorded" in b.flash()
        row = " ".join(page.locator("#promise-1").inner_text().split())
        assert "800.00 EUR 2026-04-10 A1 (all overdue) open" in row
        assert "2026-03-31 by alice: pays on the 10th, said Ms Alpha" in row
        assert "held promise to pay until 2026-04-10" in " ".join(
            page.locator("#invoice-A1").inner_text().split()
        )
        b.shot("promise-recorded")

    run_job(database_url, tmp_path, as_of=NEXT_MORNING)
    with engine.connect() as connection:
        decided = dict(
            connection.execute(
                sa.select(tier_assignments.c.customer_id, tier_assignments.c.proposed_tier)
                .where(tier_assignments.c.as_of == NEXT_MORNING)
            ).all()
        )
    assert "A" not in decided  # held by the promise: nothing dunnable, no step
    assert decided["H"] == 1  # not covered: its step as before
    new_letters = actions(engine, as_of=NEXT_MORNING, action_type="collection_action")
    assert [r["customer_id"] for r in new_letters] == []  # H's letter of 03-31 still stands
    pending = {r["customer_id"]: r["as_of"]
               for r in actions(engine, action_type="collection_action", status="proposed")}
    assert pending["H"] == AS_OF  # fmt: skip
    # Alpha's letter of 03-31, still undecided, is taken out of the approver's queue
    (old,) = [r for r in actions(engine, as_of=AS_OF, action_type="collection_action")
              if r["customer_id"] == "A"]  # fmt: skip
    assert (old["status"], old["superseded_reason"]) == (
        "superseded", "nothing dunnable as of 2026-04-01 (paid, credited or held)"
    )

    with Browser(engine, "promise-next-morning") as b:
        b.page.goto(f"{b.base}/customers/A")
        row = " ".join(b.page.locator("#promise-1").inner_text().split())
        assert "open" in row and "800.00 EUR" in row
        b.shot("next-morning")
