"""weekly nps and digests

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# auxeng_survey_responses.maintainability: the check-in comfort in ``answers`` when it is
# a JSON integer below 10**9 in size, else NULL (the rule of
# auxeng.store.models.maintainability_of, which keeps it in step on every ORM write).
BACKFILL = {
    "sqlite": """
        UPDATE auxeng_survey_responses
        SET maintainability = json_extract(answers, '$.maintainability')
        WHERE CASE WHEN json_valid(answers) THEN
            json_type(answers, '$.maintainability') = 'integer'
            AND abs(json_extract(answers, '$.maintainability')) < 1000000000
        END
    """,
    "postgresql": """
        UPDATE auxeng_survey_responses
        SET maintainability = (answers ->> 'maintainability')::int
        WHERE json_typeof(answers -> 'maintainability') = 'number'
          AND (answers ->> 'maintainability') ~ '^-?[0-9]{1,9}$'
    """,
}


def upgrade() -> None:
    op.create_table(
        "auxeng_digest_opt_outs",
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("opted_out_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("email", name=op.f("pk_auxeng_digest_opt_outs")),
    )
    op.create_table(
        "auxeng_digests",
        sa.Column("week", sa.Date(), nullable=False),
        sa.Column("comments_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("comments_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("week", name=op.f("pk_auxeng_digests")),
    )
    op.create_table(
        "auxeng_nps_weeks",
        sa.Column("week", sa.Date(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("min_responses", sa.Integer(), nullable=False),
        sa.Column("trend", sa.JSON(), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("week", name=op.f("pk_auxeng_nps_weeks")),
    )
    op.create_table(
        "auxeng_nps_snapshots",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("week", sa.Date(), nullable=False),
        sa.Column("span", sa.String(length=12), nullable=False),
        sa.Column("segment", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("promoters", sa.Integer(), nullable=False),
        sa.Column("passives", sa.Integer(), nullable=False),
        sa.Column("detractors", sa.Integer(), nullable=False),
        sa.Column("responses", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("ci_low", sa.Float(), nullable=False),
        sa.Column("ci_high", sa.Float(), nullable=False),
        sa.Column("suppressed", sa.Boolean(), nullable=False),
        sa.Column("invited", sa.Integer(), nullable=False),
        sa.Column("answered", sa.Integer(), nullable=False),
        sa.Column("response_rate", sa.Float(), nullable=True),
        sa.Column("maintainability_answers", sa.Integer(), nullable=False),
        sa.Column("maintainability_mean", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["week"],
            ["auxeng_nps_weeks.week"],
            name=op.f("fk_auxeng_nps_snapshots_week_auxeng_nps_weeks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auxeng_nps_snapshots")),
        sa.UniqueConstraint("week", "span", "segment", "key", name=op.f("uq_auxeng_nps_snapshots_week")),
    )
    with op.batch_alter_table("auxeng_survey_responses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("maintainability", sa.Integer(), nullable=True))
    dialect = op.get_bind().dialect.name
    if dialect not in BACKFILL:
        raise NotImplementedError(f"no backfill of auxeng_survey_responses.maintainability for {dialect}")
    op.execute(BACKFILL[dialect])

    # Covering indexes: the weekly NPS reads both tables from these alone.
    with op.batch_alter_table("auxeng_survey_invitations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_auxeng_survey_invitations_invited_on",
            ["invited_on", "survey", "status", "engagement_key", "answered_at"],
            unique=False,
        )

    with op.batch_alter_table("auxeng_survey_responses", schema=None) as batch_op:
        batch_op.create_index(
            "ix_auxeng_survey_responses_submitted",
            ["submitted_at", "survey", "engagement_key", "nps", "maintainability"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("auxeng_survey_responses", schema=None) as batch_op:
        batch_op.drop_index("ix_auxeng_survey_responses_submitted")
        batch_op.drop_column("maintainability")

    with op.batch_alter_table("auxeng_survey_invitations", schema=None) as batch_op:
        batch_op.drop_index("ix_auxeng_survey_invitations_invited_on")

    op.drop_table("auxeng_nps_snapshots")
    op.drop_table("auxeng_nps_weeks")
    op.drop_table("auxeng_digests")
    op.drop_table("auxeng_digest_opt_outs")
