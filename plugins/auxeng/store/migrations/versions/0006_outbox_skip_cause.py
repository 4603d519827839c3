"""outbox skip cause: why a row was skipped, as a code

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

Until now the cause lived only in the free-text ``reason`` (and delivery decided which
invitations became void by matching that text). The backfill reads the texts the pack wrote.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

CHECK = "ck_auxeng_outbox_skip_cause"
CAUSES = (
    "opted_out",
    "answered",
    "engagement_removed",
    "engagement_cancelled",
    "engagement_reopened",
    "engagement_unknown",
    "withdrawn",
)

BACKFILL = (
    ("opted_out", "reason LIKE 'opted out on %'"),
    ("answered", "reason = 'answered before this reminder went out'"),
    ("engagement_removed", "reason LIKE 'engagement % was removed before this went out'"),
    ("engagement_cancelled", "reason LIKE 'engagement % was cancelled before this went out'"),
    ("engagement_reopened", "reason LIKE 'engagement % was reopened before this went out'"),
    ("engagement_unknown", "reason LIKE 'engagement % is not in the store'"),
)


def upgrade() -> None:
    allowed = ", ".join(f"'{cause}'" for cause in CAUSES)
    with op.batch_alter_table("auxeng_outbox") as batch:
        batch.add_column(sa.Column("skip_cause", sa.String(length=24), nullable=True))
        batch.create_check_constraint(CHECK, f"skip_cause IN ({allowed})")
    for cause, condition in BACKFILL:
        op.execute(
            sa.text(
                f"UPDATE auxeng_outbox SET skip_cause = :cause "  # noqa: S608 (constant conditions)
                f"WHERE status = 'skipped' AND skip_cause IS NULL AND {condition}"
            ).bindparams(cause=cause)
        )
    op.execute(
        "UPDATE auxeng_outbox SET skip_cause = 'withdrawn' WHERE status = 'skipped' AND skip_cause IS NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("auxeng_outbox") as batch:
        batch.drop_constraint(CHECK, type_="check")
        batch.drop_column("skip_cause")
