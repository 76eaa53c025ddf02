"""a session remembers the credential it was opened with: a password change ends it

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 23:00:00.000000

``web_sessions.credential`` holds an HMAC (under the page's secret) of the account's password
hash at sign-in. The page ends a session whose account's hash has changed since, so giving an
account a new password ends every session opened with the old one. Sessions open at the
upgrade have none and end at their next request: everyone signs in once more.
"""

from alembic import op
import sqlalchemy as sa


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('web_sessions', sa.Column('credential', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('web_sessions') as batch:
        batch.drop_column('credential')
