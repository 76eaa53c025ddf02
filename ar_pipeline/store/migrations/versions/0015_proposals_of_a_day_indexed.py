"""proposals of a day indexed: staging and its check no longer scan the whole history

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 03:10:00.000000

Staging reads the proposals of its own day several times (the day's idempotency keys, the
newer proposal that supersedes an older one, the envelope's counts, the staging check). Without
an index on the day each read scanned every proposal ever staged: with a month of history at a
million invoices (840,000 proposals, 1.3 GB) the superseding alone took 8 s instead of 0.17 s.
"""

from alembic import op


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        'ix_proposed_actions_as_of_customer_id_action_type', 'proposed_actions',
        ['as_of', 'customer_id', 'action_type'], unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        'ix_proposed_actions_as_of_customer_id_action_type', table_name='proposed_actions'
    )
