"""weekly independence snapshots: auxeng_independence_weeks, _scores, _snapshots

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06

Each computed week (replaced on a re-run or a backfill) holds every counted engagement's
independence score with its components, and the per program, org and host team figures.
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auxeng_independence_weeks",
        sa.Column("week", sa.Date(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("min_responses", sa.Integer(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("window_weeks", sa.Integer(), nullable=False),
        sa.Column("weights", sa.JSON(), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("week", name=op.f("pk_auxeng_independence_weeks")),
    )
    op.create_table(
        "auxeng_independence_scores",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("week", sa.Date(), nullable=False),
        sa.Column("engagement_key", sa.String(length=64), nullable=False),
        sa.Column("team_key", sa.String(length=64), nullable=False),
        sa.Column("org", sa.String(length=200), nullable=True),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("total", sa.Float(), nullable=True),
        sa.Column("components", sa.JSON(), nullable=False),
        sa.Column("independent", sa.Boolean(), nullable=True),
        sa.Column("goals_achieved", sa.Boolean(), nullable=True),
        sa.ForeignKeyConstraint(
            ["week"],
            ["auxeng_independence_weeks.week"],
            name=op.f("fk_auxeng_independence_scores_week_auxeng_independence_weeks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auxeng_independence_scores")),
        sa.UniqueConstraint("week", "engagement_key", name=op.f("uq_auxeng_independence_scores_week")),
    )
    op.create_index(
        "ix_auxeng_independence_scores_team_week", "auxeng_independence_scores", ["team_key", "week"]
    )
    op.create_table(
        "auxeng_independence_snapshots",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("week", sa.Date(), nullable=False),
        sa.Column("segment", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("engagements", sa.Integer(), nullable=False),
        sa.Column("scored", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("components", sa.JSON(), nullable=False),
        sa.Column("checkins", sa.Integer(), nullable=False),
        sa.Column("independent", sa.Integer(), nullable=False),
        sa.Column("independent_low", sa.Float(), nullable=True),
        sa.Column("independent_high", sa.Float(), nullable=True),
        sa.Column("goals_answered", sa.Integer(), nullable=False),
        sa.Column("goals_achieved", sa.Integer(), nullable=False),
        sa.Column("goals_low", sa.Float(), nullable=True),
        sa.Column("goals_high", sa.Float(), nullable=True),
        sa.Column("suppressed", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["week"],
            ["auxeng_independence_weeks.week"],
            name=op.f("fk_auxeng_independence_snapshots_week_auxeng_independence_weeks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auxeng_independence_snapshots")),
        sa.UniqueConstraint("week", "segment", "key", name=op.f("uq_auxeng_independence_snapshots_week")),
    )


def downgrade() -> None:
    op.drop_table("auxeng_independence_snapshots")
    op.drop_index("ix_auxeng_independence_scores_team_week", table_name="auxeng_independence_scores")
    op.drop_table("auxeng_independence_scores")
    op.drop_table("auxeng_independence_weeks")
