"""surveys and outbox

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auxeng_opt_outs",
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("opted_out_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("email", name=op.f("pk_auxeng_opt_outs")),
    )
    op.create_table(
        "auxeng_outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dedupe_key", sa.String(length=300), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("recipient_email", sa.String(length=320), nullable=True),
        sa.Column("subject", sa.String(length=500), nullable=True),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("engagement_key", sa.String(length=64), nullable=True),
        sa.Column("invitation_id", sa.Integer(), nullable=True),
        sa.Column("stop_if_answered", sa.Boolean(), nullable=False),
        sa.Column("requires_ended", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("transport", sa.String(length=16), nullable=True),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auxeng_outbox")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_auxeng_outbox_dedupe_key")),
    )
    with op.batch_alter_table("auxeng_outbox", schema=None) as batch_op:
        batch_op.create_index("ix_auxeng_outbox_due", ["status", "channel", "not_before"], unique=False)
        batch_op.create_index(batch_op.f("ix_auxeng_outbox_engagement_key"), ["engagement_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_auxeng_outbox_invitation_id"), ["invitation_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_auxeng_outbox_recipient_email"), ["recipient_email"], unique=False
        )

    op.create_table(
        "auxeng_survey_invitations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("survey", sa.String(length=32), nullable=False),
        sa.Column("engagement_key", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("skip_reason", sa.Text(), nullable=True),
        sa.Column("invited_on", sa.Date(), nullable=False),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reminders_queued", sa.Integer(), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["engagement_key"],
            ["auxeng_engagements.key"],
            name=op.f("fk_auxeng_survey_invitations_engagement_key_auxeng_engagements"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auxeng_survey_invitations")),
        sa.UniqueConstraint(
            "survey", "engagement_key", "email", name=op.f("uq_auxeng_survey_invitations_survey")
        ),
    )
    with op.batch_alter_table("auxeng_survey_invitations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_auxeng_survey_invitations_email"), ["email"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_auxeng_survey_invitations_engagement_key"), ["engagement_key"], unique=False
        )

    op.create_table(
        "auxeng_survey_responses",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("response_ref", sa.String(length=64), nullable=False),
        sa.Column("invitation_id", sa.Integer(), nullable=True),
        sa.Column("survey", sa.String(length=32), nullable=False),
        sa.Column("engagement_key", sa.String(length=64), nullable=False),
        sa.Column("respondent_email", sa.String(length=320), nullable=True),
        sa.Column("nps", sa.Integer(), nullable=True),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["engagement_key"],
            ["auxeng_engagements.key"],
            name=op.f("fk_auxeng_survey_responses_engagement_key_auxeng_engagements"),
        ),
        sa.ForeignKeyConstraint(
            ["invitation_id"],
            ["auxeng_survey_invitations.id"],
            name=op.f("fk_auxeng_survey_responses_invitation_id_auxeng_survey_invitations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auxeng_survey_responses")),
        sa.UniqueConstraint("response_ref", name=op.f("uq_auxeng_survey_responses_response_ref")),
    )
    with op.batch_alter_table("auxeng_survey_responses", schema=None) as batch_op:
        batch_op.create_index(
            "ix_auxeng_survey_responses_engagement", ["engagement_key", "survey"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("auxeng_survey_responses", schema=None) as batch_op:
        batch_op.drop_index("ix_auxeng_survey_responses_engagement")

    op.drop_table("auxeng_survey_responses")
    with op.batch_alter_table("auxeng_survey_invitations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auxeng_survey_invitations_engagement_key"))
        batch_op.drop_index(batch_op.f("ix_auxeng_survey_invitations_email"))

    op.drop_table("auxeng_survey_invitations")
    with op.batch_alter_table("auxeng_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auxeng_outbox_recipient_email"))
        batch_op.drop_index(batch_op.f("ix_auxeng_outbox_invitation_id"))
        batch_op.drop_index(batch_op.f("ix_auxeng_outbox_engagement_key"))
        batch_op.drop_index("ix_auxeng_outbox_due")

    op.drop_table("auxeng_outbox")
    op.drop_table("auxeng_opt_outs")
