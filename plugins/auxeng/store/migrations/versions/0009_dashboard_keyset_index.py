"""the dashboard pages its ended engagements by keyset: ix_auxeng_engagements_end_key

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

The dashboard lists ended engagements latest end first, then by key, and finds a page by the
sort key of the row before it (not OFFSET): an index in that order (end_date DESC, key).
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_auxeng_engagements_end_key", "auxeng_engagements", [sa.text("end_date DESC"), "key"])


def downgrade() -> None:
    op.drop_index("ix_auxeng_engagements_end_key", table_name="auxeng_engagements")
