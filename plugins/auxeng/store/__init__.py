"""The engagement store: SQLAlchemy models, Alembic migrations and engine handling."""
