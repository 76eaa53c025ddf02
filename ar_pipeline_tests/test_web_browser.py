"""End to end in a real browser: Debian's Chromium driven by Playwright signs in, edits a draft
and approves it; the sensor and the apply job then deliver exactly that edited text to a real
SMTP server on loopback."""

import datetime as dt
import os
import shutil
import threading
import time

import dagster as dg
import pytest
import uvicorn

from ar_pipeline.definitions import build_definitions
from ar_pipeline.resources import ArDatabase
from ar_pipeline.settings import load_settings
from ar_pipeline_tests.conftest import free_port
from ar_pipeline_tests.ledger_builder import build_dunning_ledger
from ar_pipeline_tests.test_proposals import actions, run_job
from ar_pipeline_tests.web_client import PASSWORDS, make_client

CHROMIUM = os.environ.get("AR_TEST_CHROMIUM", "/usr/bin/chromium")


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


def test_sign_in_edit_approve_and_the_edited_text_is_sent(
    engine, database_url, tmp_path, smtp_server
):
    _require_browser()
    from playwright.sync_api import sync_playwright

    with engine.begin() as connection:
        build_dunning_ledger(connection)
    run_job(database_url, tmp_path)
    (letter,) = [r["action_id"] for r in actions(engine, customer_id="H",
                                                  action_type="collection_action")]  # fmt: skip
    edited_subject = "Payment of invoice N-H1, please"
    edited_body = "Dear Heavy Industries,\n\nplease pay invoice N-H1 (30,000.00 EUR) this week.\n"

    app = make_client(engine).app
    with Server(app) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        page = browser.new_page()
        page.goto(f"{base}/proposals")
        page.get_by_label("User name").fill("alice")
        page.get_by_label("Password").fill(PASSWORDS["alice"])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{base}/proposals")
        page.fill(f"#subject-{letter}", edited_subject)
        page.fill(f"#body-{letter}", edited_body)
        page.locator(f"#action-{letter}").get_by_role("button", name="Save edit").click()
        page.wait_for_selector("text=draft saved")
        page.get_by_role("button", name=f"Approve #{letter}", exact=True).click()
        page.wait_for_selector(f"text={letter}: approved")
        page.screenshot(path=str(tmp_path / "approved.png"), full_page=True)
        browser.close()

    (row,) = [r for r in actions(engine) if r["action_id"] == letter]
    assert (row["status"], row["decided_by"]) == ("approved", "alice")

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
    run_config["ops"]["apply_approved"]["config"]["as_of"] = dt.date(2026, 3, 31).isoformat()
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("apply_approved_actions").execute_in_process(
            run_config=run_config, instance=instance
        )
    assert result.output_for_node("apply_approved") == {"applied": 1}
    (received,) = smtp_server.handler.messages
    assert received["message"]["Subject"] == edited_subject
    assert received["body"] == edited_body
    assert received["rcpt_tos"] == ["ap@heavy.example.com"]
