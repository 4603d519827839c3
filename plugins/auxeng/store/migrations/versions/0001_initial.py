"""initial engagement store

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auxeng_engagement_revisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("engagement_key", sa.String(length=64), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("registry_sha256", sa.String(length=64), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auxeng_engagement_revisions")),
    )
    with op.batch_alter_table("auxeng_engagement_revisions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_auxeng_engagement_revisions_engagement_key"), ["engagement_key"], unique=False
        )

    op.create_table(
        "auxeng_people",
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("slack_id", sa.String(length=32), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("email", name=op.f("pk_auxeng_people")),
    )
    op.create_table(
        "auxeng_program",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("managers", sa.JSON(), nullable=False),
        sa.Column("stakeholders", sa.JSON(), nullable=False),
        sa.Column("digest_slack_channel", sa.String(length=32), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auxeng_program")),
    )
    op.create_table(
        "auxeng_registry_loads",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=1000), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("removed", sa.Integer(), nullable=False),
        sa.Column("restored", sa.Integer(), nullable=False),
        sa.Column("problems", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auxeng_registry_loads")),
    )
    with op.batch_alter_table("auxeng_registry_loads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_auxeng_registry_loads_sha256"), ["sha256"], unique=False)

    op.create_table(
        "auxeng_teams",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("org", sa.String(length=200), nullable=True),
        sa.Column("manager_email", sa.String(length=320), nullable=True),
        sa.Column("manager_name", sa.String(length=200), nullable=True),
        sa.Column("manager_slack_id", sa.String(length=32), nullable=True),
        sa.Column("help_channel", sa.String(length=32), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_auxeng_teams")),
    )
    op.create_table(
        "auxeng_engagements",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("host_team_key", sa.String(length=64), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("follow_up", sa.String(length=16), nullable=False),
        sa.Column("anonymous", sa.Boolean(), nullable=False),
        sa.Column("goals_business", sa.Text(), nullable=True),
        sa.Column("goals_technical", sa.Text(), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_as_of", sa.Date(), nullable=True),
        sa.Column("ended_end_date", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["host_team_key"],
            ["auxeng_teams.key"],
            name=op.f("fk_auxeng_engagements_host_team_key_auxeng_teams"),
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_auxeng_engagements")),
    )
    with op.batch_alter_table("auxeng_engagements", schema=None) as batch_op:
        batch_op.create_index("ix_auxeng_engagements_status_end", ["status", "end_date"], unique=False)

    op.create_table(
        "auxeng_engagement_members",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("engagement_key", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("lead", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["engagement_key"],
            ["auxeng_engagements.key"],
            name=op.f("fk_auxeng_engagement_members_engagement_key_auxeng_engagements"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auxeng_engagement_members")),
        sa.UniqueConstraint(
            "engagement_key", "email", name=op.f("uq_auxeng_engagement_members_engagement_key")
        ),
    )
    with op.batch_alter_table("auxeng_engagement_members", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_auxeng_engagement_members_email"), ["email"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_auxeng_engagement_members_engagement_key"), ["engagement_key"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("auxeng_engagement_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auxeng_engagement_members_engagement_key"))
        batch_op.drop_index(batch_op.f("ix_auxeng_engagement_members_email"))

    op.drop_table("auxeng_engagement_members")
    with op.batch_alter_table("auxeng_engagements", schema=None) as batch_op:
        batch_op.drop_index("ix_auxeng_engagements_status_end")

    op.drop_table("auxeng_engagements")
    op.drop_table("auxeng_teams")
    with op.batch_alter_table("auxeng_registry_loads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auxeng_registry_loads_sha256"))

    op.drop_table("auxeng_registry_loads")
    op.drop_table("auxeng_program")
    op.drop_table("auxeng_people")
    with op.batch_alter_table("auxeng_engagement_revisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auxeng_engagement_revisions_engagement_key"))

    op.drop_table("auxeng_engagement_revisions")
