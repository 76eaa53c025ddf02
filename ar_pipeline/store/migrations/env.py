"""Alembic environment: runs against the connection handed over by
``ar_pipeline.store.database.migrate``."""

from alembic import context

from ar_pipeline.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
