"""the outbox keeps each email's MIME bytes, rendered when it is queued: auxeng_outbox.rendered

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06

Delivery sends these bytes, adding only the From, Date and Message-ID headers (see
``auxeng.messaging.mime``), instead of building the message at send time. NULL (rows queued
before, Slack rows, emails that are built when sent): the message is built at send time.
The new statuses ``sending`` and ``in_doubt`` fit the existing ``status`` column.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("auxeng_outbox") as batch:
        batch.add_column(sa.Column("rendered", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("auxeng_outbox") as batch:
        batch.drop_column("rendered")
