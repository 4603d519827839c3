"""dependency red flags

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auxeng_flags",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("subject_key", sa.String(length=320), nullable=False),
        sa.Column("open_key", sa.String(length=400), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("team_key", sa.String(length=64), nullable=True),
        sa.Column("engagement_key", sa.String(length=64), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_on", sa.Date(), nullable=False),
        sa.Column("evaluated_on", sa.Date(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("announced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("announced_severity", sa.String(length=16), nullable=True),
        sa.Column("announcements", sa.Integer(), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=320), nullable=True),
        sa.Column("acknowledged_note", sa.Text(), nullable=True),
        sa.Column("acknowledged_severity", sa.String(length=16), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auxeng_flags")),
        sa.UniqueConstraint("open_key", name=op.f("uq_auxeng_flags_open_key")),
    )
    with op.batch_alter_table("auxeng_flags", schema=None) as batch_op:
        batch_op.create_index(
            "ix_auxeng_flags_rule_subject", ["rule", "subject_kind", "subject_key"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_auxeng_flags_status"), ["status"], unique=False)

    op.create_table(
        "auxeng_help_channel_reads",
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("team_key", sa.String(length=64), nullable=False),
        sa.Column("read_until", sa.String(length=32), nullable=True),
        sa.Column("pass_oldest", sa.String(length=32), nullable=True),
        sa.Column("pass_latest", sa.String(length=32), nullable=True),
        sa.Column("pass_cursor", sa.String(length=500), nullable=True),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("requests_found", sa.Integer(), nullable=False),
        sa.Column("last_read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel", name=op.f("pk_auxeng_help_channel_reads")),
    )
    op.create_table(
        "auxeng_help_requests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("team_key", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("source_ref", sa.String(length=300), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("author", sa.String(length=320), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("link", sa.String(length=1000), nullable=True),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auxeng_help_requests")),
        sa.UniqueConstraint("source", "source_ref", name=op.f("uq_auxeng_help_requests_source")),
    )
    with op.batch_alter_table("auxeng_help_requests", schema=None) as batch_op:
        batch_op.create_index("ix_auxeng_help_requests_team_at", ["team_key", "requested_at"], unique=False)

    op.create_table(
        "auxeng_flag_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("flag_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["flag_id"],
            ["auxeng_flags.id"],
            name=op.f("fk_auxeng_flag_events_flag_id_auxeng_flags"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auxeng_flag_events")),
    )
    with op.batch_alter_table("auxeng_flag_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_auxeng_flag_events_flag_id"), ["flag_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("auxeng_flag_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auxeng_flag_events_flag_id"))

    op.drop_table("auxeng_flag_events")
    with op.batch_alter_table("auxeng_help_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_auxeng_help_requests_team_at")

    op.drop_table("auxeng_help_requests")
    op.drop_table("auxeng_help_channel_reads")
    with op.batch_alter_table("auxeng_flags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auxeng_flags_status"))
        batch_op.drop_index("ix_auxeng_flags_rule_subject")

    op.drop_table("auxeng_flags")
