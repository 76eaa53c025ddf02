"""The domain as plain functions and SQL builders: aging, tiering, KPIs and the trend,
proposals and their drafts, reporting, charts and the ledger's sanity review. No Dagster here."""
