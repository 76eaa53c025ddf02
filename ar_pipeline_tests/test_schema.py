"""The migrations and the single schema definition agree, on both databases."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ar_pipeline.store.schema import metadata


def test_migrated_database_matches_schema_module(engine):
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_a_migration_that_fails_halfway_on_sqlite_changes_nothing(tmp_path):
    """A database at revision 0008 meets an upgrade that fails in revision 0011 (a table of
    that name is in the way). Nothing of 0009 and 0010 stays behind: the revision is still 0008
    and their tables are not there, so once the obstacle is gone the upgrade simply runs."""
    import pytest
    import sqlalchemy as sa
    from alembic import command

    from ar_pipeline.rules.views import upgrade_database
    from ar_pipeline.store.database import alembic_config, get_engine

    engine = get_engine(f"sqlite:///{tmp_path / 'half.sqlite3'}")
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0008")
        connection.exec_driver_sql("CREATE TABLE collection_worklist (in_the_way INTEGER)")

    def state():
        with engine.connect() as connection:
            revision = connection.exec_driver_sql(
                "SELECT version_num FROM alembic_version").scalar_one()  # fmt: skip
            return revision, "invoice_holds" in sa.inspect(connection).get_table_names()

    with pytest.raises(sa.exc.OperationalError, match="collection_worklist"):
        upgrade_database(engine)
    assert state() == ("0008", False)
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE collection_worklist")
    upgrade_database(engine)
    assert state()[1] is True
