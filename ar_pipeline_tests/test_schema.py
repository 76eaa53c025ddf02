"""The migrations and the single schema definition agree, on both databases."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ar_pipeline.store.schema import metadata


def test_migrated_database_matches_schema_module(engine):
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []
