"""Sources: systems whose billing data is mapped onto the ledger contract (docs/design.md, The
ledger contract).

The default source is the project's own ledger tables, which need no adapter. ``alga_psa`` reads
an Alga PSA billing database read-only and keeps the pipeline's ledger tables as its mirror
(``alga_psa``), and judges Alga's recurring service periods (``service_periods``).
"""
