"""The performance benchmark (``ar-pipeline bench``): the ledger sizes, the Alga PSA copy and
the apply throughput. Figures, not assertions."""
