"""approved_actions_sensor with build_sensor_context: batches, run keys, cursor, skip reason;
and the run-status sensors' bookkeeping."""

import datetime as dt

import dagster as dg
import pytest
import sqlalchemy as sa

from ar_pipeline.definitions import build_definitions
from ar_pipeline.defs import sensors
from ar_pipeline.defs.resources import ArDatabase
from ar_pipeline.defs.runs import run_daily_job
from ar_pipeline.settings import load_settings
from ar_pipeline.store.schema import (
    customers,
    proposed_actions,
    reflexion_log,
    workflow_events,
    workflow_run_log,
)
from ar_pipeline_tests.ledger_builder import build_dunning_ledger

# Decisions a minute before the sensor's clock, which the tests set (the sensor treats
# approvals older than ten minutes behind its cursor as stranded).
T0 = dt.datetime(2026, 3, 31, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def sensor_clock(monkeypatch):
    """The sensor's now: a minute after T0, whatever the wall clock says."""
    monkeypatch.setattr(sensors, "utc_now", lambda: T0 + dt.timedelta(minutes=1))


def _settings(database_url, tmp_path):
    return load_settings(
        {"AR_DATABASE_URL": database_url, "AR_DATA_DIR": str(tmp_path), "AR_APPROVERS": "alice"}
    )


def _tick(defs, settings, cursor):
    sensor = defs.resolve_sensor_def("approved_actions_sensor")
    with dg.build_sensor_context(
        cursor=cursor, resources={"ar_db": ArDatabase.from_settings(settings)}
    ) as context:
        return sensor.evaluate_tick(context)


def test_batches_cursor_and_skip(engine, database_url, tmp_path):
    with engine.begin() as connection:
        connection.execute(customers.insert().values(customer_id="C", customer_name="C"))
        connection.execute(
            proposed_actions.insert(),
            [
                {"idempotency_key": f"k{i}", "as_of": dt.date(2026, 3, 31),
                 "action_type": "collection_action", "customer_id": "C", "tier": 1,
                 "status": "approved", "proposed_at": T0, "decided_by": "alice",
                 "decided_at": T0 + dt.timedelta(seconds=i)}
                for i in range(600)
            ],
        )  # fmt: skip
        connection.execute(
            proposed_actions.insert().values(
                idempotency_key="envelope", as_of=dt.date(2026, 3, 31),
                action_type="workflow_envelope", status="approved", proposed_at=T0,
                decided_by="alice", decided_at=T0,
            )
        )  # fmt: skip
    settings = _settings(database_url, tmp_path)
    defs = build_definitions(settings)
    first = _tick(defs, settings, None)
    sizes = [
        len(r.run_config["ops"]["apply_approved"]["config"]["action_ids"])
        for r in first.run_requests
    ]
    assert sizes == [250, 250, 100]  # 600 letters, the envelope has nothing to apply
    keys = [r.run_key for r in first.run_requests]
    assert len(set(keys)) == 3
    # the same tick evaluated again asks for the same runs: the instance de-duplicates them
    assert [r.run_key for r in _tick(defs, settings, None).run_requests] == keys
    done = _tick(defs, settings, first.cursor)
    assert done.run_requests == [] and done.skip_message

    # a failed action approved again has a new decision time and is picked up alone
    with engine.begin() as connection:
        connection.execute(
            proposed_actions.update()
            .where(proposed_actions.c.idempotency_key == "k7")
            .values(decided_at=T0 + dt.timedelta(seconds=600))  # after the cursor (599 s)
        )
    (retry,) = _tick(defs, settings, first.cursor).run_requests
    ids = retry.run_config["ops"]["apply_approved"]["config"]["action_ids"]
    assert len(ids) == 1 and retry.run_key not in keys


def test_stranded_approvals_are_requested_again(engine, database_url, tmp_path):
    """Approved an hour ago, behind the cursor, never claimed: asked for again; applied rows
    and fresh approvals are not part of that request."""
    long_ago = T0 - dt.timedelta(hours=1)
    with engine.begin() as connection:
        connection.execute(customers.insert().values(customer_id="C", customer_name="C"))
        connection.execute(
            proposed_actions.insert(),
            [
                {"idempotency_key": key, "as_of": dt.date(2026, 3, 31),
                 "action_type": "collection_action", "customer_id": "C", "tier": 1,
                 "status": status, "proposed_at": long_ago, "decided_by": "alice",
                 "decided_at": long_ago + dt.timedelta(seconds=n)}
                for n, (key, status) in enumerate([("s1", "approved"), ("s2", "applied")])
            ],
        )  # fmt: skip
    settings = _settings(database_url, tmp_path)
    defs = build_definitions(settings)
    first = _tick(defs, settings, None)  # requests s1 as new and moves the cursor past it
    (again,) = _tick(defs, settings, first.cursor).run_requests
    assert again.run_key.startswith("apply-again-")
    ids = again.run_config["ops"]["apply_approved"]["config"]["action_ids"]
    with engine.connect() as connection:
        s1 = connection.execute(
            sa.select(proposed_actions.c.action_id).where(
                proposed_actions.c.idempotency_key == "s1"
            )
        ).scalar_one()
    assert ids == [s1]


def test_run_status_sensor_records_the_daily_run_once(engine, database_url, tmp_path):
    with engine.begin() as connection:
        build_dunning_ledger(connection)
    settings = _settings(database_url, tmp_path)
    defs = build_definitions(settings)
    resources = {"ar_db": ArDatabase.from_settings(settings)}
    with dg.DagsterInstance.ephemeral() as instance:
        result = run_daily_job(defs, dt.date(2026, 3, 31), instance)
        run = instance.get_run_by_id(result.run_id)
        success_event = next(
            e for e in result.all_events if e.event_type_value == "PIPELINE_SUCCESS"
        )
        sensor = defs.resolve_sensor_def("ar_aging_daily_succeeded")
        for _ in range(2):  # a second evaluation must not write twice
            context = dg.build_run_status_sensor_context(
                sensor_name=sensor.name, dagster_instance=instance, dagster_run=run,
                dagster_event=success_event, resources=resources,
            )  # fmt: skip
            sensor(context)
    with engine.connect() as connection:
        (log,) = connection.execute(sa.select(workflow_run_log)).mappings().all()
        (story,) = connection.execute(sa.select(reflexion_log)).mappings().all()
        (event,) = connection.execute(sa.select(workflow_events)).mappings().all()
    assert (log["run_id"], log["status"], log["workflow_type"]) == (
        result.run_id, "succeeded", "ar_aging_action_plan",
    )  # fmt: skip
    assert str(log["as_of"]) == "2026-03-31"
    assert log["summary_json"]["staged"] == {
        "collection_action": {"tier_1": 2, "tier_3": 1},
        "customer_program": {"all": 1},
        "email_to_customer": {"tier_3": 1},
    }
    assert story["tags"] == "ar_aging_action_plan"
    assert story["narrative"].startswith("Daily AR action plan as of 2026-03-31")
    assert "Service holds proposed: 1 (Heavy Industries)." in story["narrative"]
    assert "1 escalations beyond an applied step: Alpha GmbH." in story["narrative"]
    assert "5 proposals wait for approval" in story["narrative"]
    assert event["event_type"] == "workflow.completed"


def test_failed_daily_run_is_recorded_as_failed(engine, database_url, tmp_path):
    settings = _settings(database_url, tmp_path)
    defs = build_definitions(settings)
    bad = {"ops": {"tier_assignments": {"config": {"threshold_days": -1}}}}
    with dg.DagsterInstance.ephemeral() as instance:
        result = run_daily_job(defs, dt.date(2026, 3, 31), instance, bad)
        assert not result.success
        run = instance.get_run_by_id(result.run_id)
        failure = next(e for e in result.all_events if e.event_type_value == "PIPELINE_FAILURE")
        sensor = defs.resolve_sensor_def("ar_aging_daily_failed")
        context = dg.build_run_status_sensor_context(
            sensor_name=sensor.name, dagster_instance=instance, dagster_run=run,
            dagster_event=failure, resources={"ar_db": ArDatabase.from_settings(settings)},
        ).for_run_failure()  # fmt: skip
        sensor(context)
    with engine.connect() as connection:
        (event,) = connection.execute(sa.select(workflow_events)).mappings().all()
        (log,) = connection.execute(sa.select(workflow_run_log)).mappings().all()
    assert event["event_type"] == "workflow.failed"
    assert log["status"] == "failed"


def test_other_jobs_are_ignored(engine, database_url, tmp_path):
    settings = _settings(database_url, tmp_path)
    defs = build_definitions(settings)
    apply_job = defs.resolve_job_def("apply_approved_actions")
    with dg.DagsterInstance.ephemeral() as instance:
        result = apply_job.execute_in_process(
            run_config={"ops": {"apply_approved": {"config": {"action_ids": [1]}}}},
            instance=instance,
        )
        run = instance.get_run_by_id(result.run_id)
        event = next(e for e in result.all_events if e.event_type_value == "PIPELINE_SUCCESS")
        sensor = defs.resolve_sensor_def("ar_aging_daily_succeeded")
        context = dg.build_run_status_sensor_context(
            sensor_name=sensor.name, dagster_instance=instance, dagster_run=run,
            dagster_event=event, resources={"ar_db": ArDatabase.from_settings(settings)},
        )  # fmt: skip
        assert isinstance(sensor(context), dg.SkipReason)
    with engine.connect() as connection:
        assert (
            connection.execute(
                sa.select(sa.func.count()).select_from(workflow_run_log)
            ).scalar_one()
            == 0
        )


def test_untagged_run_is_as_of_the_day_it_started_in_the_business_timezone():
    from zoneinfo import ZoneInfo

    from ar_pipeline.defs.resources import untagged_run_date

    started = dt.datetime(2026, 3, 31, 22, 30, tzinfo=dt.UTC).timestamp()
    assert untagged_run_date(started, ZoneInfo("UTC")) == dt.date(2026, 3, 31)
    # 00:30 on 1 April in Berlin (summer time, UTC+2)
    assert untagged_run_date(started, ZoneInfo("Europe/Berlin")) == dt.date(2026, 4, 1)


def test_daily_run_from_the_ui_requests_its_trend_and_worklist_partitions_once(
    engine, database_url, tmp_path
):
    """A daily run launched from the UI carries no as-of tag: its steps age the day it started,
    and the sensor requests that day's trend partition (not "as-of date None"), under a run key
    made from the run's id, the same however often the sensor sees the run."""
    from ar_pipeline.defs.sensors import trend_run_key
    from ar_pipeline.store.schema import ar_aging

    with engine.begin() as connection:
        build_dunning_ledger(connection)
    settings = load_settings(
        {"AR_DATABASE_URL": database_url, "AR_DATA_DIR": str(tmp_path),
         "AR_TREND_START_DATE": "2026-01-01"}
    )  # fmt: skip
    defs = build_definitions(settings)
    resources = {"ar_db": ArDatabase.from_settings(settings)}
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("ar_aging_daily").execute_in_process(instance=instance)
        assert result.success and "ar_pipeline/as_of" not in result.dagster_run.tags
        run = instance.get_run_by_id(result.run_id)
        success = next(e for e in result.all_events if e.event_type_value == "PIPELINE_SUCCESS")
        sensor = defs.resolve_sensor_def("ar_aging_daily_succeeded")
        requests = []
        for _ in range(2):
            context = dg.build_run_status_sensor_context(
                sensor_name=sensor.name, dagster_instance=instance, dagster_run=run,
                dagster_event=success, resources=resources,
            )  # fmt: skip
            requests.append(sensor(context))
    with engine.connect() as connection:
        (aged_day,) = connection.execute(sa.select(ar_aging.c.as_of).distinct()).scalars()
    # each time: the trend of the day before (over now: made final), the trend and the
    # worklist of that day, under the same run keys
    day_before = (aged_day - dt.timedelta(days=1)).isoformat()
    assert [[(r.job_name, r.partition_key, r.run_key) for r in rs] for rs in requests] == [
        [
            ("ar_aging_summary_job", day_before, f"summary-previous-day:{result.run_id}"),
            ("ar_aging_summary_job", aged_day.isoformat(), trend_run_key(result.run_id)),
            ("collection_worklist_job", aged_day.isoformat(), f"worklist:{result.run_id}"),
        ]
    ] * 2
