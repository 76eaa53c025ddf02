"""delivery outcomes, in-flight steps and published settings

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 12:11:25.550267
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

OLD_STATUSES = ("proposed", "approved", "rejected", "superseded", "applying", "applied", "failed")
NEW_STATUSES = (*OLD_STATUSES, "unconfirmed")
OLD_SKIP_REASONS = ("below_minimum", "paused", "cooldown", "already_at_tier")
NEW_SKIP_REASONS = (*OLD_SKIP_REASONS, "in_flight")


def _in(column: str, values: tuple[str, ...]) -> str:
    return "{} IN ({})".format(column, ", ".join(f"'{v}'" for v in values))


def upgrade() -> None:
    op.create_table('published_settings',
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('value_json', sa.JSON(), nullable=False),
    sa.Column('published_by', sa.Text(), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_published_settings'))
    )
    with op.batch_alter_table('proposed_actions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('delivery_detail', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('resolved_by', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('resolution', sa.Text(), nullable=True))
        # by hand: autogenerate does not see CHECK constraints
        batch_op.create_check_constraint(
            'resolution', "resolution IS NULL OR resolution IN ('delivered', 'send_again')"
        )
        batch_op.drop_constraint(op.f('ck_proposed_actions_status'), type_='check')
        batch_op.create_check_constraint('status', _in("status", NEW_STATUSES))
    with op.batch_alter_table('tier_assignments', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_tier_assignments_skip_reason'), type_='check')
        batch_op.create_check_constraint(
            'skip_reason', "skip_reason IS NULL OR " + _in("skip_reason", NEW_SKIP_REASONS)
        )


def downgrade() -> None:
    op.execute("UPDATE proposed_actions SET status = 'applying' WHERE status = 'unconfirmed'")
    op.execute("DELETE FROM tier_assignments WHERE skip_reason = 'in_flight'")
    with op.batch_alter_table('tier_assignments', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_tier_assignments_skip_reason'), type_='check')
        batch_op.create_check_constraint(
            'skip_reason', "skip_reason IS NULL OR " + _in("skip_reason", OLD_SKIP_REASONS)
        )
    with op.batch_alter_table('proposed_actions', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_proposed_actions_status'), type_='check')
        batch_op.create_check_constraint('status', _in("status", OLD_STATUSES))
        batch_op.drop_constraint(op.f('ck_proposed_actions_resolution'), type_='check')
        batch_op.drop_column('resolution')
        batch_op.drop_column('resolved_at')
        batch_op.drop_column('resolved_by')
        batch_op.drop_column('delivery_detail')
        batch_op.drop_column('claimed_at')

    op.drop_table('published_settings')
