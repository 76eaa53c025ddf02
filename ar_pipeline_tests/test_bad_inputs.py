"""Every bad input is one line on stderr naming the setting or field, exit status 2, and
nothing written: no rows, and where the refusal comes before the database is opened, no
database (no SQLite file, no tables in PostgreSQL) and no Dagster instance either."""

import datetime as dt
import uuid
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from ar_pipeline.cli import main
from ar_pipeline.rules.views import upgrade_database
from ar_pipeline.store.database import get_engine
from ar_pipeline.store.schema import proposed_actions
from ar_pipeline_tests.conftest import POSTGRES_SERVER_URL, free_port, require_postgres

ALWAYS_REFUSED = ["run", "--as-of", "2026-03-31"]  # the command that would write the most


@pytest.fixture
def cli_env(monkeypatch, tmp_path, database_url):
    monkeypatch.setenv("AR_DATABASE_URL", database_url)
    monkeypatch.setenv("AR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("AR_TREND_START_DATE", "2026-01-01")
    monkeypatch.setenv("AR_APPROVERS", "alice")
    return tmp_path


def refused(capsys, argv: list[str]) -> str:
    """Run the command; it must exit 2 and print nothing but its error (returned)."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err


def assert_untouched(database_url: str, tmp_path: Path) -> None:
    """Nothing was written: no SQLite file / no table in PostgreSQL, no data dir, no instance."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        assert not Path(url.database).exists()
    else:
        assert sa.inspect(get_engine(database_url)).get_table_names() == []
    assert not (tmp_path / "data").exists()
    assert not (tmp_path / "dagster_home").exists()


# --- run config (--config) --------------------------------------------------------------------

TIER = "{tier: 1, name: r, min_days_overdue: 1, cooldown_days: 7, template: reminder"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ops: 5\n", "--config: ops: must be a mapping, got 5"),
        ("ops:\n", "--config: ops: must be a mapping, got nothing"),
        ("ops:\n  tier_assignments: [1, 2]\n",
         "--config: ops.tier_assignments: must be a mapping, got [1, 2]"),
        ("ops:\n  tier_assignments:\n    config: 5\n",
         "--config: ops.tier_assignments.config: must be a mapping, got 5"),
        # wrong nesting: config one level too high or low
        ("tier_assignments:\n  config: {threshold_days: 3}\n",
         "--config: tier_assignments: unknown field; run config has ops, loggers and execution"),
        ("ops:\n  tier_assignments:\n    threshold_days: 3\n",
         "--config: ops.tier_assignments.threshold_days: unknown field"),
        ("ops:\n  tier_assignments:\n    config: {threshold: 3}\n",
         "--config: ops.tier_assignments.config.threshold: unknown field"),
        ("ops:\n  tier_assignments:\n    config: {threshold_days: three}\n",
         "--config: ops.tier_assignments.config.threshold_days: must be a whole number, "
         "got 'three'"),
        ("ops:\n  tier_assignments:\n    config: {threshold_days: -1}\n",
         "--config: ops.tier_assignments.config.threshold_days: must be at least 0, got -1"),
        (f"ops:\n  tier_assignments:\n    config:\n      tier_definitions: [{TIER}}}]\n",
         "--config: ops.tier_assignments.config.tier_definitions[0].min_dunnable: is required"),
        ("ops:\n  tier_assignments:\n    config:\n      tier_definitions: "
         f"[{TIER}, min_dunnable: 10}}]\n",
         "--config: ops.tier_assignments.config.tier_definitions[0].min_dunnable: must be text "
         "in quotes, got 10"),
        ("ops:\n  tier_assignments:\n    config:\n      tier_definitions: "
         f"[{TIER}, min_dunnable: 'NaN'}}]\n",
         "--config: ops.tier_assignments.config.tier_definitions[0].min_dunnable: must be a "
         "finite amount like '10.00' (plain digits), got 'NaN'"),
        ("loggers:\n  console:\n    config: {log_level: 5}\n",
         "--config: loggers.console.config.log_level: must be text in quotes, got 5"),
        ("resources:\n  ar_db:\n    config: {url: 'postgresql://x@127.0.0.1:1/x'}\n",
         "--config: resources: the database, mail and sources come from the AR_* settings, not "
         "from run config"),
        ("- ops\n", "--config: must be a mapping of run config like 'ops: ...', got ['ops']"),
        ("", "--config: must be a mapping of run config like 'ops: ...', got an empty file"),
    ],
    ids=["ops-5", "ops-empty", "op-a-list", "config-5", "config-above-ops", "config-left-out",
         "unknown-tier-field", "threshold-text", "threshold-negative", "tier-missing-field",
         "amount-not-text", "amount-nan", "logger-level", "resources", "a-list", "empty-file"],
)  # fmt: skip
def test_malformed_run_config_names_the_field(cli_env, database_url, capsys, text, message):
    config = cli_env / "run.yaml"
    config.write_text(text)
    err = refused(capsys, [*ALWAYS_REFUSED, "--config", str(config)])
    assert err == f"ar-pipeline: error: {message}\n"
    assert_untouched(database_url, cli_env)


def test_run_config_naming_an_unknown_op(cli_env, database_url, capsys):
    config = cli_env / "run.yaml"
    config.write_text("ops:\n  tier_asignments:\n    config: {threshold_days: 3}\n")
    err = refused(capsys, [*ALWAYS_REFUSED, "--config", str(config)])
    assert err.startswith("ar-pipeline: error: --config: ops.tier_asignments: unknown op; known: ")
    assert "tier_assignments" in err and err.count("\n") == 1
    assert_untouched(database_url, cli_env)


def test_run_config_that_is_not_yaml(cli_env, database_url, capsys):
    config = cli_env / "run.yaml"
    config.write_text("ops: [unclosed\n")
    err = refused(capsys, [*ALWAYS_REFUSED, "--config", str(config)])
    assert err == (
        f"ar-pipeline: error: --config: {config} is not valid YAML: expected ',' or ']', but "
        "got '<stream end>' (line 2, column 1)\n"
    )
    assert_untouched(database_url, cli_env)


def test_run_config_file_that_is_missing(cli_env, database_url, capsys):
    missing = cli_env / "no such file.yaml"
    err = refused(capsys, [*ALWAYS_REFUSED, "--config", str(missing)])
    assert (
        err == f"ar-pipeline: error: --config: cannot read {missing}: No such file or directory\n"
    )
    assert_untouched(database_url, cli_env)


# --- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("AR_SMTP_PORT", "99999", "AR_SMTP_PORT: must be a port number from 1 to 65535, got 99999"),
        ("AR_WEB_PORT", "0", "AR_WEB_PORT: must be a port number from 1 to 65535, got 0"),
        ("AR_HOLD_MIN_OPEN", "NaN",
         "AR_HOLD_MIN_OPEN: must be a finite amount like '25000.00' (plain digits), got 'NaN'"),
        ("AR_HOLD_MIN_OPEN", "Infinity", "AR_HOLD_MIN_OPEN: must be a finite amount like "
         "'25000.00' (plain digits), got 'Infinity'"),
        ("AR_FRESHNESS_MAX_AGE_HOURS", "NaN",
         "AR_FRESHNESS_MAX_AGE_HOURS: must be a finite number of hours above 0, got 'NaN'"),
        ("AR_TIMEZONE", "Mars/Olympus_Mons",
         "AR_TIMEZONE: must be an IANA time zone like Europe/Berlin, got 'Mars/Olympus_Mons'"),
        ("AR_TIMEZONE", "Europe",
         "AR_TIMEZONE: must be an IANA time zone like Europe/Berlin, got 'Europe'"),
        ("AR_APPROVERS", "alice;bob", "AR_APPROVERS: must be user names separated by commas, "
         "like alice,bob (no spaces, ';', ':' or quotes in a name), got 'alice;bob'"),
    ],
)  # fmt: skip
def test_malformed_setting_names_the_variable(
    cli_env, database_url, monkeypatch, capsys, name, value, message
):
    monkeypatch.setenv(name, value)
    assert refused(capsys, ALWAYS_REFUSED) == f"ar-pipeline: error: {message}\n"
    assert_untouched(database_url, cli_env)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("foo://", "AR_DATABASE_URL: must be a SQLite or PostgreSQL URL, got 'foo://'"),
        ("not a url", "AR_DATABASE_URL: must be a database URL like "
         "postgresql+psycopg://user@host/dbname, got 'not a url'"),
        ("postgresql+psycopg://ar:secret@db:99999/ar",
         "AR_DATABASE_URL: the port must be a number from 1 to 65535, got 99999"),
    ],
)  # fmt: skip
def test_malformed_database_url(monkeypatch, tmp_path, capsys, value, message):
    monkeypatch.setenv("AR_DATABASE_URL", value)
    monkeypatch.setenv("AR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    assert refused(capsys, ["db", "upgrade"]) == f"ar-pipeline: error: {message}\n"
    assert list(tmp_path.iterdir()) == []


def test_postgres_database_that_does_not_exist(monkeypatch, tmp_path, capsys):
    require_postgres()
    name = f"ar_missing_{uuid.uuid4().hex}"
    url = make_url(POSTGRES_SERVER_URL).set(database=name)
    monkeypatch.setenv("AR_DATABASE_URL", url.render_as_string(hide_password=False))
    monkeypatch.setenv("AR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    for argv in (["db", "upgrade"], ALWAYS_REFUSED, ["approvals", "list"]):
        assert refused(capsys, argv) == (
            f"ar-pipeline: error: AR_DATABASE_URL: cannot connect to "
            f'{url.render_as_string(hide_password=True)}: database "{name}" does not exist\n'
        )
    server = sa.create_engine(POSTGRES_SERVER_URL)
    with server.connect() as connection:
        exists = connection.execute(
            sa.text("SELECT count(*) FROM pg_database WHERE datname = :name"), {"name": name}
        ).scalar_one()
    server.dispose()
    assert exists == 0  # and it was not created either
    assert list(tmp_path.iterdir()) == []


def test_postgres_server_that_refuses(monkeypatch, tmp_path, capsys):
    port = free_port()  # bound and released: nothing listens there
    monkeypatch.setenv("AR_DATABASE_URL", f"postgresql+psycopg://ar@127.0.0.1:{port}/ar")
    monkeypatch.setenv("AR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    assert refused(capsys, ["db", "upgrade"]) == (
        f"ar-pipeline: error: AR_DATABASE_URL: cannot connect to "
        f"postgresql+psycopg://ar@127.0.0.1:{port}/ar: Connection refused\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_folders_that_cannot_be_created(monkeypatch, tmp_path, capsys):
    (tmp_path / "a file").write_text("not a folder")
    monkeypatch.delenv("AR_DATABASE_URL", raising=False)
    monkeypatch.setenv("AR_DATA_DIR", str(tmp_path / "a file" / "data"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    assert refused(capsys, ["db", "upgrade"]) == (
        f"ar-pipeline: error: AR_DATA_DIR: cannot create {tmp_path / 'a file' / 'data'}: "
        "Not a directory\n"
    )
    monkeypatch.setenv("AR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "a file" / "home"))
    assert refused(capsys, ["db", "upgrade"]) == (
        f"ar-pipeline: error: DAGSTER_HOME: cannot create {tmp_path / 'a file' / 'home'}: "
        "Not a directory\n"
    )


# --- arguments --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--as-of", "2026-02-30"], "argument --as-of: expected a date like 2026-03-31, "
         "got '2026-02-30' (see `ar-pipeline run -h`)"),
        (["run", "--as-of", "0026-03-31"], "argument --as-of: must be from 1900-01-01 to "
         "2999-12-31, got 0026-03-31 (see `ar-pipeline run -h`)"),
        (["approvals", "list", "--limit", "-1"], "argument --limit: must be at least 1, got -1 "
         "(see `ar-pipeline approvals list -h`)"),
        (["approvals", "list", "--status", "bogus"], "argument --status: unknown status "
         "'bogus'; one of proposed, approved, rejected, superseded, applying, applied, failed, "
         "unconfirmed "
         "(see `ar-pipeline approvals list -h`)"),
        (["approvals", "approve", "1", "--by"], "argument --by: expected one argument "
         "(see `ar-pipeline approvals approve -h`)"),
        (["apply", "0"], "argument ID: must be at least 1, got 0 (see `ar-pipeline apply -h`)"),
        (["web", "--port", "70000"], "argument --port: must be a port number from 1 to 65535, "
         "got 70000 (see `ar-pipeline web -h`)"),
        (["seed", "--seed", "-1"], "argument --seed: must be at least 0, got -1 "
         "(see `ar-pipeline seed -h`)"),
    ],
)  # fmt: skip
def test_malformed_argument_is_one_line(cli_env, database_url, capsys, argv, message):
    assert refused(capsys, argv) == f"ar-pipeline: error: {message}\n"
    assert_untouched(database_url, cli_env)


# --- decisions on IDs that do not exist -------------------------------------------------------


@pytest.fixture
def two_proposals(cli_env, database_url):
    """A migrated database holding two proposed letters; returns their IDs."""
    engine = get_engine(database_url)
    upgrade_database(engine)
    now = dt.datetime(2026, 3, 31, 6, tzinfo=dt.UTC)
    with engine.begin() as connection:
        for customer in ("C1", "C2"):
            connection.execute(
                proposed_actions.insert().values(
                    idempotency_key=f"collection_action:2026-03-31:{customer}:tier1",
                    as_of=dt.date(2026, 3, 31),
                    action_type="collection_action",
                    customer_id=customer,
                    tier=1,
                    proposed_at=now,
                )  # fmt: skip
            )
        return sorted(connection.execute(sa.select(proposed_actions.c.action_id)).scalars())


def proposals(database_url):
    with get_engine(database_url).connect() as connection:
        return connection.execute(
            sa.select(proposed_actions.c.action_id, proposed_actions.c.status,
                      proposed_actions.c.decided_by).order_by(proposed_actions.c.action_id)
        ).all()  # fmt: skip


def test_approving_an_unknown_id(two_proposals, database_url, capsys):
    err = refused(capsys, ["approvals", "approve", "999999", "--by", "alice"])
    assert err == "ar-pipeline: error: ID: no proposal 999999; nothing was changed\n"
    assert proposals(database_url) == [(i, "proposed", None) for i in two_proposals]


def test_approving_known_and_unknown_ids_changes_none(two_proposals, database_url, capsys):
    first, second = two_proposals
    argv = ["approvals", "approve", str(first), "999999", str(second), "999998", "--by", "alice"]
    err = refused(capsys, argv)
    assert err == "ar-pipeline: error: ID: no proposals 999998, 999999; nothing was changed\n"
    assert proposals(database_url) == [(first, "proposed", None), (second, "proposed", None)]


def test_rejecting_an_unknown_id(two_proposals, database_url, capsys):
    first, _ = two_proposals
    argv = ["approvals", "reject", str(first), "999999", "--by", "alice", "--reason", "paid"]
    err = refused(capsys, argv)
    assert err == "ar-pipeline: error: ID: no proposal 999999; nothing was changed\n"
    assert proposals(database_url) == [(i, "proposed", None) for i in two_proposals]


def test_applying_an_unknown_id(two_proposals, database_url, cli_env, capsys):
    err = refused(capsys, ["apply", "999999"])
    assert err == "ar-pipeline: error: ID: no proposal 999999; nothing was changed\n"
    assert proposals(database_url) == [(i, "proposed", None) for i in two_proposals]
    with dg.DagsterInstance.from_config(str(cli_env / "dagster_home")) as instance:
        assert instance.get_run_records() == []  # no apply run was started
