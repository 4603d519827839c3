"""Alembic environment for the engagement store; run through ``auxeng.store.db.migrate``."""

from alembic import context

from auxeng.store.db import VERSION_TABLE
from auxeng.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Run the store's migrations through auxeng.store.db.migrate(engine)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
