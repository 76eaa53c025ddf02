"""run bookkeeping tables

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('reflexion_log',
    sa.Column('reflexion_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.Text(), nullable=False),
    sa.Column('tags', sa.Text(), nullable=False),
    sa.Column('narrative', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('reflexion_id', name=op.f('pk_reflexion_log')),
    sa.UniqueConstraint('run_id', name=op.f('uq_reflexion_log_run_id'))
    )
    op.create_table('workflow_events',
    sa.Column('event_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('event_type', sa.Text(), nullable=False),
    sa.Column('run_id', sa.Text(), nullable=False),
    sa.Column('payload_json', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("event_type IN ('workflow.completed', 'workflow.failed')", name=op.f('ck_workflow_events_event_type')),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_workflow_events')),
    sa.UniqueConstraint('run_id', 'event_type', name=op.f('uq_workflow_events_run_id_event_type'))
    )
    op.create_table('workflow_run_log',
    sa.Column('run_id', sa.Text(), nullable=False),
    sa.Column('workflow_type', sa.Text(), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=True),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('summary_json', sa.JSON(), nullable=True),
    sa.CheckConstraint("status IN ('running', 'succeeded', 'failed')", name=op.f('ck_workflow_run_log_status')),
    sa.PrimaryKeyConstraint('run_id', name=op.f('pk_workflow_run_log'))
    )
    op.create_table('workflow_verify_results',
    sa.Column('verify_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.Text(), nullable=False),
    sa.Column('check_name', sa.Text(), nullable=False),
    sa.Column('expected', sa.JSON(), nullable=True),
    sa.Column('observed', sa.JSON(), nullable=True),
    sa.Column('passed', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('verify_id', name=op.f('pk_workflow_verify_results'))
    )
    with op.batch_alter_table('workflow_verify_results', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_workflow_verify_results_run_id'), ['run_id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('workflow_verify_results', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_workflow_verify_results_run_id'))

    op.drop_table('workflow_verify_results')
    op.drop_table('workflow_run_log')
    op.drop_table('workflow_events')
    op.drop_table('reflexion_log')

