"""The business database: the one schema, engines and bulk writes, dialect helpers, and the
Alembic migrations."""
