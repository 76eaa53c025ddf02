"""Dagster wiring only: the assets, checks, jobs and schedules, sensors and resources that
``ar_pipeline.definitions`` assembles into ``defs``, the Alga PSA source's assets, and running the
daily job from the command line. The rules they call live in ``ar_pipeline.rules``."""
