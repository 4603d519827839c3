"""detractor alerts name their response: auxeng_outbox.response_id

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30

Detractor alerts find the answers not alerted yet with an anti-join on this indexed
column. Alerts queued before it are tied to their response from their dedupe key
(``detractor_alert:<first 24 characters of response_ref>:<recipient>:<channel>``), so
they still prevent a second alert.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

DETRACTOR_ALERT = "detractor_alert"
REF_PREFIX = 24


def upgrade() -> None:
    with op.batch_alter_table("auxeng_outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("response_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_auxeng_outbox_response_id"), ["response_id"], unique=False)
    _backfill(op.get_bind())


def _backfill(conn: sa.Connection) -> None:
    outbox = sa.table("auxeng_outbox", sa.column("id"), sa.column("kind"), sa.column("dedupe_key"))
    responses = sa.table("auxeng_survey_responses", sa.column("id"), sa.column("response_ref"))
    alerts = [
        (row_id, key.split(":")[1])
        for row_id, key in conn.execute(
            sa.select(outbox.c.id, outbox.c.dedupe_key).where(outbox.c.kind == DETRACTOR_ALERT)
        )
    ]
    if not alerts:
        return
    wanted = {prefix for _, prefix in alerts}
    response_of: dict[str, int] = {}
    for response_id, ref in conn.execute(
        sa.select(responses.c.id, responses.c.response_ref).order_by(responses.c.id)
    ):
        if ref[:REF_PREFIX] in wanted:
            response_of.setdefault(ref[:REF_PREFIX], response_id)
    updates = [
        {"row": row_id, "response": response_of[prefix]} for row_id, prefix in alerts if prefix in response_of
    ]
    if updates:
        conn.execute(sa.text("UPDATE auxeng_outbox SET response_id = :response WHERE id = :row"), updates)


def downgrade() -> None:
    with op.batch_alter_table("auxeng_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auxeng_outbox_response_id"))
        batch_op.drop_column("response_id")
