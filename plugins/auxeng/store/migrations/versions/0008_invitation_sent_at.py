"""survey invitations record when they reached the person: auxeng_survey_invitations.sent_at

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

Reminders and closing dates count from when the invitation went out, not from the day it
was queued (the send window or an outage can hold it for days). Invitations already sent
get the first sent time of their invitation messages.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("auxeng_survey_invitations") as batch:
        batch.add_column(sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        """
        UPDATE auxeng_survey_invitations SET sent_at = (
            SELECT min(o.sent_at) FROM auxeng_outbox o
            WHERE o.invitation_id = auxeng_survey_invitations.id
              AND o.kind = 'survey_invite' AND o.status = 'sent'
        )
        """
    )


def downgrade() -> None:
    with op.batch_alter_table("auxeng_survey_invitations") as batch:
        batch.drop_column("sent_at")
