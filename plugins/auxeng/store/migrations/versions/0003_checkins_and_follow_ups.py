"""checkins and follow-ups

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auxeng_checkins",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("engagement_key", sa.String(length=64), nullable=False),
        sa.Column("uid", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("due_override", sa.Date(), nullable=True),
        sa.Column("invite_on", sa.Date(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("calendar_method", sa.String(length=8), nullable=True),
        sa.Column("calendar_due", sa.Date(), nullable=True),
        sa.Column("slot_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("slot_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("slot_timezone", sa.String(length=64), nullable=True),
        sa.Column("survey_sent_on", sa.Date(), nullable=True),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("invited", sa.Integer(), nullable=False),
        sa.Column("responses", sa.Integer(), nullable=False),
        sa.Column("maintainability_min", sa.Integer(), nullable=True),
        sa.Column("maintainability_mean", sa.Float(), nullable=True),
        sa.Column("help_needed", sa.String(length=16), nullable=True),
        sa.Column("nps_mean", sa.Float(), nullable=True),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("warnings", sa.JSON(), nullable=False),
        sa.Column("override_reason", sa.Text(), nullable=True),
        sa.Column("override_by", sa.String(length=200), nullable=True),
        sa.Column("override_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["engagement_key"],
            ["auxeng_engagements.key"],
            name=op.f("fk_auxeng_checkins_engagement_key_auxeng_engagements"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auxeng_checkins")),
        sa.UniqueConstraint("engagement_key", name=op.f("uq_auxeng_checkins_engagement_key")),
        sa.UniqueConstraint("uid", name=op.f("uq_auxeng_checkins_uid")),
    )
    with op.batch_alter_table("auxeng_checkins", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_auxeng_checkins_status"), ["status"], unique=False)

    op.create_table(
        "auxeng_follow_ups",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("engagement_key", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("months", sa.Integer(), nullable=False),
        sa.Column("last_round", sa.Integer(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_by", sa.String(length=320), nullable=True),
        sa.Column("finish_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["engagement_key"],
            ["auxeng_engagements.key"],
            name=op.f("fk_auxeng_follow_ups_engagement_key_auxeng_engagements"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auxeng_follow_ups")),
        sa.UniqueConstraint("engagement_key", name=op.f("uq_auxeng_follow_ups_engagement_key")),
    )
    op.create_table(
        "auxeng_checkin_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("checkin_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=24), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["checkin_id"],
            ["auxeng_checkins.id"],
            name=op.f("fk_auxeng_checkin_events_checkin_id_auxeng_checkins"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auxeng_checkin_events")),
    )
    with op.batch_alter_table("auxeng_checkin_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_auxeng_checkin_events_checkin_id"), ["checkin_id"], unique=False)

    with op.batch_alter_table("auxeng_survey_invitations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("round", sa.Integer(), server_default="0", nullable=False))
        batch_op.drop_constraint(batch_op.f("uq_auxeng_survey_invitations_survey"), type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_auxeng_survey_invitations_survey"), ["survey", "engagement_key", "email", "round"]
        )


def downgrade() -> None:
    with op.batch_alter_table("auxeng_survey_invitations", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_auxeng_survey_invitations_survey"), type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_auxeng_survey_invitations_survey"), ["survey", "engagement_key", "email"]
        )
        batch_op.drop_column("round")

    with op.batch_alter_table("auxeng_checkin_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auxeng_checkin_events_checkin_id"))

    op.drop_table("auxeng_checkin_events")
    op.drop_table("auxeng_follow_ups")
    with op.batch_alter_table("auxeng_checkins", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auxeng_checkins_status"))

    op.drop_table("auxeng_checkins")
