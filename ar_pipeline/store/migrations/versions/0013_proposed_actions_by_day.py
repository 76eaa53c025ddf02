"""proposed_actions indexed by day

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 18:45:00

Staging reads the day's rows of ``proposed_actions`` (the keys already staged, the letters it
supersedes, the envelope's counts); without an index each of those read the whole table,
which grows every day.
"""

from alembic import op


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('proposed_actions', schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f('ix_proposed_actions_as_of_action_type'), ['as_of', 'action_type'],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table('proposed_actions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_proposed_actions_as_of_action_type'))
