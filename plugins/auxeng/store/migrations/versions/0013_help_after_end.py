"""where host teams get help after an engagement: auxeng_program.help_after_end, auxeng_teams.help_after_end

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06

The registry's optional ``program.help_after_end`` and ``teams[].help_after_end`` (text,
office_hours, slack_channel, docs), which the end-of-engagement handover message tells the
host team. NULL: none configured (rows loaded before: the next registry load fills them).
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


TABLES = ("auxeng_program", "auxeng_teams")


# Plain ALTER TABLE, not a batch: SQLite (3.35+) adds and drops a column in place, where a batch
# would rebuild auxeng_teams, which the engagements' foreign key refuses to let it drop.
def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("help_after_end", sa.JSON(), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        op.drop_column(table, "help_after_end")
