"""What follows a person's decision: approvals, applying approved actions, the mail that
carries letters out, and the bookkeeping of runs and workflow outcomes."""
